"""The content-store seam: every component fetches and publishes files through ``ContentStore``."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from abc import ABC, abstractmethod
from pathlib import Path


class ContentError(Exception):
    """Base class of content-store errors."""


class ContentNotFound(ContentError):
    """The store does not hold (and cannot fetch) the requested CID."""


class DigestMismatch(ContentError):
    """The bytes behind a CID do not have the expected sha256 digest."""


class ContentTooLarge(ContentError):
    """The content is larger than the caller's ``max_bytes``."""


class TransferTooSlow(ContentError):
    """The bytes arrived slower than the transfer's deadline allows (a node trickling data never hangs us)."""


class StoreUnavailable(ContentError):
    """The store's backend (e.g. an IPFS node) cannot be reached."""


class ContentStore(ABC):
    """Content-addressed storage keyed by base32 CIDv1 (``ipfs add --cid-version=1`` semantics).

    Methods accept any CID form ``fedchain.cid.normalize_cid`` accepts and raise ``ValueError`` for
    strings that are not CIDs.  Implementations never return bytes that fail the requested checks.
    """

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data``; return its base32 CIDv1.  Idempotent."""

    @abstractmethod
    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a file's contents without loading it whole; return its base32 CIDv1."""

    @abstractmethod
    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int) -> bytes:
        """Return the content of ``cid``.

        Raises ``ContentNotFound``, ``ContentTooLarge`` when it exceeds ``max_bytes`` (checked before the
        content is read in full where possible) and ``DigestMismatch`` when ``sha256`` is given and
        differs from the content's sha256.
        """

    def get_file(self, cid: str, dest: str | os.PathLike[str], *, sha256: bytes | None = None,
                 max_bytes: int) -> Path:
        """Write the content of ``cid`` to ``dest`` (atomically, only after every check passed) and return
        ``dest``; the same errors as ``get``. Stores that can stream override this; here it goes through memory."""
        dest = Path(dest)
        data = self.get(cid, sha256=sha256, max_bytes=max_bytes)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def verified_file(self, cid: str, *, sha256: bytes | None = None, max_bytes: int, scratch: Path) -> Path:
        """A local file holding the checked content of ``cid``, to be read but never written: the store's own
        copy where it keeps one on disk, otherwise a download to ``scratch/<cid>`` (the caller removes it)."""
        from fedchain.cid import normalize_cid

        return self.get_file(cid, Path(scratch) / normalize_cid(cid), sha256=sha256, max_bytes=max_bytes)

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the content of ``cid`` is available without fetching it from elsewhere."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` from garbage collection; raise ``ContentNotFound`` when it is not available."""

    @abstractmethod
    def unpin(self, cid: str) -> None:
        """Drop the pin on ``cid``; unpinning a CID that is not pinned is a no-op."""

    @abstractmethod
    def pins(self) -> list[str]:
        """Pinned CIDs (base32 CIDv1), sorted."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stores without connections
        """Release connections or other resources held by the store."""

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_content(cid: str, data: bytes, *, sha256: bytes | None, max_bytes: int) -> bytes:
    """Shared post-fetch checks: size limit, then digest; returns ``data`` when both pass."""
    if len(data) > max_bytes:
        raise ContentTooLarge(f"{cid} is larger than the {max_bytes}-byte limit")
    if sha256 is not None:
        if len(sha256) != 32:
            raise ValueError("sha256 must be a 32-byte digest")
        actual = hashlib.sha256(data).digest()
        if actual != sha256:
            raise DigestMismatch(f"{cid}: sha256 is {actual.hex()}, expected {bytes(sha256).hex()}")
    return data


class ScratchDir:
    """A private temporary directory (or the given one), removed when nothing refers to it any more."""

    def __init__(self, path: Path | None = None, prefix: str = "fedchain-") -> None:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix=prefix))
            weakref.finalize(self, shutil.rmtree, path, True)
        self.path = path


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> bytes:
    """sha256 of a file, read one chunk at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb", buffering=0) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.digest()


def validate_max_bytes(max_bytes: int) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    return max_bytes


__all__ = [
    "ContentError",
    "ContentNotFound",
    "ContentStore",
    "ContentTooLarge",
    "DigestMismatch",
    "ScratchDir",
    "StoreUnavailable",
    "check_content",
    "file_sha256",
    "validate_max_bytes",
]

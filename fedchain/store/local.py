"""``LocalContentStore``: the embedded default store, one file per CID under a directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from fedchain.cid import CHUNK_SIZE, CidBuilder, cid_for_bytes, normalize_cid
from fedchain.store.base import (
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    DigestMismatch,
    check_content,
    validate_max_bytes,
)


class LocalContentStore(ContentStore):
    """Files stored as ``<root>/objects/<cid>``, pins as empty marker files ``<root>/pins/<cid>``.

    Writes go to a temporary file in ``<root>/tmp`` and are renamed into place atomically, so several
    processes on one machine can share the directory: readers see a complete file or none, and two
    writers of the same content write identical bytes under the same name.  ``get`` trusts the file's
    name (it does not recompute the CID) but checks the size limit before reading and, when asked,
    the sha256 digest.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._objects = self.root / "objects"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        for directory in (self._objects, self._pins, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalContentStore({str(self.root)!r})"

    def _path(self, cid: str) -> Path:
        return self._objects / normalize_cid(cid)

    def _commit(self, tmp_path: Path, cid: str) -> str:
        target = self._objects / cid
        if target.exists():
            tmp_path.unlink(missing_ok=True)
        else:
            os.replace(tmp_path, target)
        return cid

    def _new_temp(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        os.fchmod(fd, 0o644)
        return fd, Path(name)

    def put(self, data: bytes) -> str:
        cid = cid_for_bytes(data)
        if (self._objects / cid).exists():
            return cid
        fd, tmp_path = self._new_temp()
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            return self._commit(tmp_path, cid)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def put_file(self, path: str | os.PathLike[str]) -> str:
        builder = CidBuilder()
        fd, tmp_path = self._new_temp()
        try:
            with Path(path).open("rb", buffering=0) as src, os.fdopen(fd, "wb") as dst:
                buf = bytearray(CHUNK_SIZE)
                view = memoryview(buf)
                while n := src.readinto(view):
                    builder.update(view[:n])
                    dst.write(view[:n])
                dst.flush()
                os.fsync(dst.fileno())
            return self._commit(tmp_path, builder.cid())
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def _open(self, cid: str, max_bytes: int) -> tuple[BinaryIO, Path]:
        """The object file of ``cid``, open, after the size check; ``ContentNotFound`` / ``ContentTooLarge``."""
        validate_max_bytes(max_bytes)
        path = self._objects / normalize_cid(cid)
        try:
            fh = path.open("rb", buffering=0)
        except FileNotFoundError:
            raise ContentNotFound(path.name) from None
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            fh.close()
            raise ContentTooLarge(f"{path.name} is {size} bytes, limit {max_bytes}")
        return fh, path

    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int) -> bytes:
        fh, path = self._open(cid, max_bytes)
        with fh:
            data = fh.read(max_bytes + 1)
        return check_content(path.name, data, sha256=sha256, max_bytes=max_bytes)

    def _checked_file(self, cid: str, sha256: bytes | None, max_bytes: int, copy_to: Path | None) -> Path:
        """The object file of ``cid`` after the size check and, as it streams, the CID's and the digest's checks
        (a file renamed or altered on disk is caught); copied on the way to ``copy_to`` when given."""
        if sha256 is not None and len(sha256) != 32:
            raise ValueError("sha256 must be a 32-byte digest")
        fh, path = self._open(cid, max_bytes)
        cid = path.name
        with fh:
            digest, builder = hashlib.sha256(), CidBuilder()
            out = None if copy_to is None else tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
                dir=copy_to.parent, delete=False, prefix=f".{copy_to.name}.")
            try:
                while block := fh.read(CHUNK_SIZE * 16):
                    digest.update(block)
                    builder.update(block)
                    if out is not None:
                        out.write(block)
                if builder.cid() != cid:
                    raise DigestMismatch(f"the stored file {cid} holds content whose CID is {builder.cid()}")
                if sha256 is not None and digest.digest() != bytes(sha256):
                    raise DigestMismatch(f"{cid}: sha256 is {digest.hexdigest()}, expected {bytes(sha256).hex()}")
                if out is not None:
                    out.close()
                    os.replace(out.name, copy_to)
            except BaseException:
                if out is not None:
                    out.close()
                    Path(out.name).unlink(missing_ok=True)
                raise
        return path if copy_to is None else copy_to

    def get_file(self, cid: str, dest: str | os.PathLike[str], *, sha256: bytes | None = None,
                 max_bytes: int) -> Path:
        return self._checked_file(cid, sha256, max_bytes, Path(dest))

    def verified_file(self, cid: str, *, sha256: bytes | None = None, max_bytes: int, scratch: Path) -> Path:
        """The store's own object file (objects are never rewritten: a put of content already there writes
        nothing), after the size, CID and digest checks."""
        return self._checked_file(cid, sha256, max_bytes, None)

    def has(self, cid: str) -> bool:
        return self._path(cid).is_file()

    def pin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        if not self.has(cid):
            raise ContentNotFound(cid)
        with contextlib.suppress(FileExistsError):
            (self._pins / cid).touch(exist_ok=False)

    def unpin(self, cid: str) -> None:
        (self._pins / normalize_cid(cid)).unlink(missing_ok=True)

    def pins(self) -> list[str]:
        return sorted(p.name for p in self._pins.iterdir() if p.is_file() and not p.name.startswith("."))

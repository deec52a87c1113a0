"""``KuboStore``: a content store on an IPFS node's Kubo RPC API (``/api/v0``), over httpx.

Every call has a client-side timeout, and calls that may look for content on the network also pass the
node a ``timeout`` (js-ipfs and Kubo otherwise wait forever for a missing block). Every download also has an
overall deadline derived from its size (``fetch_timeout`` plus the size at ``min_transfer_rate``), so a node that
trickles one byte at a time is cut off (``TransferTooSlow``) instead of holding a reader forever.  Transient failures
(connection refused or reset, timeouts of the HTTP exchange, 502/503/504) are retried with exponential
backoff until ``retry_seconds`` have passed, then ``StoreUnavailable`` is raised.  Uploads stream from a
file object and downloads stream into memory (``get``) or to a file (``get_file``) while the CID and
sha256 are recomputed, so a node that returns other bytes than the CID names is caught.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx

from fedchain.cid import CidBuilder, cid_digest_hex, normalize_cid
from fedchain.store.base import (
    ContentError,
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    DigestMismatch,
    StoreUnavailable,
    TransferTooSlow,
    check_content,
    validate_max_bytes,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUS = frozenset({502, 503, 504})
NOT_FOUND_MARKERS = ("timed out", "not found", "could not find", "no link named", "not exist")

MIN_TRANSFER_RATE = 256 * 1024  # bytes/s a download must average (after fetch_timeout) before it is cut off
VERIFY_QUEUE_PIECES = 64  # pieces the verifier thread may lag behind the download (4 MiB at 64 KiB pieces)


def _multihash_digest(cid: str) -> bytes:
    """The sha2-256 digest inside a CID (blocks are stored by multihash, whatever the CID's codec)."""
    return bytes.fromhex(cid_digest_hex(normalize_cid(cid)))


class _Transient(Exception):
    """An HTTP answer worth retrying (the node is starting, overloaded or behind a failing proxy)."""


class _StreamVerifier:
    """sha256 and CID of a byte stream, computed in a worker thread while the next pieces download.

    hashlib releases the GIL while it hashes, so hashing overlaps with the socket reads and the sink's writes
    instead of following them; the bounded queue keeps memory at ``VERIFY_QUEUE_PIECES`` pieces.
    """

    def __init__(self) -> None:
        self._hasher, self._builder = hashlib.sha256(), CidBuilder()
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=VERIFY_QUEUE_PIECES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kubo-verify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._pieces.get()) is not None:
            if self._error is None:
                try:
                    self._hasher.update(piece)
                    self._builder.update(piece)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller in finish()
                    self._error = exc

    def feed(self, piece: bytes) -> None:
        self._pieces.put(piece)

    def finish(self) -> tuple[bytes, str]:
        """Wait for the worker; the stream's (sha256, CID)."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._hasher.digest(), self._builder.cid()

    def close(self) -> None:
        if self._thread.is_alive():
            self._pieces.put(None)
            self._thread.join()


class _HashingReader:
    """A read-only file wrapper that feeds everything read through it to a ``CidBuilder``.

    It passes ``fileno``/``seek``/``tell`` through so httpx can send a Content-Length instead of a chunked
    body; a seek back to the start (httpx rewinds before sending) starts the CID over.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.builder = CidBuilder()

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self.builder.update(chunk)
        return chunk

    def fileno(self) -> int:
        return self._source.fileno()

    def tell(self) -> int:
        return self._source.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._source.seek(offset, whence)
        if position == 0:
            self.builder = CidBuilder()
        return position


class KuboStore(ContentStore):
    """Content on an IPFS node reached through its RPC API, e.g. ``KuboStore("http://127.0.0.1:5001")``.

    ``fetch_timeout`` bounds how long the node may search for content (passed to the node and added to
    the HTTP read timeout); ``retry_seconds`` is how long transient failures are retried.
    ``verify_cids`` recomputes the CID of every upload and download (fedchain's layout: CIDv1, raw
    leaves, 256 KiB chunks); turn it off only for content added with other settings.
    """

    def __init__(self, api_url: str, *, fetch_timeout: float = 60.0, request_timeout: float = 30.0,
                 retry_seconds: float = 30.0, verify_cids: bool = True,
                 transport: httpx.BaseTransport | None = None, min_transfer_rate: float = MIN_TRANSFER_RATE) -> None:
        url = api_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"IPFS API must be an http(s) URL, got {api_url!r}")
        self.api_url = url.removesuffix("/api/v0")
        self.fetch_timeout = fetch_timeout
        self.retry_seconds = retry_seconds
        self.verify_cids = verify_cids
        if not min_transfer_rate > 0:
            raise ValueError("min_transfer_rate must be positive")
        self.min_transfer_rate = float(min_transfer_rate)
        timeout = httpx.Timeout(request_timeout, connect=min(request_timeout, 5.0))
        self._js_ipfs: bool | None = None
        self._client = httpx.Client(base_url=f"{self.api_url}/api/v0", timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"KuboStore({self.api_url!r})"

    def close(self) -> None:
        self._client.close()

    # --- plumbing ----------------------------------------------------------------------------
    def _node_timeout(self) -> str:
        return f"{max(1, int(self.fetch_timeout))}s"

    def _read_timeout(self) -> httpx.Timeout:
        base = self._client.timeout
        return httpx.Timeout(base.read + self.fetch_timeout, connect=base.connect)

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or ``retry_seconds`` of transient errors."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        while True:
            try:
                return attempt()
            except (httpx.TransportError, _Transient) as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(f"IPFS node at {self.api_url} unavailable ({what}): {exc}") from exc
                log.warning("IPFS %s failed (%s); retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    @staticmethod
    def _error(response: httpx.Response, cid: str | None) -> Exception:
        """Map a non-2xx answer to the store's exceptions (the caller raises it)."""
        if response.status_code in TRANSIENT_STATUS:
            return _Transient(f"HTTP {response.status_code}")
        try:
            message = str(json.loads(response.read()).get("Message", ""))
        except (ValueError, AttributeError):
            message = response.text[:200] if not response.is_stream_consumed else ""
        lowered = message.lower()
        if cid is not None and any(marker in lowered for marker in NOT_FOUND_MARKERS):
            return ContentNotFound(f"{cid}: {message}")
        if response.status_code == 400:
            return ValueError(f"IPFS node rejected the request: {message or response.status_code}")
        return ContentError(f"IPFS node answered HTTP {response.status_code}: {message}")

    def _call(self, endpoint: str, params: dict[str, Any] | None = None, *, cid: str | None = None,
              slow: bool = False) -> Any:
        """POST a small RPC call and return its decoded JSON (one object, or a list for NDJSON)."""

        def attempt() -> Any:
            timeout = self._read_timeout() if slow else httpx.USE_CLIENT_DEFAULT
            response = self._client.post(endpoint, params=params, timeout=timeout)
            if response.status_code != 200:
                raise self._error(response, cid)
            lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
            return lines[0] if len(lines) == 1 else lines

        return self._retrying(endpoint, attempt)

    # --- node info ---------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        """The node's ``/version`` answer (``Version`` is e.g. ``"0.18.1"`` for js-ipfs)."""
        return self._call("version")

    def node_id(self) -> dict[str, Any]:
        """The node's ``/id`` answer (``ID`` and ``Addresses``)."""
        return self._call("id")

    # --- writing -----------------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        return self._add(lambda: io.BytesIO(bytes(data)))

    def put_file(self, path: str | os.PathLike[str]) -> str:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        return self._add(lambda: path.open("rb"))

    def _add(self, open_source: Callable[[], BinaryIO]) -> str:
        params = {"cid-version": 1, "raw-leaves": "true", "cid-base": "base32", "pin": "false",
                  "progress": "false", "chunker": "size-262144"}

        def attempt() -> str:
            with open_source() as source:
                reader = _HashingReader(source)
                files = {"file": ("blob", reader, "application/octet-stream")}
                response = self._client.post("add", params=params, files=files, timeout=self._read_timeout())
            if response.status_code != 200:
                raise self._error(response, None)
            entries = [json.loads(line) for line in response.text.splitlines() if line.strip()]
            if not entries or "Hash" not in entries[-1]:
                raise ContentError(f"IPFS add returned no CID: {response.text[:200]!r}")
            cid = normalize_cid(entries[-1]["Hash"])
            expected = reader.builder.cid()
            if self.verify_cids and cid != expected:
                raise ContentError(f"IPFS node stored the content as {cid}, expected {expected}")
            return cid

        return self._retrying("add", attempt)

    # --- reading -----------------------------------------------------------------------------
    @contextmanager
    def _cat(self, cid: str, max_bytes: int) -> Iterator[httpx.Response]:
        params = {"arg": cid, "timeout": self._node_timeout(), "length": max_bytes + 1}
        with self._client.stream("POST", "cat", params=params, timeout=self._read_timeout()) as response:
            if response.status_code != 200:
                raise self._error(response, cid)
            announced = response.headers.get("X-Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise ContentTooLarge(f"{cid} is {announced} bytes, limit {max_bytes}")
            yield response

    def _download(self, cid: str, max_bytes: int, sink: Callable[[bytes], None]) -> tuple[bytes, str, int]:
        """Stream ``cid`` into ``sink``; return (sha256, recomputed CID, size).  Not retried here."""
        verifier, size = _StreamVerifier(), 0
        try:
            with self._cat(cid, max_bytes) as response:
                announced = response.headers.get("X-Content-Length", "")
                expected = min(int(announced), max_bytes) if announced.isdigit() else max_bytes
                budget = self.transfer_seconds(expected)
                deadline = time.monotonic() + budget
                for piece in response.iter_bytes():
                    size += len(piece)
                    if size > max_bytes:
                        raise ContentTooLarge(f"{cid} is larger than the {max_bytes}-byte limit")
                    if time.monotonic() > deadline:
                        raise TransferTooSlow(f"{cid}: {size} of up to {expected} bytes arrived in {budget:.0f}s, "
                                              f"slower than {self.min_transfer_rate:.0f} bytes/s")
                    verifier.feed(piece)
                    sink(piece)
            sha, actual_cid = verifier.finish()
        finally:
            verifier.close()
        return sha, actual_cid, size

    def transfer_seconds(self, size: int) -> float:
        """The longest a download of ``size`` bytes may take: the node's search time plus the size at the
        minimum rate."""
        return self.fetch_timeout + size / self.min_transfer_rate

    def _verify(self, cid: str, sha256: bytes | None, actual_sha: bytes, actual_cid: str) -> None:
        if self.verify_cids and actual_cid != cid:
            raise DigestMismatch(f"IPFS node returned bytes whose CID is {actual_cid}, not {cid}")
        if sha256 is not None and actual_sha != bytes(sha256):
            raise DigestMismatch(f"{cid}: sha256 is {actual_sha.hex()}, expected {bytes(sha256).hex()}")

    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int) -> bytes:
        validate_max_bytes(max_bytes)
        cid = normalize_cid(cid)
        if sha256 is not None and len(sha256) != 32:
            raise ValueError("sha256 must be a 32-byte digest")

        def attempt() -> bytes:
            buffer = bytearray()
            actual_sha, actual_cid, _ = self._download(cid, max_bytes, buffer.extend)
            self._verify(cid, sha256, actual_sha, actual_cid)
            return bytes(buffer)

        return check_content(cid, self._retrying(f"cat {cid}", attempt), sha256=None, max_bytes=max_bytes)

    def get_file(self, cid: str, dest: str | os.PathLike[str], *, sha256: bytes | None = None,
                 max_bytes: int) -> Path:
        """Stream ``cid`` to ``dest`` (written atomically, only after every check passed)."""
        validate_max_bytes(max_bytes)
        cid = normalize_cid(cid)
        dest = Path(dest)

        def attempt() -> Path:
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    actual_sha, actual_cid, _ = self._download(cid, max_bytes, fh.write)
                self._verify(cid, sha256, actual_sha, actual_cid)
                os.replace(tmp_name, dest)
                return dest
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise

        return self._retrying(f"cat {cid}", attempt)

    def size(self, cid: str) -> int:
        """Size in bytes of the root block of ``cid`` (the file size for single-chunk files)."""
        cid = normalize_cid(cid)
        return int(self._call("block/stat", {"arg": cid, "timeout": self._node_timeout()}, cid=cid, slow=True)["Size"])

    def has(self, cid: str) -> bool:
        """Whether the node holds the root block of ``cid`` locally, without searching the network.

        Kubo answers ``block/stat`` offline; js-ipfs ignores ``offline`` (it would fetch the block over
        bitswap), so there the node's local block list is searched for the CID's multihash instead.
        """
        cid = normalize_cid(cid)
        if self._is_js_ipfs():
            wanted = _multihash_digest(cid)
            refs = self._call("refs/local")
            refs = refs if isinstance(refs, list) else [refs]
            return any(_multihash_digest(entry["Ref"]) == wanted for entry in refs if entry.get("Ref"))
        try:
            self._call("block/stat", {"arg": cid, "offline": "true", "timeout": "1s"}, cid=cid)
        except ContentNotFound:
            return False
        return True

    def _is_js_ipfs(self) -> bool:
        if self._js_ipfs is None:
            self._js_ipfs = "ipfs-core" in self.version()
        return self._js_ipfs

    # --- pins --------------------------------------------------------------------------------
    def pin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        self._call("pin/add", {"arg": cid, "recursive": "true", "timeout": self._node_timeout()}, cid=cid, slow=True)

    def unpin(self, cid: str) -> None:
        cid = normalize_cid(cid)
        try:
            self._call("pin/rm", {"arg": cid, "recursive": "true"})
        except ContentError as exc:
            if "not pinned" not in str(exc).lower():
                raise

    def pins(self) -> list[str]:
        # No cid-base here: js-ipfs refuses to print its CIDv0 pins in base32; we normalise instead.
        answer = self._call("pin/ls", {"type": "recursive", "stream": "true"})
        entries = answer if isinstance(answer, list) else [answer]
        found: set[str] = set()
        for entry in entries:
            if "Keys" in entry:
                found.update(normalize_cid(key) for key in entry["Keys"])
            elif "Cid" in entry:
                found.add(normalize_cid(entry["Cid"]))
        return sorted(found)

    def is_pinned(self, cid: str) -> bool:
        cid = normalize_cid(cid)
        try:
            self._call("pin/ls", {"arg": cid, "type": "recursive"}, cid=cid)
        except ContentError as exc:
            if "not pinned" in str(exc).lower():
                return False
            raise
        return True


__all__ = ["KuboStore"]

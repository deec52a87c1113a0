"""Model files on disk: opened without reading their tensors, read one tensor or one slice at a time, and written
tensor by tensor. The bytes are exactly ``fedchain.codec.encode_model``'s, so a file written here and a blob
encoded there have the same CID.

Memory: opening a file reads only its header (at most ``MAX_HEADER_BYTES``); ``LazyTensors[name]`` reads one
tensor into memory, ``LazyTensors.read(name, start, stop)`` a flat slice of one, and nothing is cached, so a model
of any size is read in memory that its largest tensor (or the caller's slice) bounds.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fedchain.codec import DATA_KINDS, MANIFEST_KEY, MAX_HEADER_BYTES, CodecError, ModelManifest, loads_bounded

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4"),
          "U8": np.dtype("u1"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}  # BF16: stored as its bits
COMPACT = ("F16", "BF16")  # the compact transports a task may choose for its updates (read back as float32)


def to_compact(block: np.ndarray, code: str) -> np.ndarray:
    """float32 values in a compact dtype's storage, rounded to nearest (ties to even): IEEE half for F16, the top
    16 bits of the float32 for BF16. Values beyond the dtype's range become infinities."""
    block = np.ascontiguousarray(block, dtype="<f4")
    if code == "F16":
        with np.errstate(over="ignore"):
            return block.astype("<f2")
    bits = block.view("<u4").astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")


def from_compact(stored: np.ndarray, code: str) -> np.ndarray:
    """float32 values of a compact dtype's storage (exact)."""
    if code == "F16":
        return stored.astype(np.float32)
    return (stored.astype("<u4") << 16).view("<f4")
WRITE_BLOCK = 1 << 22  # bytes per write when a tensor is written out
MAX_TENSORS = 4096  # tensors in one model file (a header of at most MAX_HEADER_BYTES holds far fewer anyway)


class LazyTensors(Mapping[str, np.ndarray]):
    """A model file's tensors by name (sorted), each read from disk when asked for, never cached."""

    def __init__(self, path: Path, data_start: int, index: dict[str, tuple[str, tuple[int, ...], int]]) -> None:
        self.path = path
        self._data_start = data_start
        self._index = dict(sorted(index.items()))  # name -> (dtype code, shape, offset in the data section)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name).reshape(self._index[name][1])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._index[name][1]

    def code(self, name: str) -> str:
        """The tensor's dtype as stored (the safetensors code)."""
        return self._index[name][0]

    def dtype(self, name: str) -> np.dtype:
        """The dtype ``read`` returns: float32 for a compact transport, the stored dtype otherwise."""
        code = self._index[name][0]
        return np.dtype(np.float32) if code in COMPACT else DTYPES[code]

    def size(self, name: str) -> int:
        return math.prod(self._index[name][1])

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Elements ``[start, stop)`` of tensor ``name`` flattened (C order), as a new writable array (a compact
        transport's values as float32)."""
        code, _, offset = self._index[name]
        dtype, size = DTYPES[code], self.size(name)
        stop = size if stop is None else min(stop, size)
        start = max(0, min(start, stop))
        count = stop - start
        out = np.empty(count, dtype=dtype)
        if count:
            with self.path.open("rb", buffering=0) as fh:
                fh.seek(self._data_start + offset + start * dtype.itemsize)
                view = memoryview(out).cast("B")
                done = 0
                while done < len(view):
                    n = fh.readinto(view[done:])
                    if not n:
                        raise CodecError("not_safetensors", f"{self.path.name}: tensor {name} is cut short")
                    done += n
        return from_compact(out, code) if code in COMPACT else out


def _tensor_index(header: dict, data_bytes: int) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """Validate a safetensors header's tensor entries against the data section's length: known dtypes, integer
    shapes, offsets that tile the data section exactly (no gaps, no overlaps, nothing outside)."""
    index: dict[str, tuple[str, tuple[int, ...], int]] = {}
    spans = []
    entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
    if len(entries) > MAX_TENSORS:
        raise CodecError("not_safetensors", f"file has {len(entries)} tensors, more than {MAX_TENSORS}")
    for name, entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CodecError("not_safetensors", f"tensor {name[:80]!r} has a malformed header entry")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code not in DTYPES:
            raise CodecError("bad_dtype", f"tensor {name[:80]!r} has unsupported dtype {str(code)[:20]!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise CodecError("not_safetensors", f"tensor {name[:80]!r} has a malformed shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
            raise CodecError("not_safetensors", f"tensor {name[:80]!r} has malformed data offsets")
        begin, end = offsets
        if end - begin != math.prod(shape) * DTYPES[code].itemsize:
            raise CodecError("not_safetensors", f"tensor {name[:80]!r}: offsets do not match its shape and dtype")
        index[name] = (code, tuple(shape), begin)
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise CodecError("not_safetensors", "tensor data offsets leave gaps or overlap")
        position = end
    if position != data_bytes:
        raise CodecError("not_safetensors", f"tensor data covers {position} bytes, the file holds {data_bytes}")
    return index


def read_file_header(path: str | os.PathLike[str], max_bytes: int) -> tuple[dict, int, int]:
    """A model file's parsed safetensors header, the header's length and the file's size; nothing else is read
    (``CodecError`` as ``fedchain.codec.read_header``)."""
    with Path(path).open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise CodecError("too_large", f"file is {size} bytes, limit {max_bytes}")
        if size < 8:
            raise CodecError("not_safetensors", "file is shorter than a safetensors header")
        (header_len,) = struct.unpack("<Q", fh.read(8))
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise CodecError("not_safetensors", f"bad safetensors header length {header_len}")
        raw = fh.read(header_len)
    try:
        header = loads_bounded(raw)
    except ValueError as exc:
        raise CodecError("not_safetensors", f"safetensors header is not acceptable JSON: {exc}") from None
    if not isinstance(header, dict):
        raise CodecError("not_safetensors", "safetensors header is not an object")
    return header, header_len, size


def open_model_file(path: str | os.PathLike[str], max_bytes: int) -> tuple[LazyTensors, ModelManifest]:
    """A model or dataset file's manifest and lazily read tensors; ``CodecError`` (with ``decode_model``'s reason
    codes) for anything malformed, before any tensor is read."""
    path = Path(path)
    header, header_len, size = read_file_header(path, max_bytes)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise CodecError("bad_manifest", "file has no fedchain manifest")
    manifest = ModelManifest.from_json(metadata[MANIFEST_KEY])
    index = _tensor_index(header, size - 8 - header_len)
    if manifest.kind not in DATA_KINDS:
        allowed = ("F32", *COMPACT) if manifest.kind == "update" else ("F32",)  # only updates travel compact
        for name, (code, _, _) in index.items():
            if code not in allowed:
                raise CodecError("bad_dtype", f"tensor {name[:80]} is {code}, models are float32")
    return LazyTensors(path, 8 + header_len, index), manifest


def model_header(shapes: Mapping[str, tuple[int, ...]], manifest: ModelManifest, code: str = "F32") -> bytes:
    """The safetensors header (length prefix included) ``encode_model`` writes for float32 tensors of ``shapes``
    (or safetensors writes for ``code``): ``__metadata__`` first, then the tensors by name with consecutive
    offsets, padded with spaces to 8 bytes."""
    entries: dict[str, object] = {"__metadata__": {MANIFEST_KEY: manifest.to_json()}}
    offset = 0
    for name in sorted(shapes):
        size = math.prod(shapes[name]) * DTYPES[code].itemsize
        entries[name] = {"dtype": code, "shape": list(shapes[name]), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write_model_file(tensors: Mapping[str, np.ndarray], manifest: ModelManifest,
                     path: str | os.PathLike[str], code: str = "F32") -> Path:
    """Write float32 tensors and their manifest to ``path`` (atomically), tensor by tensor: the bytes of
    ``encode_model(tensors, manifest)`` without holding them in memory. ``tensors`` may be ``LazyTensors``. An
    update may be written in a compact transport (``code`` F16 or BF16: ``to_compact``)."""
    path = Path(path)
    if manifest.kind in DATA_KINDS:
        raise CodecError("bad_manifest", "write_model_file writes models; datasets go through encode_dataset")
    if code != "F32" and (code not in COMPACT or manifest.kind != "update"):
        raise CodecError("bad_dtype", f"{code} is not a transport for a {manifest.kind} file")
    shapes = {name: tensors.shape(name) if isinstance(tensors, LazyTensors) else tuple(np.shape(tensors[name]))
              for name in tensors}
    shapes = {name: shape or (1,) for name, shape in shapes.items()}  # as encode_model's ascontiguousarray does
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model_header(shapes, manifest, code))
            for name in sorted(shapes):
                size = math.prod(shapes[name])
                step = WRITE_BLOCK // 4
                for start in range(0, size, step):
                    if isinstance(tensors, LazyTensors):
                        block = tensors.read(name, start, start + step)
                    else:
                        block = np.asarray(tensors[name]).reshape(-1)[start:start + step]
                    if block.dtype != np.float32:
                        raise CodecError("bad_dtype", f"tensor {name} is {block.dtype}, models are float32")
                    block = np.ascontiguousarray(block, dtype="<f4")
                    fh.write((to_compact(block, code) if code in COMPACT else block).tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_stored_model(store: Any, cid: str, digest: bytes | None, bound: int, scratch: Path
                      ) -> tuple[dict[str, np.ndarray], ModelManifest]:
    """A stored model's tensors in memory, read tensor by tensor from the file the store hands over
    (``ContentStore.verified_file``: checked against ``digest`` and ``bound``; a download goes to ``scratch``)."""
    tensors, manifest = open_model_file(store.verified_file(cid, sha256=digest, max_bytes=bound, scratch=scratch),
                                        bound)
    return {name: tensors[name] for name in tensors}, manifest


def model_file_bytes(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest file a model of ``shapes`` can be: its float32 data plus a maximal header."""
    return 8 + MAX_HEADER_BYTES + 4 * sum(math.prod(s) for s in shapes.values())

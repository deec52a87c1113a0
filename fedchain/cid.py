"""IPFS CIDs computed locally, equal to Kubo's ``ipfs add --cid-version=1`` (which implies raw leaves).

Layout (UnixFS, balanced): the input is cut into 262144-byte chunks; every chunk is a raw block
(CIDv1, codec raw 0x55, sha2-256).  A file of one chunk (including the empty file) is identified by that
raw leaf.  Otherwise chunks are grouped 174 at a time, in order, under dag-pb (0x70) nodes whose UnixFS
data is ``{Type=File, filesize, blocksizes...}`` and whose links are ``{Hash, Name="", Tsize}``; the
nodes of each level are grouped the same way until one root remains.  A trailing group of a single
child still gets its own parent node.  CIDs are written as multibase base32 lower case (``b...``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 262144
MAX_LINKS = 174
CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MH_SHA2_256 = 0x12
SUPPORTED_CODECS = (CODEC_RAW, CODEC_DAG_PB)

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_UNIXFS_FILE = 2


# --- encoding primitives -------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    """Unsigned LEB128, as used by protobuf and multiformats."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a minimal unsigned varint at ``pos``; return (value, next position)."""
    value = 0
    for shift_index in range(9):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * shift_index)
        if not byte & 0x80:
            if byte == 0 and shift_index > 0:
                raise ValueError("non-minimal varint")
            return value, pos
    raise ValueError("varint too long")


def _cid_bytes(codec: int, digest: bytes) -> bytes:
    return _varint(1) + _varint(codec) + bytes([MH_SHA2_256, len(digest)]) + digest


def _b32(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def _b32_decode(text: str) -> bytes:
    if text != text.lower() and text != text.upper():
        raise ValueError("mixed-case base32")
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        raw = base64.b32decode(padded)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid base32: {exc}") from exc
    if _b32(raw)[1:] != text.lower():  # rejects non-canonical trailing bits
        raise ValueError("non-canonical base32")
    return raw


def _b58_decode(text: str) -> bytes:
    if not text:
        raise ValueError("empty base58 string")
    n = 0
    for ch in text:
        try:
            n = n * 58 + _B58_INDEX[ch]
        except KeyError:
            raise ValueError(f"invalid base58 character {ch!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def _pb_bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _pb_uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


# --- DAG builder ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    cid: bytes  # binary CIDv1
    file_size: int  # bytes of file content below this node
    tsize: int  # bytes of all blocks below and including this node


def _leaf(chunk: bytes | memoryview) -> _Node:
    digest = hashlib.sha256(chunk).digest()
    return _Node(_cid_bytes(CODEC_RAW, digest), len(chunk), len(chunk))


def _parent(children: list[_Node]) -> _Node:
    """A dag-pb UnixFS File node over ``children``, canonically encoded (Links before Data)."""
    file_size = sum(c.file_size for c in children)
    unixfs = _pb_uint(1, _UNIXFS_FILE) + _pb_uint(3, file_size)
    unixfs += b"".join(_pb_uint(4, c.file_size) for c in children)
    links = b"".join(
        _pb_bytes(2, _pb_bytes(1, c.cid) + _pb_bytes(2, b"") + _pb_uint(3, c.tsize)) for c in children
    )
    block = links + _pb_bytes(1, unixfs)
    digest = hashlib.sha256(block).digest()
    return _Node(_cid_bytes(CODEC_DAG_PB, digest), file_size, len(block) + sum(c.tsize for c in children))


class CidBuilder:
    """Incremental CID computation: ``update()`` with consecutive pieces, then ``cid()``.

    Memory use is one chunk plus fewer than ``max_links`` node records per DAG level.  The defaults are
    Kubo's; other values exist to test deep DAGs with small inputs.
    """

    def __init__(self, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        if chunk_size < 1 or max_links < 2:
            raise ValueError("chunk_size must be >= 1 and max_links >= 2")
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._buffer = bytearray()
        self._levels: list[list[_Node]] = [[]]
        self._chunks = 0
        self._result: str | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._result is not None:
            raise RuntimeError("CidBuilder already finalized")
        view = memoryview(data).cast("B")
        size = self._chunk_size
        if self._buffer:
            take = min(len(view), size - len(self._buffer))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) == size and view:
                self._add_leaf(self._buffer)
                self._buffer = bytearray()
        # Keep the last full chunk buffered: whether it is the file's only chunk is not known yet.
        while len(view) > size:
            self._add_leaf(view[:size])
            view = view[size:]
        if view:  # the buffer is empty here: it was either flushed above or absorbed all of ``data``
            self._buffer += view

    def _add_leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        self._push(0, _leaf(chunk))
        self._chunks += 1

    def _push(self, level: int, node: _Node) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(node)
        if len(self._levels[level]) == self._max_links:
            full, self._levels[level] = self._levels[level], []
            self._push(level + 1, _parent(full))

    def cid(self) -> str:
        """The base32 CIDv1 of everything passed to ``update``; the builder is then finished."""
        if self._result is not None:
            return self._result
        if self._chunks == 0:  # zero or one chunk in total: the raw leaf is the file
            self._result = _b32(_leaf(self._buffer).cid)
            return self._result
        if self._buffer:
            self._add_leaf(self._buffer)
            self._buffer = bytearray()
        levels = self._levels
        level = 0
        while True:
            pending = levels[level]
            higher = any(levels[level + 1 :])
            if not higher and len(pending) == 1:
                self._result = _b32(pending[0].cid)
                return self._result
            if pending:
                levels[level] = []
                if level + 1 == len(levels):
                    levels.append([])
                levels[level + 1].append(_parent(pending))
            level += 1


def cid_for_bytes(data: bytes | bytearray | memoryview) -> str:
    """CIDv1 (base32) that ``ipfs add --cid-version=1`` gives for ``data``."""
    builder = CidBuilder()
    builder.update(data)
    return builder.cid()


def cid_for_stream(stream: BinaryIO) -> str:
    """CIDv1 of everything readable from a binary stream, read one chunk at a time."""
    builder = CidBuilder()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        builder.update(view[:n])
    return builder.cid()


def cid_for_file(path: str | os.PathLike[str]) -> str:
    """CIDv1 of a file's contents without loading the whole file."""
    with Path(path).open("rb", buffering=0) as fh:
        return cid_for_stream(fh)


# --- parsing --------------------------------------------------------------------------------------


def _decode_binary_cid(raw: bytes) -> tuple[int, bytes]:
    """Validate a binary CIDv1 and return (codec, multihash digest)."""
    version, pos = _read_varint(raw, 0)
    if version != 1:
        raise ValueError(f"unsupported CID version {version}")
    codec, pos = _read_varint(raw, pos)
    if codec not in SUPPORTED_CODECS:
        raise ValueError(f"unsupported CID codec 0x{codec:x}")
    mh_code, pos = _read_varint(raw, pos)
    mh_len, pos = _read_varint(raw, pos)
    if mh_code != MH_SHA2_256 or mh_len != 32:
        raise ValueError("unsupported multihash (only sha2-256 is accepted)")
    digest = raw[pos:]
    if len(digest) != mh_len:
        raise ValueError("multihash digest length mismatch")
    return codec, digest


def normalize_cid(cid: str) -> str:
    """Canonical base32 CIDv1 for a CIDv1 in base32/base58btc or a CIDv0 (``Qm...``).

    Only raw and dag-pb CIDs with sha2-256 multihashes are accepted; anything else raises ValueError.
    """
    if not isinstance(cid, str) or not cid.isascii() or len(cid) < 2:
        raise ValueError(f"not a CID: {cid!r}")
    if len(cid) == 46 and cid.startswith("Qm"):  # CIDv0: bare base58btc sha2-256 multihash, dag-pb
        mh = _b58_decode(cid)
        if len(mh) != 34 or mh[0] != MH_SHA2_256 or mh[1] != 32:
            raise ValueError(f"not a CIDv0: {cid!r}")
        return _b32(_cid_bytes(CODEC_DAG_PB, mh[2:]))
    prefix, body = cid[0], cid[1:]
    try:
        if prefix in "bB":
            raw = _b32_decode(body)
        elif prefix == "z":
            raw = _b58_decode(body)
        else:
            raise ValueError(f"unsupported multibase prefix {prefix!r}")
        codec, digest = _decode_binary_cid(raw)
    except ValueError as exc:
        raise ValueError(f"not a CID: {cid!r} ({exc})") from exc
    return _b32(_cid_bytes(codec, digest))


def cid_digest_hex(cid: str) -> str:
    """Hex sha2-256 digest of the multihash inside a CID (any form ``normalize_cid`` accepts)."""
    _, digest = _decode_binary_cid(_b32_decode(normalize_cid(cid)[1:]))
    return digest.hex()


def is_cid(value: object) -> bool:
    """True when ``value`` is a string ``normalize_cid`` accepts (any of its supported forms)."""
    try:
        normalize_cid(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True

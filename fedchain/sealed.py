"""Sealed validation sets: a validation set the committee can read only once a round's trainers are done.

A sealed file is a fedchain file of kind ``sealed_dataset``: ``S`` sections, each a fedchain dataset file
(``encode_dataset``) encrypted with its own 32-byte key, stored as the uint8 tensors ``section.0000`` ...; the
manifest's ``details`` hold ``sections`` and ``key_hashes`` (hex of ``sha256(KEY_DOMAIN || key)`` per section).
Round ``r`` is scored on section ``(r - 1) mod S``, whose key the sponsor publishes on chain (``ValidationKeys``)
after the round's trainer phases. Its digest is on chain from the task's creation, so neither the sections nor
their keys can change afterwards.

Encryption is the SHAKE-256 stream: ``ciphertext = plaintext XOR SHAKE-256(STREAM_DOMAIN || key)`` (each key
encrypts one section, once). Keys are secrets of the sponsor until published; never log them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import numpy as np

from fedchain.codec import (
    DEFAULT_MAX_BYTES,
    MANIFEST_KEY,
    CodecError,
    ModelManifest,
    decode_dataset,
    decode_model,
    encode_dataset,
    encode_model,
    read_header,
)

SEALED_KIND = "sealed_dataset"
KEY_DOMAIN = b"fedchain/validation-key/v1"
STREAM_DOMAIN = b"fedchain/validation-stream/v1"
MAX_SECTIONS = 1024
KEY_BYTES = 32


class KeyMismatch(CodecError):
    """A published key does not open the section it is for."""

    def __init__(self, message: str) -> None:
        super().__init__("key_mismatch", message)


def key_hash(key: bytes) -> bytes:
    """What the sealed file commits to for a key."""
    return hashlib.sha256(KEY_DOMAIN + key).digest()


def _xor_stream(data: bytes, key: bytes) -> bytes:
    stream = hashlib.shake_256(STREAM_DOMAIN + key).digest(len(data))
    return (np.frombuffer(data, dtype=np.uint8) ^ np.frombuffer(stream, dtype=np.uint8)).tobytes()


def section_of(round_: int, sections: int) -> int:
    """The section round ``round_`` (from 1) is scored on."""
    if round_ < 1 or sections < 1:
        raise ValueError(f"no section for round {round_} of {sections}")
    return (round_ - 1) % sections


@dataclass(frozen=True)
class SealedDataset:
    """A parsed sealed file: the encrypted sections and their key hashes (same order)."""

    name: str
    ciphertexts: tuple[bytes, ...]
    key_hashes: tuple[bytes, ...]

    @property
    def sections(self) -> int:
        return len(self.ciphertexts)

    def open(self, round_: int, key: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
        """Round ``round_``'s validation rows; ``KeyMismatch`` for a key that is not its section's,
        ``CodecError`` for a section that is not a dataset."""
        index = section_of(round_, self.sections)
        if len(key) != KEY_BYTES or key_hash(key) != self.key_hashes[index]:
            raise KeyMismatch(f"the key published for round {round_} does not open section {index}")
        return decode_dataset(_xor_stream(self.ciphertexts[index], key), max_bytes)


def seal_dataset(x: np.ndarray, y: np.ndarray, name: str, sections: int,
                 keys: list[bytes] | None = None) -> tuple[bytes, list[bytes]]:
    """The sealed file of ``(x, y)`` split into ``sections`` interleaved parts (row ``i`` in section
    ``i mod sections``), and the keys (fresh random ones unless given)."""
    if not 1 <= sections <= min(MAX_SECTIONS, len(y)):
        raise ValueError(f"sections must be in [1, {min(MAX_SECTIONS, len(y))}] for {len(y)} rows, not {sections}")
    keys = [secrets.token_bytes(KEY_BYTES) for _ in range(sections)] if keys is None else list(keys)
    if len(keys) != sections or any(len(k) != KEY_BYTES or not any(k) for k in keys):
        raise ValueError(f"need {sections} non-zero keys of {KEY_BYTES} bytes")
    tensors: dict[str, np.ndarray] = {}
    for index, key in enumerate(keys):
        plain = encode_dataset(x[index::sections], y[index::sections], name=f"{name}/{index}")
        tensors[f"section.{index:04d}"] = np.frombuffer(_xor_stream(plain, key), dtype=np.uint8)
    manifest = ModelManifest(kind=SEALED_KIND, architecture=name, num_samples=int(len(y)),
                             details={"sections": sections, "key_hashes": [key_hash(k).hex() for k in keys]})
    return encode_model(tensors, manifest), keys


def read_sealed(blob: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SealedDataset:
    """Parse a sealed file; ``CodecError`` for anything malformed (files come from strangers)."""
    tensors, manifest = decode_model(blob, max_bytes)
    if manifest.kind != SEALED_KIND:
        raise CodecError("bad_manifest", f"file is a {manifest.kind!r} file, not a sealed validation set")
    sections, hashes = manifest.details.get("sections"), manifest.details.get("key_hashes")
    if isinstance(sections, bool) or not isinstance(sections, int) or not 1 <= sections <= MAX_SECTIONS:
        raise CodecError("bad_manifest", f"sealed file: sections must be an integer in [1, {MAX_SECTIONS}]")
    names = [f"section.{i:04d}" for i in range(sections)]
    if sorted(tensors) != names:
        raise CodecError("bad_manifest", f"sealed file: tensors must be exactly {names[0]}..{names[-1]}")
    if not isinstance(hashes, list) or len(hashes) != sections or not all(_is_hash(h) for h in hashes):
        raise CodecError("bad_manifest", "sealed file: key_hashes must be one 64-digit hex hash per section")
    ciphertexts = []
    for name in names:
        array = tensors[name]
        if array.dtype != np.uint8 or array.ndim != 1:
            raise CodecError("bad_dtype", f"sealed file: {name} must be a 1-D uint8 tensor")
        ciphertexts.append(array.tobytes())
    return SealedDataset(manifest.architecture, tuple(ciphertexts), tuple(bytes.fromhex(h) for h in hashes))


def is_sealed(blob: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
    """Whether a file's manifest says it is a sealed validation set (False for anything unreadable)."""
    try:
        metadata = read_header(blob, max_bytes).get("__metadata__") or {}
        return ModelManifest.from_json(metadata[MANIFEST_KEY]).kind == SEALED_KIND
    except (CodecError, KeyError, TypeError):
        return False


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)

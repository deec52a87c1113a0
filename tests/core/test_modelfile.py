"""Model files on disk: written byte for byte as encode_model, read tensor by tensor as decode_model reads them,
hostile files refused before any tensor is read, and store files checked as they stream."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from fedchain.cid import cid_for_bytes
from fedchain.codec import CodecError, ModelManifest, decode_model, encode_dataset, encode_model, sha256
from fedchain.manifests import fetch_manifest
from fedchain.modelfile import model_file_bytes, open_model_file, read_file_header, write_model_file
from fedchain.store import ContentNotFound, ContentTooLarge, DigestMismatch, LocalContentStore

MANIFEST = ModelManifest(kind="update", architecture="mlp:3-2", details={"note": "ü \" \\ \n"})


def _random_models(count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    names = ["0.weight", "0.bias", "b", "a.w", "z" * 50, "naïve", "q\"uote"]
    out = []
    for _ in range(count):
        chosen = rng.choice(names, size=rng.integers(1, len(names)), replace=False)
        out.append({str(n): rng.standard_normal(tuple(rng.integers(0, 5, size=rng.integers(0, 4))))
                    .astype(np.float32) for n in chosen})
    return out


@pytest.mark.parametrize("tensors", _random_models(25))
def test_written_files_are_encode_model_bytes_and_read_back_alike(tensors, tmp_path) -> None:
    blob = encode_model(tensors, MANIFEST)
    path = write_model_file(tensors, MANIFEST, tmp_path / "m")
    assert path.read_bytes() == blob
    lazy, manifest = open_model_file(path, len(blob))
    decoded, same = decode_model(blob)
    assert manifest == same == MANIFEST and list(lazy) == list(decoded)
    for name in decoded:
        assert lazy[name].shape == decoded[name].shape and np.array_equal(lazy[name], decoded[name])
        flat = decoded[name].reshape(-1)
        assert np.array_equal(lazy.read(name, 1, 3), flat[1:3])
    assert write_model_file(lazy, MANIFEST, tmp_path / "copy").read_bytes() == blob  # lazily read, rewritten


def _with_header(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _hostile() -> dict[str, bytes]:
    meta = {"__metadata__": {"fedchain.manifest": MANIFEST.to_json()}}
    four = np.arange(4, dtype=np.float32).tobytes()
    good = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    return {
        "empty": b"",
        "short": b"\x01\x00",
        "huge header length": struct.pack("<Q", 1 << 40) + b"{}",
        "header past the end": struct.pack("<Q", 100) + b"{}",
        "not json": struct.pack("<Q", 3) + b"{{{",
        "json list": _with_header([1, 2], b""),  # type: ignore[arg-type]
        "no manifest": _with_header({"a": good}, four),
        "gap": _with_header(meta | {"a": {"dtype": "F32", "shape": [4], "data_offsets": [4, 20]}}, four + b"\0" * 4),
        "overlap": _with_header(meta | {"a": good, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                                four),
        "offsets past the data": _with_header(meta | {"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}},
                                              four),
        "trailing bytes": _with_header(meta | {"a": good}, four + b"xxxx"),
        "shape and offsets disagree": _with_header(
            meta | {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, four),
        "negative dimension": _with_header(
            meta | {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, four),
        "bool dimension": _with_header(meta | {"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}},
                                       four[:4]),
        "unknown dtype": _with_header(meta | {"a": {"dtype": "X9", "shape": [4], "data_offsets": [0, 16]}}, four),
        "int tensor in a model": _with_header(meta | {"a": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}},
                                              four),
        "deep json": _with_header(meta | {"a": good, "d": json.loads("[" * 40 + "1" + "]" * 40)}, four),
    }


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_hostile_files_are_refused_like_decode_model_refuses_them(name, tmp_path) -> None:
    blob = _hostile()[name]
    path = tmp_path / "f"
    path.write_bytes(blob)
    with pytest.raises(CodecError):
        open_model_file(path, 1 << 20)
    with pytest.raises(CodecError):
        decode_model(blob, 1 << 20)


def test_header_entries_with_unknown_fields_are_refused(tmp_path) -> None:
    """Stricter than the safetensors library, which ignores them: no file we write has one."""
    meta = {"__metadata__": {"fedchain.manifest": MANIFEST.to_json()}}
    path = tmp_path / "f"
    path.write_bytes(_with_header(meta | {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}},
                                  b"\0" * 4))
    with pytest.raises(CodecError):
        open_model_file(path, 1 << 20)


def test_size_bounds_are_checked_before_reading(tmp_path) -> None:
    tensors = {"w": np.ones((10, 10), np.float32)}
    path = write_model_file(tensors, MANIFEST, tmp_path / "m")
    with pytest.raises(CodecError) as caught:
        open_model_file(path, path.stat().st_size - 1)
    assert caught.value.code == "too_large"
    assert model_file_bytes({"w": (10, 10)}) >= path.stat().st_size
    header, _, size = read_file_header(path, size := path.stat().st_size)
    assert header["w"]["shape"] == [10, 10] and size == path.stat().st_size
    dataset = tmp_path / "d"
    dataset.write_bytes(encode_dataset(np.ones((3, 2)), np.array([0, 1, 0]), "d"))
    lazy, manifest = open_model_file(dataset, 1 << 20)  # datasets carry int64 labels
    assert manifest.kind == "dataset" and lazy["y"].dtype == np.int64


def test_the_local_store_checks_files_as_they_stream(tmp_path) -> None:
    store = LocalContentStore(tmp_path / "store")
    blob = encode_model({"w": np.arange(1000, dtype=np.float32)}, MANIFEST)
    cid = store.put(blob)
    own = store.verified_file(cid, sha256=sha256(blob), max_bytes=len(blob), scratch=tmp_path)
    assert own.read_bytes() == blob and own.parent == store.root / "objects"  # no copy for a local store
    copy = store.get_file(cid, tmp_path / "copy", sha256=sha256(blob), max_bytes=len(blob))
    assert copy.read_bytes() == blob
    with pytest.raises(DigestMismatch):
        store.verified_file(cid, sha256=b"\0" * 32, max_bytes=len(blob), scratch=tmp_path)
    with pytest.raises(DigestMismatch):
        store.get_file(cid, tmp_path / "bad", sha256=b"\0" * 32, max_bytes=len(blob))
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))  # nothing half written is left
    with pytest.raises(ContentTooLarge):
        store.verified_file(cid, max_bytes=len(blob) - 1, scratch=tmp_path)
    with pytest.raises(ContentNotFound):
        store.verified_file(cid_for_bytes(b"never stored"), max_bytes=10, scratch=tmp_path)
    assert fetch_manifest(store, cid, sha256(blob), len(blob)) == MANIFEST  # from the header alone
    with pytest.raises(DigestMismatch):
        fetch_manifest(store, cid, b"\1" * 32, len(blob))


def test_a_stored_file_altered_on_disk_is_caught_by_its_cid(tmp_path) -> None:
    store = LocalContentStore(tmp_path / "store")
    blob = encode_model({"w": np.arange(10, dtype=np.float32)}, MANIFEST)
    cid = store.put(blob)
    (store.root / "objects" / cid).write_bytes(blob[:-4] + b"\0\0\0\0")  # same size, other bytes
    with pytest.raises(DigestMismatch, match="CID"):
        store.verified_file(cid, max_bytes=len(blob), scratch=tmp_path)  # even without a digest to compare

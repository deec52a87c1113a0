"""Model and dataset files: round trips, determinism, and refusal of malformed input."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import safetensors.numpy

from fedchain.codec import (
    MANIFEST_KEY,
    MODEL_FORMAT,
    CodecError,
    ModelManifest,
    decode_dataset,
    decode_model,
    encode_dataset,
    encode_model,
    read_header,
)


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "fc1.weight": rng.standard_normal((8, 4)).astype(np.float32),
        "fc1.bias": rng.standard_normal(8).astype(np.float32),
        "fc2.weight": rng.standard_normal((3, 8)).astype(np.float32),
    }


def manifest(**overrides) -> ModelManifest:
    fields = dict(
        kind="update",
        architecture="mlp:4-8-3",
        parent_cid="bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        task_id=3,
        round=2,
        trainer="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        num_samples=120,
        epsilon_spent=1.5,
        metrics={"loss": 0.25, "accuracy": 0.9},
        details={"note": ["a", 1]},
    )
    fields.update(overrides)
    return ModelManifest(**fields)


def raw_file(arrays: dict[str, np.ndarray], manifest_json: str | None) -> bytes:
    metadata = None if manifest_json is None else {MANIFEST_KEY: manifest_json}
    return safetensors.numpy.save(arrays, metadata=metadata)


def reason(blob: bytes, **kwargs) -> str:
    with pytest.raises(CodecError) as info:
        decode_model(blob, **kwargs)
    return info.value.code


def test_round_trip() -> None:
    t, m = tensors(), manifest()
    out, got = decode_model(encode_model(t, m))
    assert got == m
    assert set(out) == set(t)
    for name in t:
        assert out[name].dtype == np.float32
        np.testing.assert_array_equal(out[name], t[name])


def test_bytes_are_deterministic() -> None:
    t = tensors()
    a = encode_model(t, manifest())
    b = encode_model(dict(reversed(list(t.items()))), manifest(metrics={"accuracy": 0.9, "loss": 0.25}))
    assert a == b
    assert encode_model(t, manifest(round=3)) != a


def test_manifest_is_canonical_json_in_header() -> None:
    header = read_header(encode_model(tensors(), manifest()))
    text = header["__metadata__"][MANIFEST_KEY]
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert data["format"] == MODEL_FORMAT and data["kind"] == "update"
    assert set(data) == {
        "format", "architecture", "parent_cid", "task_id", "round", "trainer",
        "num_samples", "metrics", "epsilon_spent", "kind", "details",
    }  # fmt: skip


def test_rejects_non_safetensors() -> None:
    assert reason(b"this is not a safetensors file at all") == "not_safetensors"
    assert reason(b"abc") == "not_safetensors"
    assert reason(b"") == "not_safetensors"
    assert reason(struct.pack("<Q", 2) + b"[]") == "not_safetensors"


def test_rejects_truncated() -> None:
    blob = encode_model(tensors(), manifest())
    for cut in (len(blob) - 1, len(blob) - 40, 20, 9):
        assert reason(blob[:cut]) == "not_safetensors", cut


def test_rejects_huge_header_length() -> None:
    blob = encode_model(tensors(), manifest())
    assert reason(struct.pack("<Q", 2**40) + blob[8:]) == "not_safetensors"
    assert reason(struct.pack("<Q", 2**64 - 1) + blob[8:]) == "not_safetensors"


def test_rejects_missing_manifest() -> None:
    assert reason(raw_file(tensors(), None)) == "bad_manifest"
    assert reason(safetensors.numpy.save(tensors(), metadata={"other": "x"})) == "bad_manifest"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"format": "other/1", "kind": "update", "architecture": "a"}),
        json.dumps({"format": MODEL_FORMAT, "kind": "weird", "architecture": "a"}),
        json.dumps({"format": MODEL_FORMAT, "architecture": "a"}),
        json.dumps({"format": MODEL_FORMAT, "kind": "update", "architecture": 5}),
        json.dumps({"format": MODEL_FORMAT, "kind": "update", "architecture": "a", "round": "2"}),
        json.dumps({"format": MODEL_FORMAT, "kind": "update", "architecture": "a", "num_samples": -1}),
        json.dumps({"format": MODEL_FORMAT, "kind": "update", "architecture": "a", "metrics": [1]}),
        json.dumps({"format": MODEL_FORMAT, "kind": "update", "architecture": "a", "details": "x"}),
        '{"format":"fedchain.model/1","kind":"update","architecture":"a","metrics":{"loss":NaN}}',
    ],
)
def test_rejects_bad_manifest(text: str) -> None:
    assert reason(raw_file(tensors(), text)) == "bad_manifest"


def test_rejects_non_float32_model_tensors() -> None:
    bad = {**tensors(), "fc1.bias": np.zeros(8, dtype=np.float64)}
    with pytest.raises(CodecError) as info:
        encode_model(bad, manifest())
    assert info.value.code == "bad_dtype"
    assert reason(raw_file(bad, manifest().to_json())) == "bad_dtype"
    ints = {"w": np.arange(4, dtype=np.int32)}
    assert reason(raw_file(ints, manifest(kind="aggregate").to_json())) == "bad_dtype"


def test_rejects_too_large() -> None:
    blob = encode_model(tensors(), manifest())
    assert reason(blob, max_bytes=len(blob) - 1) == "too_large"
    assert decode_model(blob, max_bytes=len(blob))[1] == manifest()


def test_dataset_round_trip() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    y = rng.integers(0, 10, size=20)
    blob = encode_dataset(x, y, name="digits-validation")
    gx, gy = decode_dataset(blob)
    assert gx.dtype == np.float32 and gy.dtype == np.int64
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    _, m = decode_model(blob)
    assert m.kind == "dataset" and m.num_samples == 20 and m.architecture == "digits-validation"
    assert blob == encode_dataset(x, y, name="digits-validation")


def test_dataset_rejects_models_and_bad_shapes() -> None:
    with pytest.raises(CodecError):
        decode_dataset(encode_model(tensors(), manifest()))
    dataset_manifest = ModelManifest(kind="dataset", architecture="d").to_json()
    mismatched = {"x": np.zeros((3, 2), np.float32), "y": np.zeros(4, np.int64)}
    with pytest.raises(CodecError) as info:
        decode_dataset(raw_file(mismatched, dataset_manifest))
    assert info.value.code == "bad_shape"
    wrong_dtype = {"x": np.zeros((3, 2), np.float64), "y": np.zeros(3, np.int64)}
    with pytest.raises(CodecError) as info:
        decode_dataset(raw_file(wrong_dtype, dataset_manifest))
    assert info.value.code == "bad_dtype"

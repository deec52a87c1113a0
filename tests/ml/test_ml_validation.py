"""Update validation: every reject code, and garbage bytes never raise anything but RejectedUpdate."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import safetensors.numpy

from aggregator.validation import RejectedUpdate, validate_update
from fedchain.architectures import expected_shapes, initial_tensors
from fedchain.codec import MANIFEST_KEY, ModelManifest, encode_model

ARCH = "mlp:8-4-3"
SHAPES = expected_shapes(ARCH)
LIMIT = 1 << 20


def _manifest(**overrides: object) -> ModelManifest:
    fields = {"kind": "update", "architecture": ARCH, "trainer": "0xabc", "num_samples": 12, "round": 1}
    fields.update(overrides)
    return ModelManifest(**fields)  # type: ignore[arg-type]


def _blob(tensors: dict[str, np.ndarray] | None = None, **overrides: object) -> bytes:
    return encode_model(initial_tensors(ARCH, 0) if tensors is None else tensors, _manifest(**overrides))


def _raw(tensors: dict[str, np.ndarray], manifest: str | None) -> bytes:
    """safetensors bytes without the codec's float32 check (to build bad files)."""
    return safetensors.numpy.save(tensors, metadata=None if manifest is None else {MANIFEST_KEY: manifest})


def _code(blob: bytes, max_bytes: int = LIMIT) -> str:
    with pytest.raises(RejectedUpdate) as info:
        validate_update(blob, SHAPES, max_bytes)
    assert info.value.message and info.value.code in str(info.value)
    return info.value.code


def test_valid_update_passes() -> None:
    tensors, manifest = validate_update(_blob(), SHAPES, LIMIT)
    assert manifest.kind == "update" and manifest.num_samples == 12
    good = initial_tensors(ARCH, 0)
    assert set(tensors) == set(good) and all(np.array_equal(tensors[k], good[k]) for k in good)


def test_reject_codes() -> None:
    good = initial_tensors(ARCH, 0)
    assert _code(b"definitely not a model") == "not_safetensors"
    assert _code(b"") == "not_safetensors"
    assert _code(_raw(good, None)) == "bad_manifest"
    assert _code(_raw(good, "{not json")) == "bad_manifest"
    assert _code(_blob(kind="aggregate")) == "bad_manifest"
    assert _code(_blob(num_samples="12")) == "bad_manifest"
    assert _code(_blob(trainer=7)) == "bad_manifest"
    assert _code(_blob({k: v for k, v in good.items() if k != "2.bias"})) == "wrong_keys"
    assert _code(_blob({**good, "extra": np.zeros(1, np.float32)})) == "wrong_keys"
    assert _code(_blob({**good, "2.bias": np.zeros(4, np.float32)})) == "wrong_shape"
    assert _code(_blob({**good, "0.weight": good["0.weight"].T.copy()})) == "wrong_shape"
    as64 = {**good, "0.bias": good["0.bias"].astype(np.float64)}
    assert _code(_raw(as64, _manifest().to_json())) == "bad_dtype"
    nan = good["0.weight"].copy()
    nan[1, 2] = np.nan
    assert _code(_blob({**good, "0.weight": nan})) == "non_finite"
    inf = good["2.bias"].copy()
    inf[0] = -np.inf
    assert _code(_blob({**good, "2.bias": inf})) == "non_finite"
    assert _code(_blob(), max_bytes=100) == "too_large"


def test_lying_header_is_rejected() -> None:
    header = json.dumps(
        {"0.weight": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]},
         "__metadata__": {MANIFEST_KEY: _manifest().to_json()}}
    ).encode()
    assert _code(struct.pack("<Q", len(header)) + header + b"\0" * 64) == "not_safetensors"
    huge = struct.pack("<Q", 1 << 62) + b"{}"
    assert _code(huge) == "not_safetensors"


def _outcome(blob: bytes) -> str:
    try:
        validate_update(blob, SHAPES, LIMIT)
    except RejectedUpdate as exc:
        return exc.code
    return "ok"


def test_garbage_never_raises_anything_else() -> None:
    rng = np.random.default_rng(1234)
    good = _blob()
    cases: list[bytes] = [rng.bytes(int(n)) for n in rng.integers(0, 600, size=150)]
    cases += [good[: int(n)] for n in rng.integers(0, len(good), size=150)]
    for _ in range(300):
        flipped = bytearray(good)
        for pos in rng.integers(0, len(good), size=int(rng.integers(1, 4))):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(flipped))
    header_len = struct.unpack("<Q", good[:8])[0]
    for _ in range(100):  # garbage inside a well-formed length prefix
        cases.append(struct.pack("<Q", header_len) + rng.bytes(header_len + int(rng.integers(0, 64))))
    outcomes = {_outcome(blob) for blob in cases}
    assert "not_safetensors" in outcomes and len(outcomes) >= 3

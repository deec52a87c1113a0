"""Fuzzing the parsers strangers' bytes reach (issue 15): the update validator, the model and dataset codec, the
manifest and aggregate-details readers. The property, for any input: tensors (or a typed value) or the codec's
own error with a reason code, within bounded time; never another exception, a hang or a RecursionError."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.validation import RejectedUpdate, check_change, validate_update
from fedchain.architectures import expected_shapes, initial_tensors
from fedchain.codec import (
    MAX_HEADER_BYTES,
    CodecError,
    ModelManifest,
    decode_dataset,
    decode_model,
    encode_dataset,
    encode_model,
    loads_bounded,
)
from fedchain.manifests import AggregateDetails

ARCH = "mlp:4-3-2"
SHAPES = expected_shapes(ARCH)
LIMIT = 1 << 20
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
DTYPES = ["F32", "F16", "F64", "I64", "I32", "U8", "BOOL", "BF16", "", "XYZ", 7, None]


def _validate(blob: bytes) -> None:
    """Tensors or a rejection, and fast."""
    started = time.monotonic()
    try:
        tensors, _ = validate_update(blob, SHAPES, LIMIT)
        assert set(tensors) == set(SHAPES)
    except RejectedUpdate as exc:
        assert exc.code and isinstance(exc.message, str)
    assert time.monotonic() - started < 2.0


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_are_an_update_or_a_rejection(blob: bytes) -> None:
    _validate(blob)
    _validate(struct.pack("<Q", len(blob)) + blob)  # a plausible header length in front


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**60), 10**60), st.floats(allow_nan=False),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=30)


@st.composite
def headers(draw) -> bytes:
    """Safetensors files whose header fields are drawn from hostile ranges: lengths, offsets, dtypes, shapes,
    names and the manifest's JSON."""
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.one_of(st.sampled_from(sorted(SHAPES)), st.text(max_size=40)), min_size=n,
                          max_size=n))
    header: dict = {}
    offset = 0
    for name in names:
        shape = draw(st.lists(st.integers(-2, 2**40), max_size=4))
        size = draw(st.integers(0, 64))
        start = draw(st.sampled_from([offset, offset + 1, 0, 2**63]))
        header[name] = {"dtype": draw(st.sampled_from(DTYPES)), "shape": shape,
                        "data_offsets": [start, start + size] if draw(st.booleans()) else draw(json_value)}
        offset = start + size if isinstance(start, int) and start < 2**40 else offset
    manifest = draw(st.one_of(
        st.just(ModelManifest(kind="update", architecture=ARCH).to_json()),
        json_value.map(lambda v: json.dumps({"format": "fedchain-model/v1", "kind": "update", "details": v})),
        st.text(max_size=50)))
    header["__metadata__"] = draw(st.one_of(st.just({"fedchain": manifest}), json_value))
    body = json.dumps(header).encode()
    declared = draw(st.sampled_from([len(body), len(body) + 1, len(body) - 1, 0, 2**63, MAX_HEADER_BYTES + 1]))
    data = draw(st.binary(max_size=256))
    return struct.pack("<Q", max(0, declared) % 2**64) + body + data


@FUZZ
@given(headers())
def test_hostile_headers_are_updates_or_rejections(blob: bytes) -> None:
    _validate(blob)


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_nesting_is_refused_not_a_recursion_error(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    with pytest.raises(ValueError):
        loads_bounded(nested)
    with pytest.raises(CodecError):
        ModelManifest.from_json('{"format": "fedchain-model/v1", "kind": "update", "details": ' + nested + "}")
    header = json.dumps({"__metadata__": {"fedchain": "{}"}, "x": "y"}).encode()[:-1] + b', "z": ' + \
        nested.encode() + b"}"
    with pytest.raises(CodecError):
        decode_model(struct.pack("<Q", len(header)) + header)


def test_huge_numbers_are_refused() -> None:
    for text in ('{"a": ' + "9" * 5000 + "}", '{"a": 1' + "0" * 400 + ".5}", '{"a": 1e999}', '{"a": NaN}'):
        with pytest.raises(ValueError):
            loads_bounded(text)
    manifest = '{"format": "fedchain-model/v1", "kind": "update", "task_id": ' + "9" * 5000 + "}"
    with pytest.raises(CodecError):
        ModelManifest.from_json(manifest)


@FUZZ
@given(json_value)
def test_aggregate_details_from_any_json(value) -> None:
    try:
        details = AggregateDetails.from_json(value)
    except CodecError:
        return
    assert isinstance(details.scores, dict) and isinstance(details.weights, dict)


def _dataset(x, y) -> bytes:
    return encode_dataset(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64), "set")


@pytest.mark.parametrize("x,y,code", [
    (np.zeros((0, 4)), np.zeros(0), "bad_shape"),  # no rows
    (np.full((3, 4), np.nan), [0, 1, 0], "non_finite"),
    (np.full((3, 4), np.inf), [0, 1, 0], "non_finite"),
    (np.zeros((3, 4)), [0, -1, 0], "bad_labels"),
    (np.zeros((3, 4)), [0, 1], "bad_shape"),
])
def test_bad_validation_sets_fail_on_decode(x, y, code) -> None:
    with pytest.raises(CodecError) as info:
        decode_dataset(_dataset(x, y))
    assert info.value.code == code


def test_a_set_that_does_not_fit_the_architecture_is_named() -> None:
    from fedchain.architectures import dataset_problem

    x, y = decode_dataset(_dataset(np.zeros((3, 5)), [0, 1, 9]))
    assert "5 features" in dataset_problem(ARCH, x, y)
    x, y = decode_dataset(_dataset(np.zeros((3, 4)), [0, 1, 9]))
    assert "labels run from 0 to 9" in dataset_problem(ARCH, x, y)
    assert dataset_problem(ARCH, *decode_dataset(_dataset(np.zeros((3, 4)), [0, 1, 1]))) is None


def test_absurd_changes_are_rejected_relative_to_the_global_model() -> None:
    glob = initial_tensors(ARCH, 0)
    check_change({k: v * 2 for k, v in glob.items()}, glob, 10.0)  # a large but plausible step
    for bad in ({k: np.full_like(v, 1e38) for k, v in glob.items()}, {k: v * 50 for k, v in glob.items()}):
        with pytest.raises(RejectedUpdate) as info:
            check_change(bad, glob, 10.0)
        assert info.value.code == "absurd_update"
    zero = {k: np.zeros_like(v) for k, v in glob.items()}  # a zero global model: the bound is 10 (norm floor 1)
    check_change({k: np.full_like(v, 0.5) for k, v in glob.items()}, zero, 10.0)


def test_evaluation_of_huge_logits_is_numerically_sound() -> None:
    from aggregator.scoring import MAX_UINT64, evaluate, quantize_micro

    x, y = np.ones((6, 4)), np.array([0, 1, 0, 1, 0, 1])
    equal = {k: np.full_like(v, 1e38) for k, v in initial_tensors("logreg:4-2", 0).items()}
    assert evaluate("logreg:4-2", equal, x, y).loss == pytest.approx(np.log(2))  # not 0
    skewed = {"0.weight": np.array([[1e38] * 4, [-1e38] * 4], np.float32), "0.bias": np.zeros(2, np.float32)}
    loss = evaluate("logreg:4-2", skewed, x, y).loss
    assert loss > 1e38  # half the labels are confidently wrong
    assert quantize_micro(float("inf")) == MAX_UINT64


def test_a_real_update_still_validates() -> None:
    blob = encode_model(initial_tensors(ARCH, 3), ModelManifest(kind="update", architecture=ARCH))
    tensors, manifest = validate_update(blob, SHAPES, LIMIT)
    assert manifest.kind == "update" and set(tensors) == set(SHAPES)

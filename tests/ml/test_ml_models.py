"""Architecture registry: shapes, deterministic init, bad ids, clean tensor names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from client.modules import build_model, load_tensors, to_numpy
from fedchain.architectures import MAX_PARAMETERS, expected_shapes, initial_tensors, parse_architecture


@pytest.mark.parametrize(
    ("architecture", "shapes"),
    [
        ("mlp:64-32-10", {"0.weight": (32, 64), "0.bias": (32,), "2.weight": (10, 32), "2.bias": (10,)}),
        ("logreg:4-3", {"0.weight": (3, 4), "0.bias": (3,)}),
        ("mlp:5-2", {"0.weight": (2, 5), "0.bias": (2,)}),
    ],
)
def test_expected_shapes_match_built_model(architecture: str, shapes: dict[str, tuple[int, ...]]) -> None:
    assert expected_shapes(architecture) == shapes
    model = build_model(architecture)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    out = model(torch.zeros(7, parse_architecture(architecture).num_features))
    assert out.shape == (7, parse_architecture(architecture).num_classes)


def test_mlp_has_relu_between_layers_only() -> None:
    model = build_model("mlp:3-4-5-2")
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_initial_tensors_deterministic_float32() -> None:
    a = initial_tensors("mlp:64-32-10", seed=3)
    b = initial_tensors("mlp:64-32-10", seed=3)
    c = initial_tensors("mlp:64-32-10", seed=4)
    assert {k: v.shape for k, v in a.items()} == expected_shapes("mlp:64-32-10")
    for name in a:
        assert a[name].dtype == np.float32 and a[name].flags.c_contiguous
        assert np.array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])
    bound = 1 / np.sqrt(64)
    assert np.abs(a["0.weight"]).max() <= bound and np.abs(a["0.weight"]).max() > 0.9 * bound


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "mlp",
        "mlp:",
        "cnn:1-2",
        "MLP:4-2",
        "mlp:64",
        "mlp:64--10",
        "mlp:064-10",
        "mlp:-1-10",
        "mlp:+4-2",
        "mlp: 64-10",
        "mlp:64-0-10",
        "mlp:64-1",
        "logreg:4-3-2",
        "logreg:4",
        "mlp:1.5-2",
        "mlp:1000000-2000-10",  # 2e9 parameters, over 2^30
        "mlp:2000000-2",
        "mlp:" + "-".join(["2"] * 70),
        "mlp:" + "1" * 600,
    ],
)
def test_bad_architecture_ids_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        build_model(bad)
    with pytest.raises(ValueError):
        expected_shapes(bad)


def test_non_string_id_raises() -> None:
    with pytest.raises(ValueError):
        build_model(12)  # type: ignore[arg-type]


def test_parameter_bound_message() -> None:
    with pytest.raises(ValueError, match="parameters"):
        parse_architecture("mlp:100000-100000-2")
    assert parse_architecture("mlp:1000-1000-10").num_parameters() < MAX_PARAMETERS


def test_to_numpy_and_load_roundtrip() -> None:
    tensors = initial_tensors("mlp:6-5-3", seed=1)
    model = build_model("mlp:6-5-3")
    load_tensors(model, tensors)
    back = to_numpy(model)
    assert set(back) == set(tensors)
    for name in tensors:
        assert back[name].dtype == np.float32
        assert np.array_equal(back[name], tensors[name])


def test_to_numpy_strips_opacus_prefix() -> None:
    from opacus import GradSampleModule

    model = build_model("mlp:6-5-3")
    wrapped = GradSampleModule(model)
    assert any(k.startswith("_module.") for k in wrapped.state_dict())
    assert set(to_numpy(wrapped)) == set(expected_shapes("mlp:6-5-3"))
    tensors = initial_tensors("mlp:6-5-3", seed=2)
    load_tensors(wrapped, {f"_module.{k}": v for k, v in tensors.items()})
    assert np.array_equal(to_numpy(model)["2.bias"], tensors["2.bias"])


def test_load_tensors_rejects_wrong_names_and_shapes() -> None:
    model = build_model("logreg:4-3")
    good = initial_tensors("logreg:4-3", seed=0)
    with pytest.raises(ValueError, match="missing"):
        load_tensors(model, {"0.weight": good["0.weight"]})
    with pytest.raises(ValueError, match="extra"):
        load_tensors(model, {**good, "9.weight": good["0.bias"]})
    with pytest.raises(ValueError, match="shape"):
        load_tensors(model, {**good, "0.bias": np.zeros(4, np.float32)})

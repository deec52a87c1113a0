"""The architecture registry: the cnn family (numpy forward = torch forward, deterministic, DP through Opacus),
bounds on ids, the parameter-spec digest, image .npz files, and families from installed packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aggregator.scoring import evaluate, logits
from client.modules import build_model, load_tensors, to_numpy
from client.trainer import default_train_config, train_local
from fedchain.architectures import (
    expected_shapes,
    families,
    initial_tensors,
    model_problem,
    parameter_spec_digest,
    parse_architecture,
)
from fedchain.data import load_dataset, load_npz, split_holdout
from tests.support.subproc import ROOT, run_with_threads

CNN = "cnn:1x8x8-8-16-10"


@pytest.mark.parametrize("arch", [CNN, "cnn:3x7x5-4-3", "cnn:2x9x9-5-6-7-4", "mlp:12-7-3"])
def test_numpy_forward_matches_torch(arch: str) -> None:
    spec = parse_architecture(arch)
    tensors = initial_tensors(arch, seed=3)
    model = build_model(arch)
    load_tensors(model, tensors)
    assert to_numpy(model).keys() == spec.parameter_shapes().keys()  # the module's names are the spec's
    x = np.random.default_rng(1).normal(size=(40, spec.num_features))
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x)).numpy()
    assert np.allclose(logits(arch, tensors, x), expected, rtol=1e-10, atol=1e-10)


def test_cnn_spec_shapes_and_bounds() -> None:
    assert expected_shapes(CNN) == {"1.weight": (8, 1, 3, 3), "1.bias": (8,), "4.weight": (16, 8, 3, 3),
                                    "4.bias": (16,), "8.weight": (10, 64), "8.bias": (10,)}
    assert parse_architecture(CNN).num_features == 64
    for bad, why in [("cnn:1x8x8-10", "at least one conv"), ("cnn:1x8-4-10", "<C>x<H>x<W>"),
                     ("cnn:1x4x4-2-2-2-10", "too small"), ("cnn:1x8x8-4-1", "2 output classes"),
                     ("cnn:1x 8x8-4-10", "malformed"), ("cnn:1x2048x2048-8-10", "per sample"),
                     ("cnn:1x8x8", "expected"), ("cnn:8000x2x2-1-2", "kernel cells"),
                     ("resnet:1x8x8-4-10", "unknown architecture")]:
        with pytest.raises(ValueError, match=why):
            parse_architecture(bad)
    assert set(families()) >= {"mlp", "logreg", "cnn"}


def test_parameter_spec_digest_names_the_tensors() -> None:
    assert parameter_spec_digest(CNN) == parameter_spec_digest(CNN)
    assert len({parameter_spec_digest(a) for a in (CNN, "cnn:1x8x8-8-17-10", "mlp:64-10", "logreg:64-10")}) == 3
    assert parameter_spec_digest("mlp:64-10") == parameter_spec_digest("logreg:64-10")  # the same tensors


def test_cnn_model_problem_refuses_the_wrong_tensors() -> None:
    tensors = initial_tensors(CNN, 0)
    assert model_problem(CNN, tensors) is None
    assert "not those of" in model_problem("cnn:1x8x8-8-12-10", tensors)
    with pytest.raises(ValueError, match="shape"):
        load_tensors(build_model("cnn:1x8x8-8-12-10"), tensors)


CNN_SNIPPET = """
import numpy as np
from aggregator.scoring import evaluate
from fedchain.data import load_dataset
from fedchain.architectures import initial_tensors
x, y = load_dataset("digits")
r = evaluate("cnn:1x8x8-8-16-10", initial_tensors("cnn:1x8x8-8-16-10", 5), x[:300], y[:300])
print(r.accuracy.hex(), r.loss.hex())
"""


def test_cnn_evaluation_identical_across_thread_counts() -> None:
    one, four = run_with_threads(CNN_SNIPPET, 1), run_with_threads(CNN_SNIPPET, 4)
    assert one == four and len(one.split()) == 2


def _digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    x, y = load_dataset("digits")
    train, _, test = split_holdout(x, y, 0.15, 0.2, 0)
    return train, test


def test_cnn_learns_digits_and_trains_under_dp() -> None:
    (x, y), (xs, ys) = _digits()
    start = initial_tensors(CNN, 1)
    plain = train_local(CNN, start, x, y, default_train_config(False, epochs=5, seed=2))
    assert evaluate(CNN, plain.tensors, xs, ys).accuracy > 0.85
    dp = default_train_config(True, dp=True, epochs=3, lr=2.0, seed=2, noise_multiplier=0.8)
    private = train_local(CNN, start, x, y, dp)
    assert private.dp_history and private.dp_history[-1][0] == 0.8  # Opacus' accountant saw every step
    assert private.steps == private.dp_history[-1][2]
    assert evaluate(CNN, private.tensors, xs, ys).accuracy > evaluate(CNN, start, xs, ys).accuracy + 0.2
    again = train_local(CNN, start, x, y, dp)
    assert all(np.array_equal(again.tensors[k], private.tensors[k]) for k in private.tensors)  # seeded


def test_image_npz_is_flattened_in_channel_row_column_order(tmp_path: Path) -> None:
    images = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    np.savez(tmp_path / "img.npz", x=images, y=np.array([0, 1]))
    x, _ = load_npz(tmp_path / "img.npz")
    assert x.shape == (2, 9) and np.array_equal(x[1], images[1].ravel())
    np.savez(tmp_path / "gray.npz", x=images[:, 0], y=np.array([0, 1]))
    assert load_npz(tmp_path / "gray.npz")[0].shape == (2, 9)


PLUGIN_SNIPPET = """
import numpy as np, torch
from fedchain.architectures import families, parse_architecture, initial_tensors
from client.modules import build_model, load_tensors
from client.trainer import train_local, default_train_config
from aggregator.scoring import logits
arch = "bilinear:6-5-3"
assert "bilinear" in families() and families()["mlp"] == "mlp:<in>-<h1>-...-<out>"
t = initial_tensors(arch, 0)
m = build_model(arch); load_tensors(m, t)
x = np.random.default_rng(0).normal(size=(30, 6))
with torch.no_grad():
    assert np.allclose(m.double()(torch.from_numpy(x)).numpy(), logits(arch, t, x), atol=1e-10)
y = np.arange(30) % 3
r = train_local(arch, t, x.astype(np.float32), y, default_train_config(True, dp=True, epochs=1, noise_multiplier=1.0))
assert r.dp_history
for bad in ("broken:1-2", "notafamily:1-2", "bilinear:crash"):
    try:
        parse_architecture(bad)
    except ValueError as exc:
        print(bad, "->", exc)
"""


def _install_plugin(site: Path) -> None:
    """What ``pip install tests/plugins/fedchain_toyarch`` leaves in site-packages, without a network: the package
    on the path and a dist-info whose entry points name the family (plus a broken one and one that tries to
    replace a built-in family)."""
    info = site / "fedchain_toyarch-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fedchain-toyarch\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[fedchain.architectures]\nbilinear = fedchain_toyarch:BilinearFamily\n"
        "broken = fedchain_toyarch_missing:Family\nmlp = fedchain_toyarch:BilinearFamily\n")


def test_a_family_from_an_installed_package_trains_and_scores(tmp_path: Path) -> None:
    _install_plugin(tmp_path)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path), str(ROOT / "tests/plugins/fedchain_toyarch")])
    done = subprocess.run([sys.executable, "-c", PLUGIN_SNIPPET], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "broken:1-2 -> architecture 'broken:1-2': the installed family 'broken' is unusable" in done.stdout
    assert "ModuleNotFoundError" in done.stdout
    assert "bilinear:crash -> architecture 'bilinear:crash': family 'bilinear' failed on it (KeyError" in done.stdout
    assert "notafamily:1-2 -> unknown architecture" in done.stdout and "bilinear:<in>-<hidden>-<out>" in done.stdout
    assert "bilinear" not in families()  # not installed in this process: nothing is loaded from elsewhere


def test_a_global_model_of_another_implementation_is_refused_before_training() -> None:
    (x, y), _ = _digits()
    other = initial_tensors("cnn:1x8x8-8-12-10", 0)  # what a differing implementation of the id would hold
    with pytest.raises(ValueError, match=r"not a model of cnn:1x8x8-8-16-10 as this machine implements it"):
        train_local(CNN, other, x, y, default_train_config(False, epochs=1))

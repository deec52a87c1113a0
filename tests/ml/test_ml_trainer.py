"""Local training: loss goes down, DP-SGD with ghost clipping, clean names, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.scoring import evaluate
from client.trainer import TrainConfig, dp_schedule, train_local
from fedchain.architectures import expected_shapes, initial_tensors
from fedchain.data import load_dataset

ARCH = "mlp:64-16-10"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_dataset("digits")
    return x[:300], y[:300]


def _check_clean(tensors: dict[str, np.ndarray]) -> None:
    assert {k: v.shape for k, v in tensors.items()} == expected_shapes(ARCH)
    for value in tensors.values():
        assert value.dtype == np.float32 and value.flags.c_contiguous and np.isfinite(value).all()


def test_non_dp_training_lowers_loss(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)
    result = train_local(ARCH, start, x, y, TrainConfig(epochs=5, seed=1))
    _check_clean(result.tensors)
    before, after = evaluate(ARCH, start, x, y), evaluate(ARCH, result.tensors, x, y)
    assert after.loss < 0.5 * before.loss
    assert after.accuracy > before.accuracy + 0.3
    assert result.num_samples == 300
    assert result.steps == 5 * 10 and result.sample_rate == pytest.approx(0.1)
    assert 0 < result.train_loss < before.loss


def test_training_is_reproducible_with_seed(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)
    a = train_local(ARCH, start, x, y, TrainConfig(epochs=1, seed=7))
    b = train_local(ARCH, start, x, y, TrainConfig(epochs=1, seed=7))
    c = train_local(ARCH, start, x, y, TrainConfig(epochs=1, seed=8))
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert a.train_loss == b.train_loss
    assert not np.array_equal(a.tensors["0.weight"], c.tensors["0.weight"])


def test_dp_training_runs_reproducibly(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)
    config = TrainConfig(epochs=1, batch_size=50, dp=True, noise_multiplier=0.8, seed=3)
    a = train_local(ARCH, start, x, y, config)
    b = train_local(ARCH, start, x, y, config)
    _check_clean(a.tensors)
    rate, steps = dp_schedule(300, config)
    assert (a.sample_rate, a.steps) == (rate, steps) == (1 / 6, 6)
    assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert not np.array_equal(a.tensors["0.weight"], start["0.weight"])


def test_dp_noise_changes_the_update(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)
    quiet = train_local(ARCH, start, x, y, TrainConfig(epochs=1, dp=True, noise_multiplier=0.0))
    noisy = train_local(ARCH, start, x, y, TrainConfig(epochs=1, dp=True, noise_multiplier=5.0))
    assert not np.allclose(quiet.tensors["0.weight"], noisy.tensors["0.weight"])


def test_proximal_term_keeps_update_near_global(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)

    def drift(mu: float) -> float:
        out = train_local(ARCH, start, x, y, TrainConfig(epochs=2, proximal_mu=mu))
        return float(sum(np.sum((out.tensors[k] - start[k]) ** 2) for k in start))

    assert drift(5.0) < 0.5 * drift(0.0)


def test_bad_inputs_raise(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    start = initial_tensors(ARCH, seed=0)
    with pytest.raises(ValueError, match="labels"):
        train_local(ARCH, start, x, y + 10)
    with pytest.raises(ValueError):
        train_local(ARCH, start, x[:, :10], y)
    with pytest.raises(ValueError):
        train_local(ARCH, start, x, y, TrainConfig(dp=True, grad_sample_mode="hooks"))
    with pytest.raises(ValueError, match="missing"):
        train_local(ARCH, {"0.weight": start["0.weight"]}, x, y)


def test_dp_update_has_plain_state_dict_keys_and_loads_into_a_plain_module(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    import torch

    from client.modules import build_model

    x, y = digits
    result = train_local(ARCH, initial_tensors(ARCH, seed=0), x, y,
                         TrainConfig(epochs=1, dp=True, noise_multiplier=1.0))
    plain = build_model(ARCH)
    assert sorted(result.tensors) == sorted(plain.state_dict())
    assert not any("_module" in k or "grad_sample" in k for k in result.tensors)
    plain.load_state_dict({k: torch.from_numpy(v) for k, v in result.tensors.items()}, strict=True)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_opacus_engine_accounts_exactly_what_we_plan(digits: tuple[np.ndarray, np.ndarray], accountant: str) -> None:
    from client.privacy import epsilon_spent, history_epsilon

    x, y = digits
    config = TrainConfig(epochs=2, batch_size=50, dp=True, noise_multiplier=1.1, accountant=accountant)
    result = train_local(ARCH, initial_tensors(ARCH, seed=0), x, y, config)
    rate, steps = dp_schedule(len(y), config)
    assert result.dp_history == [(1.1, rate, steps)]
    delta = 1e-5
    ours = epsilon_spent(1.1, rate, steps, delta, accountant=accountant)
    assert history_epsilon(result.dp_history, delta, accountant) == pytest.approx(ours, rel=1e-9)

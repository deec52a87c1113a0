"""The trainer's DP-SGD speed-ups change nothing that is computed: the same tensors, loss and accounting as
stock Opacus for the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping

import client.trainer as trainer
from fedchain.data import load_dataset
from fedchain.models import build_model, initial_tensors, load_tensors

ARCH = "mlp:64-32-10"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_dataset("digits")
    return x[:400], y[:400]


def _train(digits, **overrides) -> trainer.TrainResult:
    config = trainer.TrainConfig(epochs=2, batch_size=32, seed=7, dp=True, noise_multiplier=0.8, max_grad_norm=0.5,
                                 grad_sample_mode="ghost", **overrides)
    return trainer.train_local(ARCH, initial_tensors(ARCH, 3), *digits, config)


def test_ghost_clipping_with_clone_accumulate_equals_stock_opacus(digits, monkeypatch):
    swapped: list[type] = []
    use_clone = trainer._use_clone_accumulate

    def spy(optimizer):
        use_clone(optimizer)
        swapped.append(type(optimizer))

    monkeypatch.setattr(trainer, "_use_clone_accumulate", spy)
    fast = _train(digits)
    assert swapped and swapped[0] is not DPOptimizerFastGradientClipping
    assert issubclass(swapped[0], DPOptimizerFastGradientClipping)  # still Opacus' clipping, noise, accounting

    monkeypatch.setattr(trainer, "_use_clone_accumulate", lambda optimizer: None)  # Opacus as shipped
    stock = _train(digits)
    assert fast.tensors.keys() == stock.tensors.keys()
    for name in fast.tensors:
        np.testing.assert_array_equal(fast.tensors[name], stock.tensors[name])
    assert (fast.train_loss, fast.steps, fast.dp_history) == (stock.train_loss, stock.steps, stock.dp_history)
    assert fast.dp_history == [(0.8, fast.sample_rate, fast.steps)]


def test_train_loss_is_the_sample_weighted_mean_loss_of_the_last_epoch(digits):
    """The last epoch's batch losses are summed once at the end (no ``.item()`` per step), weighted by batch
    size: with a negligible learning rate, batches of 300 and 100 give the mean loss over all 400 samples."""
    x, y = digits
    config = trainer.TrainConfig(epochs=1, batch_size=300, lr=1e-9, momentum=0.0, seed=1)
    result = trainer.train_local(ARCH, initial_tensors(ARCH, 3), x, y, config)
    model = build_model(ARCH)
    load_tensors(model, initial_tensors(ARCH, 3))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(torch.from_numpy(x.astype(np.float32))),
                                                     torch.from_numpy(y.astype(np.int64)))
    assert result.steps == 2
    assert result.train_loss == pytest.approx(float(expected), rel=1e-6)

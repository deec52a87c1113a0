"""The trainer's loop reports the loss it computed: the sample-weighted mean of the last epoch's batches.
(That the DP-SGD step equals stock Opacus is tests/ml/test_dp_step.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import client.trainer as trainer
from client.modules import build_model, load_tensors
from fedchain.architectures import initial_tensors
from fedchain.data import load_dataset

ARCH = "mlp:64-32-10"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_dataset("digits")
    return x[:400], y[:400]


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

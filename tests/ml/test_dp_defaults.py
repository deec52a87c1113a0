"""The trainer's DP defaults and its batch-at-a-time data pipeline."""

from __future__ import annotations

import torch
from opacus.data_loader import DPDataLoader
from torch.utils.data import DataLoader, TensorDataset

from client.batches import TensorBatches, keep_batch
from client.trainer import DP_DEFAULTS, TrainConfig, default_train_config


def test_private_defaults_apply_and_explicit_settings_win():
    private = default_train_config(private=True)
    assert {name: getattr(private, name) for name in DP_DEFAULTS} == DP_DEFAULTS
    assert default_train_config(private=False) == TrainConfig()
    mixed = default_train_config(private=True, epochs=5, lr=None, seed=3)
    expected = (5, DP_DEFAULTS["lr"], 3, DP_DEFAULTS["batch_size"])
    assert (mixed.epochs, mixed.lr, mixed.seed, mixed.batch_size) == expected


def _batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(xb.clone(), yb.clone()) for xb, yb in loader]


def test_tensor_batches_yield_the_same_batches_as_a_tensor_dataset():
    x = torch.randn(101, 5)
    y = torch.arange(101) % 7
    for dp in (False, True):
        loaders = []
        for dataset, collate in ((TensorDataset(x, y), None), (TensorBatches(x, y), keep_batch)):
            loader = DataLoader(dataset, batch_size=16, shuffle=True, collate_fn=collate,
                                generator=torch.Generator().manual_seed(5))
            if dp:  # Opacus' Poisson sampler, as make_private builds it (empty batches included)
                loader = DPDataLoader.from_data_loader(loader, generator=torch.Generator().manual_seed(9))
            loaders.append(_batches(loader))
        reference, batched = loaders
        assert len(reference) == len(batched) > 1
        for (xa, ya), (xb, yb) in zip(reference, batched, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            assert xb.shape[1:] == (5,) and yb.dtype == torch.int64

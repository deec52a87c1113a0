"""Batches of in-memory tensors for local training: shuffled (non-private) and Poisson-sampled (DP-SGD)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import TensorDataset


class TensorBatches(TensorDataset):
    """A ``TensorDataset`` that a ``DataLoader`` reads a whole batch at a time: one tensor gather per batch
    instead of one ``__getitem__`` per sample plus a collate. Pair it with ``keep_batch`` as the collate."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return tuple(t.index_select(0, index) for t in self.tensors)


def keep_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The collate of ``TensorBatches``: the batch is already stacked."""
    return batch


def batches_per_epoch(num_samples: int, batch_size: int) -> int:
    """``ceil(num_samples / batch_size)``: the batches of a shuffled epoch, and the steps of a Poisson epoch (whose
    sample rate is its inverse)."""
    return -(-num_samples // batch_size)


class PoissonBatches:
    """``steps`` Poisson-sampled batches per epoch: each takes every sample independently with probability
    ``sample_rate = 1 / steps`` (empty batches kept).

    The draws are exactly those of Opacus' ``DPDataLoader`` with the same generator: per epoch the base seed
    every ``DataLoader`` iterator draws, then per step its ``UniformWithReplacementSampler``'s ``torch.rand`` over
    the dataset; each batch is one ``index_select`` per tensor. Unlike Opacus' sampler, which runs
    ``int(1 / sample_rate)`` steps (one short for some step counts: ``int(1 / (1 / 93)) == 92``), the number of
    steps is the one planned.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps: int, generator: torch.Generator) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.x, self.y, self.steps, self.generator = x, y, steps, generator
        self.sample_rate = 1.0 / steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # DataLoader's per-epoch base seed
        for _ in range(self.steps):
            chosen = (torch.rand(len(self.x), generator=self.generator) < self.sample_rate).nonzero().view(-1)
            yield self.x.index_select(0, chosen), self.y.index_select(0, chosen)

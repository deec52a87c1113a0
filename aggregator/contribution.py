"""Contribution scores: what each accepted update is worth, quantised so every aggregator agrees exactly.

For accepted update ``w_i`` with delta ``d_i = w_i - g`` (``g`` the current global model) and the robust
reference delta ``r`` = coordinate-wise median of all accepted deltas, four factors in [0, 1], each quantised
to parts per million (exact round-half-even):

- ``accuracy``  = validation accuracy of ``w_i`` on its own (the task's validation set, by CID)
- ``loss``      = ``min(1, L(g) / L(w_i))`` — the change in validation loss: 1 if the update does not make
  the loss worse, proportionally less if it does
- ``alignment`` = ``max(0, cos(d_i, r))**2`` — data-free: direction agreement with the robust aggregate
  (squared: poisoned updates that still point partly the right way, e.g. label flipping, earn much less)
- ``norm``      = ``min(q, 1/q)`` with ``q = ||d_i|| / median_j ||d_j||`` — data-free: penalises boosted
  or shrunken updates

``score_i = max(1, accuracy * loss * alignment * norm // 10**18)`` in integers (the product of four ppm
values scaled back to ppm).

Memory: the deltas are streamed (two passes, one delta at a time), so besides the updates the caller holds, the
extra memory is a few model-sized float64 vectors (reference, one delta, its temporaries) plus the chunked
median's bounded buffers (``aggregator/strategies/ops.py``), whatever the number of updates.

Every accepted update scores at least 1; rejected updates score 0, which is what
``RejectionSlasher`` proves on chain. Rewards then follow ``score_i * n_i`` (docs/PROTOCOL.md).
``contributions`` is what ``AggregatorNode`` scores a round with; its cost is one median and ``n + 1`` evaluations
of the validation set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from aggregator.scoring import evaluate, quantize_ppm
from aggregator.strategies.base import ClientUpdate
from aggregator.strategies.byzantine import CoordinateMedian
from aggregator.strategies.ops import cosine, flat_deltas, norm, ordered_updates
from fedchain.protocol import PPM


@dataclass(frozen=True)
class Contribution:
    """The quantised factors of one trainer's score (all ppm) and the score itself."""

    accuracy: int
    loss: int
    alignment: int
    norm: int
    score: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def combine(accuracy: int, loss: int, alignment: int, norm: int) -> int:
    """The score from four ppm factors: ``max(1, a * l * c * n // 1e18)``."""
    return max(1, accuracy * loss * alignment * norm // PPM**3)


def contributions(
    architecture: str,
    global_tensors: dict[str, np.ndarray],
    updates: Sequence[ClientUpdate],
    x_val: np.ndarray,
    y_val: np.ndarray,
) -> dict[str, Contribution]:
    """Trainer -> its contribution breakdown (empty for no updates)."""
    if not updates:
        return {}
    ordered = ordered_updates(global_tensors, updates)
    base_loss = evaluate(architecture, global_tensors, x_val, y_val).loss
    median = CoordinateMedian().aggregate(global_tensors, ordered).tensors
    reference = flat_deltas(global_tensors, [ClientUpdate("median", median, 1)])[0]
    # streaming: one delta at a time (two passes), so the extra memory does not grow with the number of updates
    norms = [norm(flat_deltas(global_tensors, [u])[0]) for u in ordered]
    typical = float(np.median(np.asarray(norms, dtype=np.float64)))
    out: dict[str, Contribution] = {}
    for update, size_of in zip(ordered, norms, strict=True):
        delta = flat_deltas(global_tensors, [update])[0]
        quality = evaluate(architecture, update.tensors, x_val, y_val)
        accuracy = quantize_ppm(quality.accuracy)
        if not math.isfinite(quality.loss) or quality.loss <= 0.0:
            loss = PPM if quality.loss <= 0.0 else 0
        else:
            loss = quantize_ppm(min(1.0, base_loss / quality.loss)) if math.isfinite(base_loss) else PPM
        alignment = quantize_ppm(max(0.0, cosine(delta, reference)) ** 2)
        del delta
        if typical > 0.0 and size_of > 0.0:
            ratio = size_of / typical
            size = quantize_ppm(min(ratio, 1.0 / ratio))
        else:
            size = PPM if size_of == typical else 0
        out[update.trainer] = Contribution(accuracy, loss, alignment, size, combine(accuracy, loss, alignment, size))
    return out

"""The default robust strategy ``robust``: norm bounding, capped weights and a validation filter in one rule.

1. **Norm bound.** Each delta ``d_i = w_i - g`` is clipped to ``C = clip_ratio * median_j ||d_j||``
   (boosted, sign-flipped and noise updates lose their size advantage).
2. **Capped weights.** Sample counts are capped at ``2 * median_j n_j``: a trainer cannot claim its way to
   dominating the average.
3. **Validation filter.** Starting from all updates, the rule repeatedly drops the update whose removal
   lowers the validation loss of the clipped weighted average the most, while that removal lowers it by more
   than ``min_gain`` (relative), at most ``b = byzantine - rejected`` times (``rejected`` = updates of the
   round already rejected as malformed or free riders, so ``byzantine`` bounds all hostile updates of the
   round, not only the remaining ones) and never more than ``(n - 1) // 2``. Sign flipping, noise and label
   flipping make the average worse on the task's validation set (declared on chain by CID) and are dropped.

Deterministic: updates in address order, float64 arithmetic in a fixed order, losses from
``aggregator.scoring.evaluate`` compared as quantised micro-units with ties broken by address. Memory: the
float64 deltas of the accepted updates (``n * P * 8`` bytes, as Multi-Krum) plus two model-sized vectors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from aggregator.robust import flat_deltas, squared_norm
from aggregator.scoring import evaluate, quantize_micro
from aggregator.strategies import ClientUpdate, Strategy, ValidationContext, ordered_updates

PPM = 1_000_000


class GuardedAverage(Strategy):
    """Norm-bounded, weight-capped FedAvg that drops updates which make the validation loss worse."""

    name: ClassVar[str] = "robust"
    uses_validation: ClassVar[bool] = True

    def __init__(self, byzantine: int = 1, clip_ratio: float = 1.0, min_gain: float = 0.001) -> None:
        if isinstance(byzantine, bool) or not isinstance(byzantine, int) or byzantine < 0:
            raise ValueError("byzantine must be a non-negative integer")
        if isinstance(clip_ratio, bool) or not isinstance(clip_ratio, int | float) or not clip_ratio > 0:
            raise ValueError("clip_ratio must be a positive number")
        if isinstance(min_gain, bool) or not isinstance(min_gain, int | float) or not 0 <= min_gain < 1:
            raise ValueError("min_gain must be a number in [0, 1)")
        self.byzantine = byzantine
        self.clip_ratio = float(clip_ratio)
        self.min_gain_ppm = round(min_gain * PPM)
        self.context: ValidationContext | None = None
        self._details: dict[str, Any] = {}

    def with_validation(self, context: ValidationContext) -> GuardedAverage:
        bound = copy.copy(self)
        bound.context = context
        bound._details = {}
        return bound

    def round_details(self) -> dict[str, Any]:
        return {"robust": dict(self._details)} if self._details else {}

    def exclusion_budget(self, accepted: int) -> int:
        """How many accepted updates the validation filter may drop (0 without a validation set)."""
        if self.context is None:
            return 0
        return max(0, min(self.byzantine - self.context.rejected, (accepted - 1) // 2))

    @staticmethod
    def capped_weights(ordered: Sequence[ClientUpdate]) -> list[int]:
        """Sample counts capped at twice their median (at least 1 each); integers, so exact."""
        counts = sorted(max(1, int(u.num_samples)) for u in ordered)
        mid = len(counts) // 2
        cap = 2 * counts[mid] if len(counts) % 2 else counts[mid - 1] + counts[mid]
        return [min(max(1, int(u.num_samples)), cap) for u in ordered]

    def clip_factors(self, deltas: Sequence[np.ndarray]) -> list[float]:
        """``min(1, C / ||d_i||)`` with ``C = clip_ratio * median ||d_j||``."""
        norms = [math.sqrt(squared_norm(d)) for d in deltas]
        bound = self.clip_ratio * float(np.median(np.asarray(norms, dtype=np.float64)))
        return [1.0 if norm <= bound else bound / norm for norm in norms]

    def aggregate(self, global_tensors, updates):
        ordered = ordered_updates(global_tensors, updates)
        names = sorted(global_tensors)
        base = np.concatenate([np.asarray(global_tensors[k], dtype=np.float64).reshape(-1) for k in names])
        deltas = flat_deltas(global_tensors, ordered)
        factors = self.clip_factors(deltas)
        weights = self.capped_weights(ordered)

        def combine(kept: Sequence[int]) -> dict[str, np.ndarray]:
            total = np.float64(sum(weights[i] for i in kept))
            acc = np.zeros_like(base)
            for i in kept:  # address order, fixed
                acc = acc + deltas[i] * (np.float64(factors[i]) * (np.float64(weights[i]) / total))
            flat = (base + acc).astype(np.float32)
            out, start = {}, 0
            for k in names:
                size = int(np.prod(np.shape(global_tensors[k]), dtype=np.int64))
                out[k] = np.ascontiguousarray(flat[start:start + size].reshape(np.shape(global_tensors[k])))
                start += size
            return out

        kept = list(range(len(ordered)))
        budget = self.exclusion_budget(len(ordered))
        excluded: list[str] = []
        if budget and self.context is not None:
            ctx = self.context

            def loss_of(subset: Sequence[int]) -> int:
                return quantize_micro(evaluate(ctx.architecture, combine(subset), ctx.x_val, ctx.y_val).loss)

            current = loss_of(kept)
            for _ in range(budget):
                trials = [(loss_of([j for j in kept if j != i]), ordered[i].trainer.lower(), i) for i in kept]
                best_loss, trainer, index = min(trials)
                if best_loss * PPM >= current * (PPM - self.min_gain_ppm):
                    break
                kept.remove(index)
                excluded.append(trainer)
                current = best_loss
            self._details = {"exclusion_budget": budget, "excluded": sorted(excluded), "validation_loss_micro": current}
        elif self.context is not None:
            self._details = {"exclusion_budget": 0, "excluded": []}
        return combine(kept)


GUARDED_STRATEGIES = {
    GuardedAverage.name: (GuardedAverage, frozenset({"byzantine", "clip_ratio", "min_gain"})),
}

"""The default strategy ``robust``: norm bounding, capped weights and a validation filter in one rule.

1. **Norm bound.** Each delta ``d_i = w_i - g`` is clipped to ``C = clip_ratio * median_j ||d_j||``
   (boosted, sign-flipped and noise updates lose their size advantage).
2. **Capped weights.** Sample counts are capped at ``2 * median_j n_j``: a trainer cannot claim its way to
   dominating the average.
3. **Validation filter.** Starting from all updates, the rule repeatedly drops the update whose removal
   lowers the validation loss of the clipped weighted average the most, while that removal lowers it by more
   than ``min_gain`` (relative), at most ``b = min(h, n - 2h - 1)`` times with ``h = byzantine - rejected``
   (``rejected`` = updates of the round already rejected as malformed or free riders, so ``byzantine`` bounds
   all hostile updates of the round, not only the remaining ones): even if every drop hit an honest update, the
   honest updates kept would outnumber the hostile ones, so the filter never drops an honest majority's updates
   for a minority's. Sign flipping, noise and label
   flipping make the average worse on the task's validation set (declared on chain by CID) and are dropped.

Deterministic: updates in address order, float64 arithmetic in a fixed order, losses from
``aggregator.scoring.evaluate`` compared as quantised micro-units with ties broken by address. Memory: the
float64 deltas of the accepted updates (``n * P * 8`` bytes, as Multi-Krum) plus two model-sized vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from aggregator.scoring import evaluate, quantize_micro
from aggregator.strategies.base import Aggregation, ClientUpdate, RoundContext, Strategy, Tensors
from aggregator.strategies.ops import delta_combination, delta_norms, integer, number, ordered_updates
from fedchain.protocol import PPM


class RobustAverage(Strategy):
    """Norm-bounded, weight-capped FedAvg that drops updates which make the validation loss worse."""

    name: ClassVar[str] = "robust"
    uses_validation: ClassVar[bool] = True

    def __init__(self, byzantine: int = 1, clip_ratio: float = 1.0, min_gain: float = 0.001) -> None:
        self.byzantine = integer(byzantine, "byzantine")
        self.clip_ratio = number(clip_ratio, "clip_ratio", 0.0, None, low_open=True)
        self.min_gain_ppm = round(number(min_gain, "min_gain", 0.0, 1.0) * PPM)

    def exclusion_budget(self, accepted: int, context: RoundContext | None) -> int:
        """How many accepted updates the validation filter may drop (0 without a validation set): at most the
        hostile updates that can remain, ``h = byzantine - rejected``, and few enough that, were every drop an
        honest update, the honest ones kept still outnumber the ``h`` hostile ones (``n - h - b > h``)."""
        if context is None or context.validation is None:
            return 0
        hostile = max(0, self.byzantine - context.rejected)  # at most this many accepted updates are hostile
        return max(0, min(hostile, accepted - 2 * hostile - 1))

    @staticmethod
    def capped_weights(ordered: Sequence[ClientUpdate]) -> list[int]:
        """Sample counts capped at twice their median (at least 1 each); integers, so exact."""
        counts = sorted(max(1, int(u.num_samples)) for u in ordered)
        mid = len(counts) // 2
        cap = 2 * counts[mid] if len(counts) % 2 else counts[mid - 1] + counts[mid]
        return [min(max(1, int(u.num_samples)), cap) for u in ordered]

    def clip_factors(self, norms: Sequence[float]) -> list[float]:
        """``min(1, C / ||d_i||)`` with ``C = clip_ratio * median ||d_j||``, from the deltas' norms."""
        bound = self.clip_ratio * float(np.median(np.asarray(norms, dtype=np.float64)))
        return [1.0 if n <= bound else bound / n for n in norms]

    @staticmethod
    def _report(budget: int, excluded: list[str], loss_micro: int | None) -> dict[str, Any]:
        report: dict[str, Any] = {"exclusion_budget": budget, "excluded": sorted(excluded)}
        if loss_micro is not None:
            report["validation_loss_micro"] = loss_micro
        return {"robust": report}

    def aggregate(self, global_tensors: Tensors, updates: Sequence[ClientUpdate],
                  context: RoundContext | None = None) -> Aggregation:
        ordered = ordered_updates(global_tensors, updates)
        factors = self.clip_factors(delta_norms(global_tensors, ordered))
        weights = self.capped_weights(ordered)

        def combine(kept: Sequence[int]) -> Tensors:  # reads the kept updates once, chunk by chunk
            total = np.float64(sum(weights[i] for i in kept))
            return delta_combination(global_tensors, ordered, {  # address order, fixed
                i: np.float64(factors[i]) * (np.float64(weights[i]) / total) for i in kept})

        kept = list(range(len(ordered)))
        budget = self.exclusion_budget(len(ordered), context)
        if context is None or context.validation is None:
            return Aggregation(combine(kept))
        if not budget:
            return Aggregation(combine(kept), self._report(0, [], None))
        val = context.validation

        def loss_of(subset: Sequence[int]) -> int:
            return quantize_micro(evaluate(val.architecture, combine(subset), val.x, val.y).loss)

        excluded: list[str] = []
        current = loss_of(kept)
        for _ in range(budget):
            trials = [(loss_of([j for j in kept if j != i]), ordered[i].trainer.lower(), i) for i in kept]
            best_loss, trainer, index = min(trials)
            if best_loss * PPM >= current * (PPM - self.min_gain_ppm):
                break
            kept.remove(index)
            excluded.append(trainer)
            current = best_loss
        return Aggregation(combine(kept), self._report(budget, excluded, current))

"""Byzantine-robust rules: coordinate-wise median, trimmed mean, Krum / Multi-Krum, norm-bounded averaging.

Order statistics are exact values whatever algorithm finds them; sums run row by row in address order; norms and
distances use numpy's pairwise summation of contiguous float64 vectors (``ops``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from aggregator.strategies.base import Aggregation, ClientUpdate, RoundContext, Strategy, Tensors
from aggregator.strategies.ops import (
    chunked_order_statistic,
    delta_combination,
    delta_distances,
    delta_norms,
    integer,
    median_of_sorted,
    number,
    ordered_updates,
    sample_weights,
    squared_norm,
    weighted_average,
)


class CoordinateMedian(Strategy):
    """Coordinate-wise median (Yin et al. 2018); the mean of the two middle values for an even count."""

    name: ClassVar[str] = "median"

    def aggregate(self, global_tensors, updates, context=None) -> Aggregation:
        return Aggregation(chunked_order_statistic(ordered_updates(global_tensors, updates), median_of_sorted))


class TrimmedMean(Strategy):
    """Coordinate-wise trimmed mean: drop the ``floor(beta * n)`` largest and smallest values, average the rest."""

    name: ClassVar[str] = "trimmed_mean"

    def __init__(self, beta: float = 0.2) -> None:
        self.beta = number(beta, "beta", 0.0, 0.5)

    def trim_count(self, n: int) -> int:
        return int(np.floor(self.beta * n))

    def aggregate(self, global_tensors, updates, context=None) -> Aggregation:
        ordered = ordered_updates(global_tensors, updates)
        trim = self.trim_count(len(ordered))
        kept = len(ordered) - 2 * trim

        def reduce_sorted(block: np.ndarray) -> np.ndarray:
            acc = np.zeros(block.shape[0], dtype=np.float64)
            for col in range(trim, trim + kept):
                acc += block[:, col]
            return acc / np.float64(kept)

        return Aggregation(chunked_order_statistic(ordered, reduce_sorted))


def krum_scores(deltas: Sequence[np.ndarray], byzantine: int) -> list[float]:
    """Krum score of each update: the sum of squared distances to its ``n - f - 2`` nearest neighbours."""
    n = len(deltas)
    distances = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            distances[i, j] = distances[j, i] = squared_norm(deltas[i] - deltas[j])
    return krum_scores_of(distances, byzantine)


def krum_scores_of(distances: np.ndarray, byzantine: int) -> list[float]:
    """Krum scores from the matrix of squared distances between the updates."""
    n = len(distances)
    neighbours = max(1, n - byzantine - 2)
    scores = []
    for i in range(n):
        others = np.sort(np.delete(distances[i], i))[:neighbours]
        total = 0.0
        for value in others.tolist():  # ascending order, fixed
            total += value
        scores.append(total)
    return scores


class MultiKrum(Strategy):
    """Multi-Krum (Blanchard et al. 2017): keep the ``m`` updates with the lowest Krum scores, FedAvg them.

    ``byzantine`` (f) is the number of attackers tolerated; ``keep`` (m) defaults to ``n - f``. Ties are broken
    by trainer address. Krum is Multi-Krum with ``keep = 1``.
    """

    name: ClassVar[str] = "multikrum"

    def __init__(self, byzantine: int = 1, keep: int | None = None) -> None:
        self.byzantine = integer(byzantine, "byzantine")
        self.keep = None if keep is None else integer(keep, "keep", 1)

    def select(self, global_tensors: Tensors, updates: Sequence[ClientUpdate]) -> list[ClientUpdate]:
        """The updates Multi-Krum keeps, in address order."""
        ordered = ordered_updates(global_tensors, updates)
        keep = min(len(ordered), self.keep if self.keep is not None else max(1, len(ordered) - self.byzantine))
        scores = krum_scores_of(delta_distances(global_tensors, ordered), self.byzantine)  # in chunks
        ranked = sorted(range(len(ordered)), key=lambda i: (scores[i], i))[:keep]
        return [ordered[i] for i in sorted(ranked)]

    def aggregate(self, global_tensors, updates, context=None) -> Aggregation:
        chosen = self.select(global_tensors, updates)
        total = np.float64(sum(max(1, int(u.num_samples)) for u in chosen))
        weights = [np.float64(max(1, int(u.num_samples))) / total for u in chosen]
        return Aggregation(weighted_average(chosen, weights))


class Krum(MultiKrum):
    """Krum: the single update closest to its ``n - f - 2`` nearest neighbours becomes the new model."""

    name: ClassVar[str] = "krum"

    def __init__(self, byzantine: int = 1) -> None:
        super().__init__(byzantine=byzantine, keep=1)


class NormBoundedAverage(Strategy):
    """FedAvg of deltas clipped to an L2 norm: ``g + sum_i (n_i/N) * delta_i * min(1, C / ||delta_i||)``."""

    name: ClassVar[str] = "norm_bounded"

    def __init__(self, clip_norm: float = 1.0) -> None:
        self.clip_norm = number(clip_norm, "clip_norm", 0.0, None, low_open=True)

    def clip_factors(self, global_tensors: Tensors, ordered: Sequence[ClientUpdate]) -> list[float]:
        norms = delta_norms(global_tensors, ordered)  # in chunks
        return [1.0 if n <= self.clip_norm else self.clip_norm / n for n in norms]

    def aggregate(self, global_tensors, updates, context: RoundContext | None = None) -> Aggregation:
        ordered = ordered_updates(global_tensors, updates)
        weights = sample_weights(ordered, self.name)
        factors = self.clip_factors(global_tensors, ordered)
        coefficients = {i: np.float64(factor) * weight for i, (factor, weight) in enumerate(zip(factors, weights,
                                                                                               strict=True))}
        return Aggregation(delta_combination(global_tensors, ordered, coefficients))

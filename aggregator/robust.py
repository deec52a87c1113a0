"""Byzantine-robust aggregation rules: coordinate-wise median, trimmed mean, Krum / Multi-Krum, norm bounding.

All rules are deterministic: updates are ordered by trainer address, arithmetic is float64 numpy with a fixed
order (order statistics are exact values whatever algorithm finds them; sums run row by row in sorted order;
vector norms and distances use numpy's single-threaded pairwise summation of a contiguous float64 array).

Median and trimmed mean work column chunk by column chunk: at most ``CHUNK_ELEMENTS`` values (updates x
columns) are gathered and sorted at a time, so the extra memory is bounded by about
``3 * 8 * CHUNK_ELEMENTS`` bytes (the gathered chunk, its sorted copy and a row accumulator) plus the
float32 output, independent of how many updates arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from aggregator.strategies import ClientUpdate, Strategy, ordered_updates, weighted_average

CHUNK_ELEMENTS = 1 << 21  # 2 Mi float64 values = 16 MiB per chunk buffer


def _check_fraction(value: float, name: str, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < upper:
        raise ValueError(f"{name} must be a number in [0, {upper})")
    return float(value)


def chunked_order_statistic(
    ordered: Sequence[ClientUpdate], reduce_sorted, chunk_elements: int | None = None
) -> dict[str, np.ndarray]:
    """Apply ``reduce_sorted(block) -> column`` to chunks of coordinates, tensor by tensor.

    ``block`` has shape ``[coordinates, updates]`` with each row sorted ascending.
    """
    n = len(ordered)
    columns = max(1, (CHUNK_ELEMENTS if chunk_elements is None else chunk_elements) // n)
    out: dict[str, np.ndarray] = {}
    for name in sorted(ordered[0].tensors):
        flats = [np.asarray(u.tensors[name]).reshape(-1) for u in ordered]
        size = flats[0].size
        result = np.empty(size, dtype=np.float32)
        buffer = np.empty((min(columns, max(size, 1)), n), dtype=np.float64)
        for start in range(0, size, columns):
            stop = min(size, start + columns)
            block = buffer[: stop - start]
            for col, flat in enumerate(flats):
                block[:, col] = flat[start:stop]
            block.sort(axis=1)
            result[start:stop] = reduce_sorted(block)
        out[name] = result.reshape(np.shape(ordered[0].tensors[name]))
    return out


def _median_of_sorted(block: np.ndarray) -> np.ndarray:
    n = block.shape[1]
    if n % 2:
        return block[:, n // 2]
    return (block[:, n // 2 - 1] + block[:, n // 2]) * 0.5


class CoordinateMedian(Strategy):
    """Coordinate-wise median (Yin et al. 2018); the mean of the two middle values for an even count."""

    name: ClassVar[str] = "median"

    def aggregate(self, global_tensors, updates):
        return chunked_order_statistic(ordered_updates(global_tensors, updates), _median_of_sorted)


class TrimmedMean(Strategy):
    """Coordinate-wise trimmed mean: drop the ``floor(beta * n)`` largest and smallest values, average the rest."""

    name: ClassVar[str] = "trimmed_mean"

    def __init__(self, beta: float = 0.2) -> None:
        self.beta = _check_fraction(beta, "beta", 0.5)

    def trim_count(self, n: int) -> int:
        return int(np.floor(self.beta * n))

    def aggregate(self, global_tensors, updates):
        ordered = ordered_updates(global_tensors, updates)
        trim = self.trim_count(len(ordered))
        kept = len(ordered) - 2 * trim

        def reduce_sorted(block: np.ndarray) -> np.ndarray:
            acc = np.zeros(block.shape[0], dtype=np.float64)
            for col in range(trim, trim + kept):
                acc += block[:, col]
            return acc / np.float64(kept)

        return chunked_order_statistic(ordered, reduce_sorted)


def flat_deltas(global_tensors: dict[str, np.ndarray], ordered: Sequence[ClientUpdate]) -> list[np.ndarray]:
    """Each update minus the global model, flattened over the sorted tensor names, in float64."""
    names = sorted(global_tensors)
    base = np.concatenate([np.asarray(global_tensors[k], dtype=np.float64).reshape(-1) for k in names])
    return [np.concatenate([np.asarray(u.tensors[k], dtype=np.float64).reshape(-1) for k in names]) - base
            for u in ordered]


def squared_norm(vector: np.ndarray) -> float:
    """Deterministic ``||v||^2`` (numpy's pairwise sum of a contiguous float64 array)."""
    return float(np.sum(np.square(np.ascontiguousarray(vector, dtype=np.float64))))


def krum_scores(deltas: Sequence[np.ndarray], byzantine: int) -> list[float]:
    """Krum score of each update: the sum of squared distances to its ``n - f - 2`` nearest neighbours."""
    n = len(deltas)
    neighbours = max(1, n - byzantine - 2)
    distances = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            distances[i, j] = distances[j, i] = squared_norm(deltas[i] - deltas[j])
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
        if isinstance(byzantine, bool) or not isinstance(byzantine, int) or byzantine < 0:
            raise ValueError("byzantine must be a non-negative integer")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ValueError("keep must be a positive integer")
        self.byzantine = byzantine
        self.keep = keep

    def select(self, global_tensors, updates) -> list[ClientUpdate]:
        """The updates Multi-Krum keeps, in address order."""
        ordered = ordered_updates(global_tensors, updates)
        keep = min(len(ordered), self.keep if self.keep is not None else max(1, len(ordered) - self.byzantine))
        scores = krum_scores(flat_deltas(global_tensors, ordered), self.byzantine)
        ranked = sorted(range(len(ordered)), key=lambda i: (scores[i], i))[:keep]
        return [ordered[i] for i in sorted(ranked)]

    def aggregate(self, global_tensors, updates):
        chosen = self.select(global_tensors, updates)
        total = np.float64(sum(max(1, int(u.num_samples)) for u in chosen))
        return weighted_average(chosen, [np.float64(max(1, int(u.num_samples))) / total for u in chosen])


class Krum(MultiKrum):
    """Krum: the single update closest to its ``n - f - 2`` nearest neighbours becomes the new model."""

    name: ClassVar[str] = "krum"

    def __init__(self, byzantine: int = 1) -> None:
        super().__init__(byzantine=byzantine, keep=1)


class NormBoundedAverage(Strategy):
    """FedAvg of deltas clipped to an L2 norm: ``g + sum_i (n_i/N) * delta_i * min(1, C / ||delta_i||)``."""

    name: ClassVar[str] = "norm_bounded"

    def __init__(self, clip_norm: float = 1.0) -> None:
        if isinstance(clip_norm, bool) or not isinstance(clip_norm, int | float) or not clip_norm > 0:
            raise ValueError("clip_norm must be a positive number")
        self.clip_norm = float(clip_norm)

    def clip_factors(self, global_tensors, ordered: Sequence[ClientUpdate]) -> list[float]:
        norms = [np.sqrt(squared_norm(d)) for d in flat_deltas(global_tensors, ordered)]
        return [1.0 if norm <= self.clip_norm else self.clip_norm / norm for norm in norms]

    def aggregate(self, global_tensors, updates):
        ordered = ordered_updates(global_tensors, updates)
        if any(u.num_samples <= 0 for u in ordered):
            raise ValueError("norm_bounded needs num_samples > 0 for every update")
        factors = self.clip_factors(global_tensors, ordered)
        total = np.float64(sum(int(u.num_samples) for u in ordered))
        out: dict[str, np.ndarray] = {}
        for name in sorted(global_tensors):
            base = np.asarray(global_tensors[name], dtype=np.float64)
            acc = np.zeros(base.shape, dtype=np.float64)
            for update, factor in zip(ordered, factors, strict=True):
                weight = np.float64(int(update.num_samples)) / total
                acc = acc + (np.asarray(update.tensors[name], dtype=np.float64) - base) * np.float64(factor) * weight
            out[name] = np.ascontiguousarray((base + acc).astype(np.float32))
        return out


ROBUST_STRATEGIES = {
    CoordinateMedian.name: (CoordinateMedian, frozenset()),
    TrimmedMean.name: (TrimmedMean, frozenset({"beta"})),
    Krum.name: (Krum, frozenset({"byzantine"})),
    MultiKrum.name: (MultiKrum, frozenset({"byzantine", "keep"})),
    NormBoundedAverage.name: (NormBoundedAverage, frozenset({"clip_norm"})),
}

"""Pure helpers every strategy shares: update ordering, weighted sums, deltas, norms, chunked order statistics and
parameter validation. Deterministic: updates sorted by lower-case trainer address, float64 arithmetic in a fixed
order (numpy's elementwise ufuncs are correctly rounded and single-threaded; sums of a contiguous float64 vector
use numpy's pairwise summation), so results do not depend on threads or BLAS.

Updates may be ``fedchain.modelfile.LazyTensors`` (read from disk when asked for). FedAvg's weighted sum reads
``CHUNK_ELEMENTS`` coordinates of one update at a time and keeps one float64 chunk: its memory is the float32 output
plus about ``3 * 8 * CHUNK_ELEMENTS`` bytes, whatever the number of updates. Median and trimmed mean work column
chunk by column chunk: at most ``CHUNK_ELEMENTS`` values (updates x columns) are gathered and sorted at a time, so
their extra memory is about ``3 * 8 * CHUNK_ELEMENTS`` bytes plus the float32 output, whatever the number of
updates. The other rules (Krum, norm clipping, the default robust rule) hold every update's flattened delta:
``8 * n * P`` bytes for ``n`` updates of ``P`` parameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

Tensors = dict[str, np.ndarray]
CHUNK_ELEMENTS = 1 << 21  # 2 Mi float64 values = 16 MiB per chunk buffer


@dataclass(frozen=True)
class ClientUpdate:
    """One trainer's validated update and its weight: the committee's attested weight (``aggregator.weights``),
    never more than the sample count the trainer revealed on chain."""

    trainer: str
    tensors: Tensors
    num_samples: int


# --- parameters ----------------------------------------------------------------------------------------
def number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = True) -> float:
    """A finite real strategy parameter within bounds (``ValueError`` saying which otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}, "
                         f"got {value:g}")
    return value


def integer(value: Any, name: str, low: int = 0) -> int:
    """An integer strategy parameter of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# --- tensors that may live on disk ----------------------------------------------------------------------
def shape_of(tensors: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
    """A tensor's shape without reading a lazily loaded one."""
    shape = getattr(tensors, "shape", None)
    return tuple(shape(name)) if callable(shape) else tuple(np.shape(tensors[name]))


def read_flat(tensors: Mapping[str, np.ndarray], name: str, start: int, stop: int) -> np.ndarray:
    """Elements ``[start, stop)`` of tensor ``name`` flattened; only those are read from a lazily loaded one."""
    read = getattr(tensors, "read", None)
    if callable(read):
        return read(name, start, stop)
    return np.asarray(tensors[name]).reshape(-1)[start:stop]


# --- updates -------------------------------------------------------------------------------------------
def ordered_updates(global_tensors: Mapping[str, np.ndarray], updates: Sequence[ClientUpdate]) -> list[ClientUpdate]:
    """Check updates against the global model and return them sorted by lower-case trainer address."""
    if not updates:
        raise ValueError("cannot aggregate an empty list of updates")
    seen: set[str] = set()
    for update in updates:
        key = update.trainer.lower()
        if key in seen:
            raise ValueError(f"duplicate update from trainer {update.trainer}")
        seen.add(key)
        if set(update.tensors) != set(global_tensors):
            raise ValueError(f"update from {update.trainer} has different tensor names than the global model")
        for name, ref in global_tensors.items():
            if shape_of(update.tensors, name) != np.shape(ref):
                raise ValueError(f"update from {update.trainer}: tensor {name} has the wrong shape")
        if isinstance(update.num_samples, bool) or not isinstance(update.num_samples, int | np.integer):
            raise ValueError(f"update from {update.trainer}: num_samples must be an integer")
    return sorted(updates, key=lambda u: u.trainer.lower())


def sample_weights(ordered: Sequence[ClientUpdate], rule: str) -> list[np.float64]:
    """FedAvg's weights ``n_i / N`` (``ValueError`` when a count is not positive)."""
    if any(u.num_samples <= 0 for u in ordered):
        raise ValueError(f"{rule} needs num_samples > 0 for every update")
    total = np.float64(sum(int(u.num_samples) for u in ordered))
    return [np.float64(int(u.num_samples)) / total for u in ordered]


def weighted_average(ordered: Sequence[ClientUpdate], weights: Sequence[float]) -> Tensors:
    """``sum_i w_i * t_i`` accumulated in float64 in the given order, cast to float32; chunk by chunk of
    ``CHUNK_ELEMENTS`` coordinates (elementwise, so the chunking does not change a bit of the result)."""
    names = sorted(ordered[0].tensors)
    shapes = {name: shape_of(ordered[0].tensors, name) for name in names}
    spans = [(name, start, min(math.prod(shapes[name]), start + CHUNK_ELEMENTS))
             for name in names for start in range(0, math.prod(shapes[name]), CHUNK_ELEMENTS)]
    chunks = prefetched(functools.partial(read_flat, update.tensors, name, start, stop)
                        for name, start, stop in spans for update in ordered)
    flat = {name: np.empty(math.prod(shapes[name]), dtype=np.float32) for name in names}
    longest = max((stop - start for _, start, stop in spans), default=0)
    buffers = np.empty((2, longest), dtype=np.float64)  # reused: fresh large buffers cost page faults per chunk
    for name, start, stop in spans:
        acc, term = buffers[0, : stop - start], buffers[1, : stop - start]
        acc.fill(0.0)
        for weight in weights:  # acc + float64(t) * w, in place, in the updates' order
            np.multiply(next(chunks), np.float64(weight), out=term, dtype=np.float64)
            acc += term
        flat[name][start:stop] = acc
    return {name: flat[name].reshape(shapes[name]) for name in names}


def prefetched(reads: Iterable[Callable[[], np.ndarray]]) -> Iterator[np.ndarray]:
    """The results of ``reads`` in order, each next one read in a worker thread while the caller works on the
    current one (file reads release the GIL): reading and summing overlap. At most two results are held."""
    with ThreadPoolExecutor(1, thread_name_prefix="fedchain-read") as pool:
        pending = None
        for read in reads:
            future = pool.submit(read)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


# --- vectors -------------------------------------------------------------------------------------------
def flatten(tensors: Mapping[str, np.ndarray], dtype: type = np.float64) -> np.ndarray:
    """All tensors, in sorted-name order, as one vector (float64 unless ``dtype`` says otherwise)."""
    return np.concatenate([np.asarray(tensors[k], dtype=dtype).reshape(-1) for k in sorted(tensors)])


def unflatten(flat: np.ndarray, like: Mapping[str, np.ndarray]) -> Tensors:
    """The inverse of ``flatten``: float32 tensors shaped as ``like``."""
    out, start = {}, 0
    for k in sorted(like):
        shape = np.shape(like[k])
        size = int(np.prod(shape, dtype=np.int64))
        out[k] = np.ascontiguousarray(flat[start:start + size].astype(np.float32).reshape(shape))
        start += size
    return out


def delta_blocks(global_tensors: Mapping[str, np.ndarray], ordered: Sequence[ClientUpdate]
                 ) -> Iterator[tuple[str, int, int, np.ndarray, np.ndarray]]:
    """The updates' deltas from the global model chunk by chunk, tensor by tensor in name order: ``(name, start,
    stop, g, block)`` with ``g`` the global model's float64 elements ``[start, stop)`` of the flattened tensor and
    ``block[i]`` update ``i``'s minus ``g``. A block holds at most ``CHUNK_ELEMENTS`` values, whatever ``n``."""
    n = len(ordered)
    columns = max(1, CHUNK_ELEMENTS // max(1, n))
    for name in sorted(global_tensors):
        size = math.prod(shape_of(global_tensors, name))
        for start in range(0, size, columns):
            stop = min(size, start + columns)
            g = read_flat(global_tensors, name, start, stop).astype(np.float64)
            block = np.empty((n, stop - start), dtype=np.float64)
            for i, update in enumerate(ordered):
                block[i] = read_flat(update.tensors, name, start, stop)
                block[i] -= g
            yield name, start, stop, g, block


def delta_norms(global_tensors: Mapping[str, np.ndarray], ordered: Sequence[ClientUpdate]) -> list[float]:
    """``||u_i - g||`` for every update, in chunks (the chunks' pairwise sums added in order)."""
    totals = [0.0] * len(ordered)
    for *_, block in delta_blocks(global_tensors, ordered):
        for i in range(len(ordered)):
            totals[i] += squared_norm(block[i])
    return [math.sqrt(t) for t in totals]


def delta_distances(global_tensors: Mapping[str, np.ndarray], ordered: Sequence[ClientUpdate]) -> np.ndarray:
    """The matrix of squared distances ``||u_i - u_j||^2`` between updates, in chunks."""
    n = len(ordered)
    distances = np.zeros((n, n), dtype=np.float64)
    for *_, block in delta_blocks(global_tensors, ordered):
        for i in range(n):
            for j in range(i + 1, n):
                distances[i, j] += squared_norm(block[i] - block[j])
    return distances + distances.T


def delta_combination(global_tensors: Mapping[str, np.ndarray], ordered: Sequence[ClientUpdate],
                      coefficients: Mapping[int, float]) -> Tensors:
    """``g + sum_i c_i (u_i - g)`` over the updates ``coefficients`` names (in index order), float64 elementwise,
    cast to float32; chunk by chunk."""
    out = {name: np.empty(math.prod(shape_of(global_tensors, name)), dtype=np.float32) for name in global_tensors}
    chosen = sorted(coefficients)
    for name, start, stop, g, block in delta_blocks(global_tensors, ordered):
        acc = np.zeros(stop - start, dtype=np.float64)
        for i in chosen:
            acc = acc + block[i] * np.float64(coefficients[i])
        out[name][start:stop] = g + acc
    return {name: out[name].reshape(shape_of(global_tensors, name)) for name in sorted(global_tensors)}


def flat_deltas(global_tensors: Mapping[str, np.ndarray], ordered: Sequence[ClientUpdate]) -> list[np.ndarray]:
    """Each update minus the global model, flattened over the sorted tensor names, in float64."""
    base = flatten(global_tensors)
    return [flatten(u.tensors) - base for u in ordered]


def squared_norm(vector: np.ndarray) -> float:
    """Deterministic ``||v||^2`` (numpy's pairwise sum of a contiguous float64 array)."""
    return float(np.sum(np.square(np.ascontiguousarray(vector, dtype=np.float64))))


def norm(vector: np.ndarray) -> float:
    """Deterministic L2 norm."""
    return math.sqrt(squared_norm(vector))


def tensors_norm(tensors: Mapping[str, np.ndarray]) -> float:
    """The L2 norm over all tensors (as one flattened vector)."""
    return norm(flatten(tensors))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when ``a`` is zero, 1 when only ``b`` is (no direction to disagree with)."""
    na, nb = norm(a), norm(b)
    if na == 0.0:
        return 0.0
    if nb == 0.0:
        return 1.0
    return float(np.sum(np.ascontiguousarray(a * b))) / (na * nb)


# --- order statistics ----------------------------------------------------------------------------------
def chunked_order_statistic(ordered: Sequence[ClientUpdate], reduce_sorted: Callable[[np.ndarray], np.ndarray],
                            chunk_elements: int | None = None) -> Tensors:
    """Apply ``reduce_sorted(block) -> column`` to chunks of coordinates, tensor by tensor; ``block`` has shape
    ``[coordinates, updates]`` with each row sorted ascending."""
    n = len(ordered)
    columns = max(1, (CHUNK_ELEMENTS if chunk_elements is None else chunk_elements) // n)
    out: Tensors = {}
    for name in sorted(ordered[0].tensors):
        shape = shape_of(ordered[0].tensors, name)
        size = math.prod(shape)
        result = np.empty(size, dtype=np.float32)
        buffer = np.empty((min(columns, max(size, 1)), n), dtype=np.float64)
        for start in range(0, size, columns):
            stop = min(size, start + columns)
            block = buffer[: stop - start]
            for col, update in enumerate(ordered):
                block[:, col] = read_flat(update.tensors, name, start, stop)
            block.sort(axis=1)
            result[start:stop] = reduce_sorted(block)
        out[name] = result.reshape(shape)
    return out


def median_of_sorted(block: np.ndarray) -> np.ndarray:
    """Row medians of a row-sorted block (the mean of the two middle values for an even count)."""
    n = block.shape[1]
    if n % 2:
        return block[:, n // 2]
    return (block[:, n // 2 - 1] + block[:, n // 2]) * 0.5

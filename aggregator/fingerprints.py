"""Compact fingerprints of updates for replay and near-duplicate detection: a count sketch seeded by the round.

The sketch of a weight vector ``w`` of ``P`` coordinates is ``s[b] = sum_{i : h(i) = b} sign(i) * w_i`` over
``SKETCH_BUCKETS`` buckets: linear (``s(w) - s(g) = s(w - g)``), so distances and cosines between deltas from the
global model are estimated from the sketches alone, in ``8 * SKETCH_BUCKETS`` bytes per update instead of ``4 * P``.
Distances come out within a few percent and cosines near 1 much closer (the error of an estimated cosine ``c`` has
a standard deviation of about ``(1 - c^2) / sqrt(SKETCH_BUCKETS)``): measured in tests/ml/test_ml_fingerprints.py
against the exact comparisons.

A sketch known in advance could be evaded: a perturbation concentrated on coordinates that share a bucket and a
sign moves the sketch ``sqrt(P / SKETCH_BUCKETS)`` times more than the update. So the hash is keyed by the round's
seed (the block hash of the ``advance`` that closed the reveal phase, ``central_dp.round_seed``): nobody knows it
when committing, and every aggregator computes the same sketches from the chain. Earlier rounds' updates are
sketched again with each round's key (read from the store one chunk at a time).

Bucket and sign of coordinate ``i`` (the coordinates of all tensors in sorted-name order, as ``flatten``): block
``k = i // HASH_BLOCK`` of ``SHAKE-256(SKETCH_DOMAIN || key || k as 8 bytes big-endian)`` read as little-endian
uint16, one per coordinate: its low 12 bits are the bucket, bit 15 the sign (set: minus). Sums are float64
``bincount``s in coordinate order, so every aggregator gets the same bits.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

from aggregator.strategies.ops import read_flat, shape_of

SKETCH_BUCKETS = 4096
SKETCH_DOMAIN = b"fedchain/update-sketch/v1"
HASH_BLOCK = 1 << 20  # coordinates per SHAKE-256 call, and per chunk read from each update


def sketch_key(round_seed: bytes) -> bytes:
    """The sketch's key for a round: a hash of the round seed (so the seed itself is never exposed)."""
    return hashlib.sha256(SKETCH_DOMAIN + bytes(round_seed)).digest()


def round_sketch_key(chain_id: int, task_manager: str, task_id: int, round_: int, global_digest: bytes,
                     reveals: Sequence[tuple[str, bytes]]) -> bytes:
    """A round's key: sha256 of the domain, the deployment, the round, the global model's digest and every reveal's
    (trainer, update digest) in commit order (docs/PROTOCOL.md, Sketches)."""
    digest = hashlib.sha256(SKETCH_DOMAIN + b"/key" + chain_id.to_bytes(32, "big") + bytes.fromhex(task_manager[2:])
                            + task_id.to_bytes(32, "big") + round_.to_bytes(32, "big") + bytes(global_digest))
    for trainer, update_digest in reveals:
        digest.update(bytes.fromhex(trainer[2:]) + bytes(update_digest))
    return digest.digest()


def _hashes(key: bytes, block: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    stream = hashlib.shake_256(SKETCH_DOMAIN + key + block.to_bytes(8, "big")).digest(2 * count)
    raw = np.frombuffer(stream, dtype="<u2")
    buckets = (raw & (SKETCH_BUCKETS - 1)).astype(np.intp)
    signs = np.where(raw & 0x8000, -1.0, 1.0)
    return buckets, signs


def sketches(key: bytes, models: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
    """The count sketches of ``models`` (same tensor names and shapes), in one pass over the coordinates: each
    block's hashes are drawn once and applied to the block of every model, read one block at a time."""
    out = [np.zeros(SKETCH_BUCKETS, dtype=np.float64) for _ in models]
    if not models:
        return out
    names = sorted(models[0])
    sizes = [math.prod(shape_of(models[0], name)) for name in names]
    total = sum(sizes)
    offsets = np.cumsum([0, *sizes])
    for block, start in enumerate(range(0, total, HASH_BLOCK)):
        stop = min(total, start + HASH_BLOCK)
        buckets, signs = _hashes(key, block, stop - start)
        for model, acc in zip(models, out, strict=True):
            values = np.empty(stop - start, dtype=np.float64)
            for name, first, size in zip(names, offsets[:-1], sizes, strict=True):
                lo, hi = max(start, int(first)), min(stop, int(first) + size)
                if lo < hi:
                    values[lo - start:hi - start] = read_flat(model, name, lo - int(first), hi - int(first))
            acc += np.bincount(buckets, weights=values * signs, minlength=SKETCH_BUCKETS)
    return out

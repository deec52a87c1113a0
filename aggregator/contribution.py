"""Contribution scores: each accepted update's marginal value to the round's aggregate, quantised so every
aggregator agrees exactly.

The rule (a leave-one-out influence score in the sense of Koh & Liang 2017 and the "leave-one-out" baseline of
data Shapley, Ghorbani & Zou 2019, made cheap by a linear reference aggregate; Wang et al. 2020 and Jia et al.
2019 show that for FedAvg-style aggregates the leave-one-out value ranks clients like their Shapley value when
updates are not redundant, and that its redundancy blind spot is what near-duplicate rejection closes):

1. **Deltas at one length.** ``d_j = w_j - g`` for every accepted update, rescaled to the median delta norm
   ``C``: ``c_j = d_j * C / ||d_j||`` (0 for ``d_j = 0``). Only an update's direction is scored, so scaling it
   buys nothing either way: clipping alone (shortening only) would still pay an update shorter than ``C`` for
   being boosted up to ``C``.
2. **Private part.** ``p_j`` = ``c_j`` minus its projection on the *public directions* ``span{g, g - g_prev}``
   (the global model and the last global step, which anybody can compute without data). An update built only from
   public models has ``p_j = 0``.
3. **Reference aggregate** ``A = g + S / N`` with ``S = sum_j n_j c_j`` and ``N = sum_j n_j`` (``n_j`` the attested
   weights). For each update, ``B_i = g + (S - n_i p_i) / N``: the same aggregate with i's private information
   removed and everything else (every other update, i's public part, the normalisation) unchanged.
4. **Marginal value** ``m_i = L(B_i) - L(A)`` in micro-units of validation loss (both quantised first, so ``m_i``
   is an exact integer).
5. **Chance margin.** What a direction carrying no information saves by luck: ``PROBES`` random near-Gaussian
   vectors ``r_k`` (SHAKE-256 of the global model's bytes, so every aggregator draws the same ones and no trainer
   can choose them), each rescaled to ``C`` and reduced to its private part as the updates are, are added to ``A``
   both ways with the median weight ``n_med``; ``tau = max(0, max_k,± L(A) - L(A ± n_med r_k / N))``, and
   trainer i's margin is ``tau_i = tau * n_i // n_med``.
6. ``score_i = clamp((m_i - tau_i) * 10^6 // L(g), 1, 10^6)`` (``L(g)`` also in micro-units, at least 1): the loss
   the update's own information saves beyond chance, as parts per million of the current loss.

Updates that add nothing (noise, public extrapolations, stale directions) have ``m_i <= tau_i`` except when they
beat all ``2 * PROBES`` random directions of their length by luck (for noise: about one round in
``2 * PROBES + 1``, and then by little), and score 1; an update that helps scores in proportion to how much.
Removing i's private part, rather than i, keeps the reference fixed for every trainer: no update moves the
yardstick it is measured with. Rewards follow ``score_i * weight_i``
(docs/PROTOCOL.md).

Cost per round, ``n`` accepted updates of ``P`` parameters and a validation set of ``V`` rows: ``n + 2 + 2 PROBES``
forward passes of the validation set (``O((n + 2 + 2 PROBES) V P)``) and ``O(n P)`` vector work; memory: ``S``,
the public basis and one delta at a time (a few float64 vectors of ``P``), whatever ``n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from aggregator.scoring import evaluate, quantize_micro
from aggregator.strategies.base import ClientUpdate
from aggregator.strategies.ops import flatten, norm, ordered_updates, unflatten
from fedchain.protocol import PPM

BASIS_TOLERANCE = 1e-9  # public directions shorter than this (relative) add nothing to the basis
PROBES = 4  # random directions (each tried both ways) that measure what an uninformative update gains by luck
PROBE_DOMAIN = b"fedchain/contribution-probe/v1"
PROBE_BLOCK = 1 << 20  # probe coordinates drawn per SHAKE-256 call


@dataclass(frozen=True)
class Contribution:
    """One trainer's score and what it came from: the marginal loss (micro-units; negative: the update's own
    information made the aggregate worse), the chance margin it had to beat (micro-units), the share of its
    rescaled delta that is public (ppm) and whether it was longer than the median (``clipped``: shortened)."""

    marginal_micro: int
    chance_micro: int
    public_ppm: int
    clipped: bool
    score: int

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def score_of(marginal_micro: int, base_micro: int) -> int:
    """``clamp(m * 10^6 // L(g), 1, 10^6)`` in integers."""
    if marginal_micro <= 0:
        return 1
    return max(1, min(PPM, marginal_micro * PPM // max(1, base_micro)))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(np.ascontiguousarray(a * b)))


def public_basis(global_flat: np.ndarray, previous_flat: np.ndarray | None) -> list[np.ndarray]:
    """An orthonormal basis (Gram-Schmidt in a fixed order) of ``span{g, g - g_prev}``."""
    basis: list[np.ndarray] = []
    scale = max(norm(global_flat), 1.0)
    candidates = [global_flat] + ([] if previous_flat is None else [global_flat - previous_flat])
    for vector in candidates:
        v = np.array(vector, dtype=np.float64)
        for b in basis:
            v -= _dot(v, b) * b
        length = norm(v)
        if length > BASIS_TOLERANCE * scale:
            basis.append(v / length)
    return basis


def median_weight(weights: Sequence[int]) -> int:
    """The lower median of the attested weights (an integer, at least 1)."""
    ordered = sorted(max(1, int(w)) for w in weights)
    return ordered[(len(ordered) - 1) // 2]


def private_part(vector: np.ndarray, basis: Sequence[np.ndarray]) -> np.ndarray:
    """``vector`` minus its projection on the public basis."""
    out = np.array(vector, dtype=np.float64)
    for b in basis:
        out -= _dot(vector, b) * b
    return out


def probe_direction(global_flat: np.ndarray, index: int) -> np.ndarray:
    """Random direction ``index``: near-Gaussian integers, each the sum of four uniform 16-bit integers minus
    ``2 * 65535`` (exact in float64, so every aggregator draws the same vector). Coordinates come in blocks of
    ``PROBE_BLOCK``; block ``b`` is ``SHAKE-256(PROBE_DOMAIN || sha256(g as little-endian float64) || index as 4
    bytes big-endian || b as 8 bytes big-endian)``, read as little-endian uint16, four per coordinate."""
    seed = hashlib.sha256(np.ascontiguousarray(global_flat, dtype="<f8").tobytes()).digest()
    size = int(global_flat.size)
    out = np.empty(size, dtype=np.float64)
    for block, start in enumerate(range(0, size, PROBE_BLOCK)):
        count = min(PROBE_BLOCK, size - start)
        stream = hashlib.shake_256(PROBE_DOMAIN + seed + index.to_bytes(4, "big") + block.to_bytes(8, "big"))
        draws = np.frombuffer(stream.digest(8 * count), dtype="<u2").reshape(count, 4)
        total = draws[:, 0].astype(np.int32)  # four uint16 sum exactly in int32
        for column in (1, 2, 3):
            total += draws[:, column]
        total -= 2 * 65535
        out[start:start + count] = total
    return out


def chance_gain(loss_micro: Callable[[np.ndarray], int], point: np.ndarray, reference: int, global_flat: np.ndarray,
                length: float, basis: Sequence[np.ndarray]) -> int:
    """``max(0, max_k,± reference - loss_micro(point ± s_k))`` over the ``PROBES`` probes of ``global_flat``, each
    ``s_k`` the probe rescaled to ``length``, then its private part (exactly as every update): the loss
    (micro-units) a direction carrying no information saves by luck at ``point``, whose own loss is ``reference``.
    0 for ``length`` 0."""
    best = 0
    for k in range(PROBES if length > 0.0 else 0):
        draw = probe_direction(global_flat, k)
        step = private_part(draw * (length / norm(draw)), basis)
        best = max(best, reference - loss_micro(point + step), reference - loss_micro(point - step))
    return best


def contributions(
    architecture: str,
    global_tensors: dict[str, np.ndarray],
    updates: Sequence[ClientUpdate],
    x_val: np.ndarray,
    y_val: np.ndarray,
    previous_global: dict[str, np.ndarray] | None = None,
) -> dict[str, Contribution]:
    """Trainer -> its contribution (empty for no updates). ``updates`` carry the attested weights;
    ``previous_global`` is the global model before ``global_tensors`` (None in round 1)."""
    if not updates:
        return {}
    ordered = ordered_updates(global_tensors, updates)
    g = flatten(global_tensors)
    basis = public_basis(g, None if previous_global is None else flatten(previous_global))
    norms = [norm(flatten(u.tensors) - g) for u in ordered]
    cap = float(np.median(np.asarray(norms, dtype=np.float64)))
    total_weight = float(sum(int(u.num_samples) for u in ordered))
    summed = np.zeros_like(g)
    for update, length in zip(ordered, norms, strict=True):  # S = sum_j n_j c_j, in trainer order
        summed += int(update.num_samples) * _rescaled(flatten(update.tensors) - g, length, cap)

    def loss_micro(flat: np.ndarray) -> int:
        return quantize_micro(evaluate(architecture, unflatten(flat, global_tensors), x_val, y_val).loss)

    base = loss_micro(g)
    aggregate = g + summed / total_weight
    reference = loss_micro(aggregate)
    typical = median_weight([int(u.num_samples) for u in ordered])
    chance = chance_gain(loss_micro, aggregate, reference, g, cap * typical / total_weight, basis)
    out: dict[str, Contribution] = {}
    for update, length in zip(ordered, norms, strict=True):
        rescaled = _rescaled(flatten(update.tensors) - g, length, cap)
        own = private_part(rescaled, basis)
        size = norm(rescaled)
        public = 0 if size == 0.0 else round(PPM * min(1.0, max(0.0, 1.0 - (norm(own) / size) ** 2)))
        marginal = loss_micro(g + (summed - int(update.num_samples) * own) / total_weight) - reference
        margin = chance * max(1, int(update.num_samples)) // typical
        out[update.trainer] = Contribution(marginal, margin, public, length > cap, score_of(marginal - margin, base))
    return out


def _rescaled(delta: np.ndarray, length: float, cap: float) -> np.ndarray:
    """``delta`` rescaled to length ``cap`` (the median), either way; a zero delta stays zero."""
    return delta if length == 0.0 or length == cap else delta * (cap / length)

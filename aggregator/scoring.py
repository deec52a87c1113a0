"""Deterministic evaluation and quantised scores that every aggregator computes bit for bit alike.

The forward pass is the architecture spec's: float64 numpy with a fixed accumulation order (elementwise
multiply-adds only, ``fedchain.architectures.numeric``; no BLAS, no threads), so results do not depend on thread
counts or the BLAS build. Sums
over samples use ``math.fsum`` (exactly rounded, order-free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fedchain.architectures import parse_architecture
from fedchain.protocol import PPM

MAX_UINT64 = 2**64 - 1


@dataclass(frozen=True)
class Evaluation:
    """Accuracy in [0, 1] and mean cross-entropy loss (natural log) on a labelled set."""

    accuracy: float
    loss: float


def logits(architecture: str, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Float64 logits ``[n, classes]`` of the model on ``x`` (the spec's deterministic forward pass)."""
    return parse_architecture(architecture).logits(tensors, x)


def evaluate(architecture: str, tensors: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Accuracy and mean cross-entropy of the model on ``(x, y)``; identical across runs and thread counts."""
    y = np.asarray(y)
    if len(y) == 0 or y.shape != (len(x),):
        raise ValueError("need a non-empty labelled set with one label per row of x")
    z = logits(architecture, tensors, x)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be in [0, {z.shape[1]})")
    rows = np.arange(len(y))
    correct = int(np.count_nonzero(np.argmax(z, axis=1) == y))
    with np.errstate(all="ignore"):
        top = z.max(axis=1)
        total = np.zeros(len(y))
        for j in range(z.shape[1]):
            total += np.exp(z[:, j] - top)
        # (top - z_y) first: for huge logits, top + log(total) would round log(total) away and the loss of a model
        # whose logits are huge and equal would come out 0 instead of log(classes)
        per_sample = (top - z[rows, y]) + np.log(total)
    loss = math.fsum(per_sample.tolist()) / len(y) if np.isfinite(per_sample).all() else math.inf
    return Evaluation(accuracy=correct / len(y), loss=loss)


def _quantize(value: float, scale: int) -> int:
    """Exact ``round(value * scale)`` with ties to even (``Fraction`` arithmetic has no rounding error)."""
    return round(Fraction(value) * scale)


def quantize_ppm(x: float) -> int:
    """A fraction as parts per million: exact round-half-even of ``x * 1e6``, clamped to [0, 1_000_000]."""
    if not math.isfinite(x):
        raise ValueError(f"cannot quantise non-finite value {x}")
    return min(PPM, max(0, _quantize(x, PPM)))


def quantize_micro(loss: float) -> int:
    """A loss in millionths (round half even), clamped to [0, 2**64 - 1]; non-finite losses map to the max."""
    if not math.isfinite(loss):
        return MAX_UINT64
    return min(MAX_UINT64, max(0, _quantize(loss, PPM)))

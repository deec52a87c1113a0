"""The RDP accountant for the (sub)sampled Gaussian mechanism: one definition for local DP-SGD (trainers) and
central DP (aggregators, backend).

The analysis is Opacus' own (``opacus/accountants/analysis/rdp.py``, Mironov et al. 2019), loaded from the
installed Opacus as a standalone module: that file needs only numpy and scipy, while importing the ``opacus``
package would import torch, which the core does not. A *history* is a list of ``(noise_multiplier, sample_rate,
steps)`` entries, exactly as Opacus' accountants keep it; central DP is one entry ``(z, 1.0, rounds)``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import sys
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

# Opacus' RDPAccountant.DEFAULT_ALPHAS (tests/core/test_privacy.py checks they are equal).
RDP_ORDERS: tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
HistoryEntry = tuple[float, float, int]  # (noise_multiplier, sample_rate, steps)


@cache
def rdp_analysis() -> ModuleType:
    """Opacus' RDP analysis module, loaded without importing the ``opacus`` package (and torch with it)."""
    name = "fedchain._opacus_rdp_analysis"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.machinery.PathFinder.find_spec("opacus")  # the installed package, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("opacus is not installed; fedchain's privacy accounting uses its RDP analysis")
    path = Path(next(iter(spec.submodule_search_locations))) / "accountants" / "analysis" / "rdp.py"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load Opacus' RDP analysis from {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def merge_history(history: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """Consecutive entries with equal noise and rate merged (as ``RDPAccountant.step`` does); zero steps dropped."""
    merged: list[HistoryEntry] = []
    for noise, rate, steps in history:
        if steps < 0 or noise < 0:
            raise ValueError("history entries need steps >= 0 and noise_multiplier >= 0")
        if steps == 0:
            continue
        if merged and merged[-1][0] == noise and merged[-1][1] == rate:
            merged[-1] = (float(noise), float(rate), merged[-1][2] + int(steps))
        else:
            merged.append((float(noise), float(rate), int(steps)))
    return merged


@lru_cache(maxsize=4096)
def _rdp_per_step(sample_rate: float, noise_multiplier: float) -> tuple[float, ...]:
    return tuple(rdp_analysis().compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1,
                                            orders=list(RDP_ORDERS)))


def rdp_epsilon(history: Sequence[HistoryEntry], delta: float) -> float:
    """Epsilon at ``delta`` of the composition of every entry in ``history`` (0 for none, inf without noise)."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    entries = merge_history(history)
    for _, rate, _ in entries:
        if not 0 < rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {rate}")
    if not entries:
        return 0.0
    if any(noise == 0 for noise, _, _ in entries):
        return math.inf
    rdp = sum([np.asarray(_rdp_per_step(rate, noise)) * steps for noise, rate, steps in entries])
    eps, _ = rdp_analysis().get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
    return float(eps)


def central_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """Epsilon of ``rounds`` Gaussian mechanisms with multiplier ``noise_multiplier`` and no sampling (central
    DP-FedAvg: every accepted update takes part), by RDP."""
    if rounds <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    return rdp_epsilon([(noise_multiplier, 1.0, rounds)], delta)

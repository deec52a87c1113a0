"""Aggregation strategies: one small class per rule behind one interface (``base.Strategy``), a registry that
reads each rule's parameters from its constructor, and central DP as a wrapper around any rule.

``get_strategy(task.spec.strategy, task.spec.strategy_config())`` builds what a task asks for. Any strategy's
parameters may hold a ``central_dp`` object: the rule is then wrapped in ``CentralDP`` with those parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from aggregator.strategies.averaging import FedAvg, FedProx
from aggregator.strategies.base import (
    Aggregation,
    ClientUpdate,
    MeanStrategy,
    RoundContext,
    Strategy,
    ValidationSet,
)
from aggregator.strategies.byzantine import CoordinateMedian, Krum, MultiKrum, NormBoundedAverage, TrimmedMean
from aggregator.strategies.central_dp import STATE_KEY, CentralDP
from aggregator.strategies.robust import RobustAverage
from aggregator.strategies.server_opt import FedAdagrad, FedAdam, FedAvgM, FedYogi, ServerOptimizer
from fedchain.taskspec import UPDATE_BOUND_KEY, UPDATE_DTYPE_KEY

STRATEGY_CLASSES: tuple[type[Strategy], ...] = (
    FedAvg, FedProx, CoordinateMedian, TrimmedMean, Krum, MultiKrum, NormBoundedAverage, RobustAverage,
    FedAvgM, FedAdagrad, FedAdam, FedYogi, CentralDP,
)
REGISTRY: dict[str, type[Strategy]] = {cls.name: cls for cls in STRATEGY_CLASSES}
DEFAULT_STRATEGY = RobustAverage.name
WRAPPER_KEY = STATE_KEY  # "central_dp": wraps any strategy in CentralDP


def parameter_names(cls: type[Strategy]) -> tuple[str, ...]:
    """The JSON parameters a strategy takes: its constructor's keyword parameters (``inner`` excepted)."""
    signature = inspect.signature(cls.__init__)
    return tuple(name for name, p in signature.parameters.items()
                 if name not in ("self", "inner") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def strategy_ids() -> tuple[str, ...]:
    """Every registered strategy id, sorted (the protocol's default allowlist)."""
    return tuple(sorted(REGISTRY))


def _build(cls: type[Strategy], params: Mapping[str, Any]) -> Strategy:
    allowed = parameter_names(cls)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"strategy {cls.name!r} does not take parameters {unknown}; allowed: {sorted(allowed)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters for strategy {cls.name!r}: {exc}") from exc


def get_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy registered as ``name`` (case-insensitive) built from its JSON parameters (the protocol-level
    ``max_update_ratio`` is not a strategy's: it is read by the round, ``aggregator.validation.check_change``)."""
    params = dict(params or {})
    params.pop(UPDATE_BOUND_KEY, None)
    params.pop(UPDATE_DTYPE_KEY, None)
    cls = REGISTRY.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(strategy_ids())}")
    wrapper = params.pop(WRAPPER_KEY, None)
    if wrapper is None:
        return _build(cls, params)
    if cls is CentralDP or not isinstance(wrapper, Mapping):
        raise ValueError(f"{WRAPPER_KEY!r} must be an object of central-DP parameters, on a strategy other than "
                         f"{CentralDP.name!r}")
    inner = _build(cls, params)
    allowed = parameter_names(CentralDP)
    unknown = sorted(set(wrapper) - set(allowed))
    if unknown:
        raise ValueError(f"{WRAPPER_KEY} does not take parameters {unknown}; allowed: {sorted(allowed)}")
    try:
        return CentralDP(inner, **wrapper)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters for {WRAPPER_KEY}: {exc}") from exc


__all__ = [
    "DEFAULT_STRATEGY", "REGISTRY", "STRATEGY_CLASSES", "Aggregation", "CentralDP", "ClientUpdate",
    "CoordinateMedian", "FedAdagrad", "FedAdam", "FedAvg", "FedAvgM", "FedProx", "FedYogi", "Krum", "MeanStrategy",
    "MultiKrum", "NormBoundedAverage", "RobustAverage", "RoundContext", "ServerOptimizer", "Strategy",
    "TrimmedMean", "ValidationSet", "get_strategy", "parameter_names", "strategy_ids",
]

"""Aggregation strategies (Flower-style): deterministic numpy, byte-identical on every machine.

Every aggregator must produce the same model bytes, so strategies fix the order of floating-point work:
updates are sorted by lower-case trainer address and combined elementwise in float64 (numpy's elementwise
ufuncs are correctly rounded and single-threaded, so the result does not depend on threads or BLAS).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class ClientUpdate:
    """One trainer's validated update and the sample count it revealed on chain."""

    trainer: str
    tensors: dict[str, np.ndarray]
    num_samples: int


@dataclass(frozen=True)
class RoundContext:
    """Chain-derived facts about the round that some strategies need; identical for every aggregator.

    ``seed`` is 32 bytes derived from on-chain data of the round (see ``aggregator.central_dp.round_seed``);
    ``previous`` is the ``details`` of the current global model's manifest (state carried from the last
    accepted round); ``released_rounds`` counts the rounds of the task, this one included, whose
    aggregation phase was reached (any aggregator may have published a result in them).
    """

    task_id: int
    round: int
    seed: bytes
    previous: Mapping[str, Any]
    released_rounds: int


@dataclass(frozen=True)
class ValidationContext:
    """The task's validation set (declared on chain by CID) and how many of the round's revealed updates were
    already rejected (malformed or free riders) before aggregation; identical for every aggregator."""

    architecture: str
    x_val: np.ndarray
    y_val: np.ndarray
    rejected: int = 0


class Strategy(ABC):
    """Combines the current global model and the accepted updates into the next global model.

    Strategies that need round data set ``uses_round_context`` and return a bound copy from
    ``for_round``; those that check updates on the validation set set ``uses_validation`` and return a bound
    copy from ``with_validation``; ``round_details`` is merged into the aggregate manifest's ``details``.
    """

    name: ClassVar[str]
    uses_round_context: ClassVar[bool] = False
    uses_validation: ClassVar[bool] = False

    def for_round(self, context: RoundContext) -> Strategy:
        """This strategy bound to one round (stateless strategies ignore the context)."""
        return self

    def with_validation(self, context: ValidationContext) -> Strategy:
        """This strategy bound to the task's validation set (strategies that do not use it ignore it)."""
        return self

    def round_details(self) -> dict[str, Any]:
        """What the strategy reports with the round after ``aggregate`` (JSON values only)."""
        return {}

    @abstractmethod
    def aggregate(
        self, global_tensors: dict[str, np.ndarray], updates: Sequence[ClientUpdate]
    ) -> dict[str, np.ndarray]:
        """The new global tensors (float32, same names and shapes as ``global_tensors``)."""


def ordered_updates(
    global_tensors: Mapping[str, np.ndarray], updates: Sequence[ClientUpdate]
) -> list[ClientUpdate]:
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
            if np.shape(update.tensors[name]) != np.shape(ref):
                raise ValueError(f"update from {update.trainer}: tensor {name} has the wrong shape")
        if isinstance(update.num_samples, bool) or not isinstance(update.num_samples, int | np.integer):
            raise ValueError(f"update from {update.trainer}: num_samples must be an integer")
    return sorted(updates, key=lambda u: u.trainer.lower())


def weighted_average(ordered: Sequence[ClientUpdate], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """``sum_i w_i * t_i`` accumulated in float64 in the given order, cast to float32."""
    names = sorted(ordered[0].tensors)
    out: dict[str, np.ndarray] = {}
    for name in names:
        acc = np.zeros(np.shape(ordered[0].tensors[name]), dtype=np.float64)
        for update, weight in zip(ordered, weights, strict=True):
            term = np.asarray(update.tensors[name], dtype=np.float64) * np.float64(weight)
            acc = acc + term
        out[name] = np.ascontiguousarray(acc.astype(np.float32))
    return out


class FedAvg(Strategy):
    """McMahan et al.'s FedAvg: average of updates weighted by ``n_i / N``."""

    name: ClassVar[str] = "fedavg"

    def aggregate(
        self, global_tensors: dict[str, np.ndarray], updates: Sequence[ClientUpdate]
    ) -> dict[str, np.ndarray]:
        ordered = ordered_updates(global_tensors, updates)
        if any(u.num_samples <= 0 for u in ordered):
            raise ValueError("FedAvg needs num_samples > 0 for every update")
        total = np.float64(sum(int(u.num_samples) for u in ordered))
        weights = [np.float64(int(u.num_samples)) / total for u in ordered]
        return weighted_average(ordered, weights)


STRATEGIES: dict[str, tuple[type[Strategy], frozenset[str]]] = {
    FedAvg.name: (FedAvg, frozenset()),
}


def all_strategies() -> dict[str, tuple[type[Strategy], frozenset[str]]]:
    """This module's strategies plus the robust rules, server optimizers and central DP (imported here: no
    cycle)."""
    from aggregator.central_dp import CENTRAL_DP_STRATEGIES
    from aggregator.guarded import GUARDED_STRATEGIES
    from aggregator.robust import ROBUST_STRATEGIES
    from aggregator.server_opt import SERVER_STRATEGIES

    return {**STRATEGIES, **ROBUST_STRATEGIES, **GUARDED_STRATEGIES, **SERVER_STRATEGIES, **CENTRAL_DP_STRATEGIES}


def get_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy registered as ``name`` (case-insensitive) built from its JSON parameters."""
    params = dict(params or {})
    registry = all_strategies()
    entry = registry.get(name.lower()) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(registry))}")
    cls, allowed = entry
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"strategy {cls.name!r} does not take parameters {unknown}; allowed: {sorted(allowed)}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters for strategy {cls.name!r}: {exc}") from exc

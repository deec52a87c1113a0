"""The strategy interface (in the manner of Flower's ``flwr.serverapp.strategy``): one ``aggregate`` that returns
the new global tensors with the strategy's report, and no hidden state.

A strategy is a small immutable holder of its parameters. Everything a round provides (its chain-derived seed, the
state carried from the last accepted round, the validation set, how many updates were already rejected) arrives in
``RoundContext``; everything the strategy wants recorded comes back in ``Aggregation``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aggregator.strategies.ops import ClientUpdate, Tensors, ordered_updates, sample_weights, weighted_average


@dataclass(frozen=True)
class ValidationSet:
    """The task's validation set (declared on chain by CID) and the architecture that reads it."""

    architecture: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class RoundContext:
    """Chain-derived facts about the round, identical for every aggregator.

    ``seed``: 32 bytes derived from on-chain data of the round (``central_dp.round_seed``). ``previous``: the
    ``details`` of the current global model's manifest (what the last accepted round carried forward).
    ``released_rounds``: rounds of the task, this one included, whose aggregation phase was reached.
    ``validation``: the validation set, or None. ``rejected``: updates of the round rejected before aggregation
    (malformed, free riders). ``server_state``: the server optimizer's tensors from the last accepted round.
    """

    task_id: int = 0
    round: int = 0
    seed: bytes = b""
    previous: Mapping[str, Any] = field(default_factory=dict)
    released_rounds: int = 1
    validation: ValidationSet | None = None
    rejected: int = 0
    server_state: Tensors | None = None


@dataclass(frozen=True)
class Aggregation:
    """What ``aggregate`` returns: the new global tensors (float32, the global model's names and shapes), the
    strategy's report (JSON values, merged into the aggregate manifest's ``details``) and the server state to
    carry into the next round (tensors, or None for stateless strategies)."""

    tensors: Tensors
    report: dict[str, Any] = field(default_factory=dict)
    server_state: Tensors | None = None


class Strategy(ABC):
    """Combines the current global model and the accepted updates into the next global model.

    ``name`` is the on-chain strategy id. The flags say which parts of ``RoundContext`` the strategy reads, so the
    aggregator fetches only what is needed.
    """

    name: ClassVar[str]
    uses_round_seed: ClassVar[bool] = False
    uses_validation: ClassVar[bool] = False
    uses_server_state: ClassVar[bool] = False

    @abstractmethod
    def aggregate(self, global_tensors: Tensors, updates: Sequence[ClientUpdate],
                  context: RoundContext | None = None) -> Aggregation:
        """The next global model from a non-empty list of accepted updates."""

    def report_without_updates(self, context: RoundContext | None = None) -> dict[str, Any]:
        """What the strategy reports for a round in which no update was accepted (the model does not move)."""
        return {}


class MeanStrategy(Strategy):
    """A strategy whose result is a function of the updates' FedAvg (their mean weighted by ``n_i / N``): FedAvg
    itself, FedProx and the server optimizers.

    ``step`` turns that average into the next global model; central DP replaces the average with its noisy mean of
    clipped deltas and then calls ``step``, so the server optimizer is post-processing of the DP release.
    """

    def aggregate(self, global_tensors: Tensors, updates: Sequence[ClientUpdate],
                  context: RoundContext | None = None) -> Aggregation:
        ordered = ordered_updates(global_tensors, updates)
        average = weighted_average(ordered, sample_weights(ordered, self.name))
        return self.step(global_tensors, average, context or RoundContext())

    @abstractmethod
    def step(self, global_tensors: Tensors, average: Tensors, context: RoundContext) -> Aggregation:
        """The next global model from the (float32) average of the round's updates."""

"""FedAvg and FedProx: the weighted average of the updates."""

from __future__ import annotations

from typing import ClassVar

from aggregator.strategies.base import Aggregation, MeanStrategy, RoundContext, Tensors
from aggregator.strategies.ops import number
from fedchain.taskspec import DEFAULT_PROXIMAL_MU


class FedAvg(MeanStrategy):
    """McMahan et al.'s FedAvg: average of updates weighted by ``n_i / N``."""

    name: ClassVar[str] = "fedavg"

    def step(self, global_tensors: Tensors, average: Tensors, context: RoundContext) -> Aggregation:
        return Aggregation(average)


class FedProx(FedAvg):
    """FedAvg on the server; trainers add ``proximal_mu/2 * ||w - g||^2`` to their loss (``client.training``)."""

    name: ClassVar[str] = "fedprox"

    def __init__(self, proximal_mu: float = DEFAULT_PROXIMAL_MU) -> None:
        self.proximal_mu = number(proximal_mu, "proximal_mu", 0.0, None)

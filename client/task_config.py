"""Training settings a task imposes on its trainers through its on-chain strategy id and parameters."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from client.trainer import TrainConfig


def task_train_config(config: TrainConfig, task: Any) -> TrainConfig:
    """``config`` with the task's FedProx proximal term: strategy ``fedprox`` with ``{"proximal_mu": mu}``."""
    if str(task.params.strategy).lower() != "fedprox":
        return config
    from aggregator.server_opt import FedProx

    raw = bytes(task.params.strategyParams).decode() or "{}"
    params = json.loads(raw)
    mu = FedProx(**{k: v for k, v in params.items() if k == "proximal_mu"}).proximal_mu
    return replace(config, proximal_mu=mu)

"""Training settings a task imposes on its trainers through its on-chain strategy id and parameters."""

from __future__ import annotations

from dataclasses import replace

from client.trainer import TrainConfig
from fedchain.taskspec import TaskSpec


def task_train_config(config: TrainConfig, spec: TaskSpec) -> TrainConfig:
    """``config`` with the task's FedProx proximal term (strategy ``fedprox``, parameter ``proximal_mu``)."""
    mu = spec.proximal_mu()
    return config if mu is None else replace(config, proximal_mu=mu)

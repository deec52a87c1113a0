"""End-to-end fixtures: the real contracts on anvil, a local content store, trainers with non-IID digits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from aggregator.service import AggregatorNode
from client.participant import TrainerNode
from fedchain.chain import Fedchain
from fedchain.demo import DemoConfig, Participants, setup
from fedchain.store.local import LocalContentStore


@dataclass
class Federation:
    cfg: DemoConfig
    people: Participants
    fed: Fedchain
    task_id: int
    store: LocalContentStore
    trainers: list[TrainerNode]
    aggregator: AggregatorNode
    data: dict[str, Any]


@pytest.fixture
def fedchain_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def build_federation(home, trainers: int, rounds: int, **overrides: Any) -> Federation:
    cfg = DemoConfig(rounds=rounds, trainers=trainers, phase_seconds=60, **overrides)
    store = LocalContentStore(home / "store")
    people = Participants.from_test_accounts(trainers)
    fed, task_id, data = setup(cfg, people, store)
    (x, y) = data["train"]
    nodes = [
        TrainerNode(fed, acct, store, (x[idx], y[idx]), cfg.train)
        for acct, idx in zip(people.trainers, data["parts"], strict=True)
    ]
    aggregator = AggregatorNode(fed, people.aggregator, store)
    return Federation(cfg, people, fed, task_id, store, nodes, aggregator, data)


@pytest.fixture
def federation(fedchain_home) -> Federation:
    """3 trainers, 2 rounds."""
    return build_federation(fedchain_home, trainers=3, rounds=2)

"""Federations for the end-to-end tests: the demo's setup (real contracts on anvil, a local content store,
non-IID trainers and an aggregator) as objects a test can drive step by step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.service import AggregatorNode
from client.participant import TrainerNode
from fedchain.ape.chain import Fedchain
from fedchain.ape.rounds import try_advance
from fedchain.cli.demo import DemoConfig, Participants, make_nodes, setup
from fedchain.protocol import Phase
from fedchain.store.local import LocalContentStore


@dataclass
class Federation:
    cfg: DemoConfig
    people: Participants
    fed: Fedchain
    task_id: int
    store: LocalContentStore
    trainers: list[TrainerNode]
    aggregators: list[AggregatorNode]
    data: dict[str, Any]

    @property
    def aggregator(self) -> AggregatorNode:
        """The first aggregator node (the committee of one, unless built with ``aggregators=``)."""
        return self.aggregators[0]


def build_federation(home, trainers: int, rounds: int, **overrides: Any) -> Federation:
    cfg = DemoConfig(rounds=rounds, trainers=trainers, phase_seconds=900, **overrides)
    store = LocalContentStore(home / "store")
    people = Participants.from_test_accounts(trainers, cfg.aggregators)
    fed, task_id, data = setup(cfg, people, store)
    nodes, aggregator = make_nodes(cfg, people, fed, data, store)
    return Federation(cfg, people, fed, task_id, store, nodes, aggregator, data)


def advance_to(f: Federation, round_: int, phase: Phase) -> None:
    """Advance the round until it reaches ``phase`` (each step must be allowed)."""
    while f.fed.round(f.task_id, round_).phase < phase:
        assert try_advance(f.fed, f.task_id, f.people.deployer) is not None

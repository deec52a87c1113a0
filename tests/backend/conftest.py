"""Backend fixtures: one federation per module on the test's anvil (2 rounds, one rejected update, one unclaimed
reward), indexed into SQLite."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ape import chain

from backend.indexer import Indexer  # noqa: E402
from tests.support.backend import new_indexer, run_honest_round, run_round_with_rejection
from tests.support.federation import Federation, build_federation


@dataclass
class World:
    f: Federation
    indexer: Indexer
    url: str
    home: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDCHAIN_HOME", str(home))
        # earlier modules' snapshot reverts can leave anvil's clock behind the wall clock that the trainer
        # nodes compare deadlines with: bring the chain's clock up to now first
        chain.mine(timestamp=max(int(time.time()), int(chain.blocks.head.timestamp)) + 1)
        f = build_federation(home, trainers=3, rounds=2)
        run_round_with_rejection(f)
        run_honest_round(f, 2)
        f.trainers[0].claim(f.task_id)  # trainers 2 and 3 leave their round-2 rewards unclaimed
        url = f"sqlite:///{root / 'indexed.sqlite3'}"
        indexer = new_indexer(url, f.store)
        indexer.catch_up()
        yield World(f, indexer, url, home)

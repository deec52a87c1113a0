"""Backend fixtures: one federation per module on the test's anvil (2 rounds, one rejected update, one unclaimed
reward), indexed into SQLite."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ape import chain

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from backend_testlib import new_indexer  # noqa: E402
from e2e_lib import Federation, advance_to, build_federation  # noqa: E402

from backend.indexer import Indexer  # noqa: E402
from fedchain.chain import Phase  # noqa: E402
from fedchain.codec import sha256  # noqa: E402
from fedchain.commitments import trainer_commitment  # noqa: E402

SALT = b"\x22" * 32


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Anvil's evm_revert (ape's test isolation) winds the chain's clock back by the time since the snapshot, so
    long backend tests would leave later modules' chain clock minutes behind the wall clock that trainer nodes
    compare deadlines with. After each backend test (and its isolation revert) set the clock back to now."""
    yield
    from ape import networks

    if networks.active_provider is None:
        return
    now = int(time.time())
    if int(chain.blocks.head.timestamp) < now:
        networks.provider.make_request("evm_setTime", [now])


@dataclass
class World:
    f: Federation
    indexer: Indexer
    url: str
    home: Path


def run_round_with_rejection(f: Federation) -> None:
    """Round 1: two honest trainers, one that reveals bytes that are not a model (rejected: not_safetensors)."""
    honest, hostile = f.trainers[:2], f.people.trainers[2]
    for t in honest:
        t.train_and_commit(f.task_id)
    junk = b"not a model at all" * 8
    cid = f.store.put(junk)
    commitment = trainer_commitment(hostile.address, f.task_id, 1, sha256(junk), 40, SALT)
    f.fed.tasks.commitUpdate(f.task_id, commitment, sender=hostile)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(f.task_id, 1)
    f.fed.tasks.revealUpdate(f.task_id, cid, sha256(junk), 40, SALT, sender=hostile)
    while f.fed.task(f.task_id).currentRound == 1:
        assert f.aggregator.step(f.task_id) is not None
    for t in honest:
        t.claim(f.task_id)


def run_honest_round(f: Federation, round_: int) -> None:
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    while f.fed.task(f.task_id).status == 1 and f.fed.task(f.task_id).currentRound == round_:
        assert f.aggregator.step(f.task_id) is not None


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

"""The indexer against a real anvil with the demo's contracts: indexed data equals what the chain says; restarts
resume without gaps or duplicates; chain resets are detected and re-indexed; the Postgres path gives the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ape import chain, networks
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.models import Account, ChainEvent, Contribution, IndexerState, Round, Setting, Task
from fedchain.codec import decode_model
from tests.support.backend import chain_log_count, new_indexer, postgres_server, rows

TRAINER_STATUS = {1: "committed", 2: "revealed", 3: "claimed", 4: "slashed"}
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def test_indexed_read_model_equals_the_chain(world):
    f, engine = world.f, world.indexer.engine
    fed = f.fed
    with Session(engine) as db:
        task = db.get(Task, f.task_id)
        info = fed.task(f.task_id)
        assert (task.status, task.current_round, task.global_model_cid) == ("completed", info.current_round,
                                                                             info.global_model_cid)
        assert int(task.remaining_budget_wei) == info.remaining_budget
        assert task.sponsor == f.people.sponsor.address.lower() and task.num_rounds == 2
        assert task.validation_cid == info.spec.validation_cid
        unclaimed_total = 0
        for round_ in (1, 2):
            chain_round = fed.round(f.task_id, round_)
            rnd = db.get(Round, (f.task_id, round_))
            assert rnd.phase == chain_round.phase.key == "finalized"
            assert (rnd.result_cid, rnd.accepted, rnd.rejected) == (chain_round.result_cid, chain_round.accepted,
                                                                    chain_round.rejected)
            paid = fed.call("vault", "paidOf", f.task_id, round_)
            assert (int(rnd.round_budget_wei), int(rnd.paid_wei), int(rnd.aggregator_paid_wei)) == (
                chain_round.round_budget, paid[0], paid[1])
            trainers_part = fed.round_split(f.task_id, round_)[0]
            assert int(rnd.trainer_budget_wei) == trainers_part
            assert rnd.accuracy == chain_round.accuracy_ppm / 1e6 and rnd.details_status == "ok"
            assert (rnd.committed, rnd.revealed) == (chain_round.committed, chain_round.revealed) == (3, 3)
            blob = f.store.get(chain_round.result_cid, sha256=bytes(chain_round.result_digest), max_bytes=1 << 26)
            details = decode_model(blob)[1].details
            for trainer in fed.round_trainers(f.task_id, round_):
                entry = fed.trainer_entry(f.task_id, round_, trainer)
                c = db.get(Contribution, (f.task_id, round_, trainer.lower()))
                assert c.status == TRAINER_STATUS[int(entry.status)]
                assert (c.samples, c.update_cid) == (entry.num_samples, entry.cid)
                assert c.score == details["scores"][trainer.lower()]
                rejection = details["rejected"].get(trainer.lower())
                assert c.accepted is (rejection is None)
                assert c.reject_code == (rejection["code"] if rejection else None)
                assert c.weight == details["weights"][trainer.lower()]
                assert int(c.bond_wei) == entry.bond
                expected = trainers_part * c.score * c.weight // chain_round.total_weight
                assert int(c.reward_wei) == expected
                if c.status == "revealed":
                    unclaimed_total += expected
        hostile = db.get(Contribution, (f.task_id, 1, f.people.trainers[2].address.lower()))
        assert (hostile.accepted, hostile.reject_code, hostile.reward_wei) == (False, "not_safetensors", "0")
        # what trainers can still claim, as the trainer nodes compute it from chain + store
        node_claimable = sum(c.reward for t in f.trainers for c in t.claimable(f.task_id))
        assert unclaimed_total == node_claimable > 0
        for account in db.scalars(select(Account)):
            assert int(account.balance_wei) == fed.token.balanceOf(account.address)
            assert int(account.staked_wei) == fed.staking.stakeOf(account.address)
        assert int(db.get(Setting, "total_supply_wei").value) == fed.token.totalSupply()
        assert db.get(Setting, "treasury").value == fed.staking.treasury().lower()
        events = db.scalar(select(func.count()).select_from(ChainEvent))
        assert events == chain_log_count(world.indexer, db.get(IndexerState, 1).last_block) > 50


def test_restart_resumes_without_gaps_or_duplicates(world, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    first = new_indexer(url, world.f.store, batch_blocks=7)
    for _ in range(3):
        assert first.step() == 7
    # crash in the middle of the next range: nothing of it may be committed
    from backend import projections

    original = projections.Projector.apply
    calls = {"n": 0}

    def crash_after_some(self, log):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("simulated crash")
        return original(self, log)

    monkeypatch.setattr(projections.Projector, "apply", crash_after_some)
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.step()
    monkeypatch.setattr(projections.Projector, "apply", original)
    with Session(first.engine) as db:
        assert db.get(IndexerState, 1).last_block == world.f.fed.deployment.block + 20
    restarted = new_indexer(url, world.f.store, batch_blocks=7)  # a new process: new engine, new indexer
    restarted.catch_up()
    assert rows(restarted.engine) == rows(world.indexer.engine)
    with Session(restarted.engine) as db:
        duplicates = db.execute(select(ChainEvent.tx_hash, ChainEvent.log_index).group_by(
            ChainEvent.tx_hash, ChainEvent.log_index).having(func.count() > 1)).all()
        assert duplicates == []


def test_cli_index_once_twice_is_idempotent(world, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    import os

    env = dict(os.environ, FEDCHAIN_HOME=str(world.home), APE_FOUNDRY_HOST=networks.provider.uri)
    args = [str(BIN / "fedchain"), "backend", "index", "--once", "--database-url", url, "--rpc-url",
            networks.provider.uri]
    for _ in range(2):
        proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "indexed up to block" in proc.stdout
    from backend.db import make_engine

    assert rows(make_engine(url)) == rows(world.indexer.engine)


def test_chain_reset_is_detected_and_reindexed(world, tmp_path):
    f = world.f
    indexer = new_indexer(f"sqlite:///{tmp_path / 'reset.sqlite3'}", f.store)
    indexer.catch_up()
    lucky, other = f.people.trainers[0].address, f.people.trainers[1].address
    before = f.fed.token.balanceOf(lucky)
    snapshot = chain.snapshot()
    f.fed.token.mint(lucky, 5 * 10**18, sender=f.people.deployer)
    indexer.catch_up()
    with Session(indexer.engine) as db:
        assert int(db.get(Account, lucky.lower()).balance_wei) == before + 5 * 10**18
    chain.restore(snapshot)  # the chain forgets the mint, like a restarted anvil forgets everything
    f.fed.token.mint(other, 7 * 10**18, sender=f.people.deployer)
    chain.mine(2)
    indexer.catch_up()
    assert indexer.status.resets == 1
    with Session(indexer.engine) as db:
        assert int(db.get(Account, lucky.lower()).balance_wei) == before == f.fed.token.balanceOf(lucky)
        assert int(db.get(Account, other.lower()).balance_wei) == f.fed.token.balanceOf(other)
        state = db.get(IndexerState, 1)
        assert state.resets == 1
        assert db.scalar(select(func.count()).select_from(ChainEvent)) == chain_log_count(indexer, state.last_block)
    # a different genesis block (anvil restarted) also wipes and rebuilds
    with Session(indexer.engine) as db, db.begin():
        db.get(IndexerState, 1).genesis_hash = "0x" + "ab" * 32
    indexer.catch_up()
    assert indexer.status.resets == 2
    with Session(indexer.engine) as db:
        assert db.get(Task, f.task_id).status == "completed"


def test_confirmation_depth_keeps_the_indexer_behind_the_head(world, tmp_path):
    depth = 4
    indexer = new_indexer(f"sqlite:///{tmp_path / 'depth.sqlite3'}", world.f.store, confirmations=depth)
    indexer.catch_up()
    head = networks.provider.web3.eth.block_number
    with Session(indexer.engine) as db:
        assert db.get(IndexerState, 1).last_block == head - depth
        events = db.scalar(select(func.count()).select_from(ChainEvent))
    assert indexer.status.lag == depth and events == chain_log_count(indexer, head - depth)
    chain.mine(depth)  # the blocks that were too fresh are now deep enough
    indexer.catch_up()
    assert indexer.status.last_block == head and indexer.status.lag == depth
    assert rows(indexer.engine)["events"] == rows(world.indexer.engine)["events"]


def test_postgres_path_gives_the_same_read_model(world):
    with postgres_server() as url:
        indexer = new_indexer(url, world.f.store, batch_blocks=50)
        indexer.catch_up()
        assert rows(indexer.engine) == rows(world.indexer.engine)
        new_indexer(url, world.f.store).catch_up()  # migrations and resume are idempotent on Postgres too
        assert rows(indexer.engine) == rows(world.indexer.engine)
        indexer.engine.dispose()

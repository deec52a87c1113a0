"""Differential privacy on the chain: budgets the client enforces, epsilon reported per round and in total,
central DP whose chain-seeded noise is identical for every aggregator of the round."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from ape import chain, networks
from rich.console import Console

import client.participant as participant
from aggregator.service import AggregatorNode
from aggregator.strategies.central_dp import round_seed
from client.privacy import BudgetExceeded
from client.trainer import TrainConfig
from fedchain.ape.rounds import try_advance
from fedchain.cli.demo import DemoConfig, Participants, make_nodes, run_round, setup
from fedchain.codec import decode_model
from fedchain.errors import FedchainError
from fedchain.manifests import PrivacyRecord
from fedchain.privacy import central_epsilon
from fedchain.protocol import Phase, TrainerStatus
from fedchain.store.local import LocalContentStore
from tests.support.chain import sync_chain_clock, warp
from tests.support.federation import Federation

REPO = Path(__file__).resolve().parents[2]
FAST = TrainConfig(epochs=2)
PHASE_SECONDS = 900


@pytest.fixture(autouse=True)
def wall_clock_chain():
    """Start each test's blocks at wall-clock time (a reverted snapshot leaves the chain's clock behind, and the
    trainers compare phase deadlines against the later of the two)."""
    sync_chain_clock()


def build_federation(home, trainers: int, rounds: int, **overrides) -> Federation:
    """As e2e_lib's, with 15-minute phases: DP planning and training on a busy CI machine must not miss them."""
    cfg = DemoConfig(rounds=rounds, trainers=trainers, phase_seconds=PHASE_SECONDS, **overrides)
    store = LocalContentStore(home / "store")
    people = Participants.from_test_accounts(trainers)
    fed, task_id, data = setup(cfg, people, store)
    nodes, aggregator = make_nodes(cfg, people, fed, data, store)
    return Federation(cfg, people, fed, task_id, store, nodes, aggregator, data)


def _manifest(store, cid: str):
    return decode_model(store.get(cid, max_bytes=1 << 26))[1]


def test_task_bound_lower_than_trainer_target_wins_and_epsilon_is_reported(fedchain_home):
    f = build_federation(fedchain_home, trainers=2, rounds=2, dp=True, epsilon=2.0, train=FAST)
    for t in f.trainers:
        t.target_epsilon = 8.0  # the trainers would accept more; the task's on-chain bound (2.0) must win
    rows = [run_round(f.fed, f.task_id, r, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])
            for r in (1, 2)]
    assert all(row["status"] == "finalized" and row["accepted"] == 2 for row in rows)
    for t in f.trainers:
        records = []
        for r in (1, 2):
            entry = f.fed.trainer_entry(f.task_id, r, t.address)
            manifest = _manifest(f.store, entry.cid)
            record = PrivacyRecord.of_update(manifest)
            assert record is not None and manifest.epsilon_spent == record.epsilon_total
            assert record.epsilon_budget == 2.0 and record.delta == f.cfg.delta
            records.append(record)
            # carried into the accepted aggregate's manifest, next to the trainer's score
            result = _manifest(f.store, f.fed.round(f.task_id, r).result_cid)
            carried = result.details["privacy"][t.address.lower()]
            assert carried["epsilon_total"] == record.epsilon_total
            assert carried["epsilon_round"] == record.epsilon_round
        first, second = records
        assert 0 < first.epsilon_round == pytest.approx(first.epsilon_total)
        assert first.epsilon_total < second.epsilon_total <= 2.0  # the whole task stays inside the bound
        assert second.epsilon_total > 2.0 - 0.05  # and the planned noise is not wastefully large
        report = t.epsilon_report(f.task_id)
        assert report[2] == (second.epsilon_round, second.epsilon_total)
    # `fedchain client status` shows it, in a separate process on the test's chain
    env = {**__import__("os").environ, "FEDCHAIN_HOME": str(fedchain_home), "APE_FOUNDRY_HOST": networks.provider.uri}
    index = 4  # Participants.from_test_accounts: trainers are TEST::4, TEST::5, ...
    out = subprocess.run([str(Path(sys.executable).parent / "fedchain"), "client", "status", "--task",
                          str(f.task_id), "--account", f"TEST::{index}", "--network", "ethereum:local:foundry"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "in total" in out.stdout and "epsilon spent so far: 1.9" in out.stdout and "task bound 2" in out.stdout


def test_client_stops_at_its_budget(fedchain_home):
    f = build_federation(fedchain_home, trainers=2, rounds=3, train=FAST)  # the task requires no DP
    dp_trainer = f.trainers[0]
    dp_trainer.target_epsilon = 6.0
    run_round(f.fed, f.task_id, 1, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])
    entry = f.fed.trainer_entry(f.task_id, 1, dp_trainer.address)
    spent = PrivacyRecord.of_update(_manifest(f.store, entry.cid)).epsilon_total
    assert 0 < spent < 6.0
    # the trainer lowers its target below what it already spent: it must refuse, and commit nothing
    dp_trainer.target_epsilon = spent * 0.9
    with pytest.raises(BudgetExceeded, match="already spent"):
        dp_trainer.train_and_commit(f.task_id)
    assert TrainerStatus(f.fed.tasks.getTrainerEntry(f.task_id, 2, dp_trainer.address).status) == TrainerStatus.NONE
    # the epsilon it publishes is computed from its plan: a DP-SGD run that differs from the plan is not committed
    real_train = participant.train_local

    def one_step_short(*args, **kwargs):
        result = real_train(*args, **kwargs)
        return replace(result, dp_history=[(z, q, n - 1) for z, q, n in result.dp_history])

    dp_trainer.target_epsilon = 6.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(participant, "train_local", one_step_short)
        with pytest.raises(FedchainError, match="not the planned"):
            dp_trainer.train_and_commit(f.task_id)
    assert TrainerStatus(f.fed.tasks.getTrainerEntry(f.task_id, 2, dp_trainer.address).status) == TrainerStatus.NONE
    # with the budget it planned for, the next rounds still fit: total stays inside 6.0 after round 3
    for r in (2, 3):
        run_round(f.fed, f.task_id, r, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])
    entry = f.fed.trainer_entry(f.task_id, 3, dp_trainer.address)
    assert 6.0 - 0.05 < _manifest(f.store, entry.cid).epsilon_spent <= 6.0
    other = f.fed.trainer_entry(f.task_id, 3, f.trainers[1].address)  # no DP asked: none spent
    assert _manifest(f.store, other.cid).epsilon_spent is None


def _to_aggregator_commit(f) -> int:
    """Commit, reveal, and advance into AggregatorCommit; returns the block of that advance."""
    round_ = f.fed.task(f.task_id).current_round
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    warp(f.cfg.phase_seconds + 1)
    assert try_advance(f.fed, f.task_id, f.people.deployer) is not None
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    receipt = try_advance(f.fed, f.task_id, f.people.deployer)
    assert Phase(f.fed.round(f.task_id, round_).phase) == Phase.AGGREGATOR_COMMIT
    return int(receipt.block_number)


def test_central_dp_noise_is_seeded_by_the_round_and_identical_across_aggregators(fedchain_home, tmp_path):
    params = {"clip_norm": 1.0, "noise_multiplier": 0.5}
    f = build_federation(fedchain_home, trainers=3, rounds=2, strategy="dp-fedavg", strategy_params=params,
                         train=FAST)
    block = _to_aggregator_commit(f)
    seed = f.aggregator.computer.round_seed(f.task_id, 1)
    d = f.fed.deployment
    assert seed == round_seed(d.chain_id, d.tasks, f.task_id, 1, bytes(chain.blocks[block].hash))
    first = f.aggregator.compute(f.task_id, 1)
    other_store = LocalContentStore(tmp_path / "other-store")  # a second committee member, its own copy of the files
    for t in f.trainers:
        entry = f.fed.trainer_entry(f.task_id, 1, t.address)
        other_store.put(f.store.get(entry.cid, max_bytes=1 << 26))
    task = f.fed.task(f.task_id)
    for cid in (task.global_model_cid, task.spec.validation_cid):
        other_store.put(f.store.get(cid, max_bytes=1 << 26))
    second = AggregatorNode(f.fed, f.people.deployer, other_store).compute(f.task_id, 1)
    assert first.blob == second.blob and first.result == second.result
    # a committee sharing a secret draws different noise (nobody else can reproduce it)
    secret = AggregatorNode(f.fed, f.people.deployer, other_store, central_dp_secret=b"committee").compute(f.task_id, 1)
    assert secret.blob != first.blob
    report = decode_model(first.blob)[1].details["central_dp"]
    assert report["rounds"] == 1 and report["clients"] == 3
    assert report["epsilon_round"] == report["epsilon_total"] == central_epsilon(0.5, 1, 1e-5)
    # finish round 1 through the normal service loop, then round 2: new round data, new noise, epsilon composes
    while f.fed.task(f.task_id).current_round == 1:
        f.aggregator.step(f.task_id)
    assert Phase(f.fed.round(f.task_id, 1).phase) == Phase.FINALIZED
    row = run_round(f.fed, f.task_id, 2, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])
    assert row["status"] == "finalized"
    assert f.aggregator.computer.round_seed(f.task_id, 2) != seed
    report2 = _manifest(f.store, f.fed.round(f.task_id, 2).result_cid).details["central_dp"]
    assert report2["rounds"] == 2 and report2["epsilon_total"] == central_epsilon(0.5, 2, 1e-5)
    assert row["central_epsilon_total"] == report2["epsilon_total"] and math.isfinite(row["central_epsilon_total"])


def test_round_trained_without_dp_makes_the_total_infinite(fedchain_home):
    f = build_federation(fedchain_home, trainers=2, rounds=3, train=FAST)  # the task requires no DP
    trainer = f.trainers[0]
    run_round(f.fed, f.task_id, 1, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])  # no DP
    trainer.config = replace(trainer.config, dp=True)  # DP from round 2 on, with no epsilon limit
    run_round(f.fed, f.task_id, 2, f.trainers, f.aggregators, Console(quiet=True), f.data["test"])
    manifest = _manifest(f.store, f.fed.trainer_entry(f.task_id, 2, trainer.address).cid)
    record = PrivacyRecord.of_update(manifest)
    assert record.noise_multiplier > 0 and math.isfinite(record.epsilon_round)
    assert math.isinf(record.epsilon_total) and manifest.epsilon_spent is None  # round 1 had no noise
    assert trainer.epsilon_report(f.task_id)[2] == (record.epsilon_round, math.inf)
    trainer.target_epsilon = 6.0  # a finite budget can never fit after a non-private round
    with pytest.raises(BudgetExceeded, match="without DP"):
        trainer.train_and_commit(f.task_id)


def _objects(store) -> int:
    return sum(1 for _ in (store.root / "objects").iterdir())


def test_every_release_is_counted_and_nothing_unreleased_is(fedchain_home):
    """A DP update that was uploaded is a release, committed or not: the ledger counts it, and a restarted trainer
    commits that same file instead of training (and releasing) again. An update trained but never uploaded (the
    round closed while it trained) released nothing: the ledger does not count it."""
    from client.participant import NotReady

    f = build_federation(fedchain_home, trainers=2, rounds=2, train=FAST)
    uploaded, withheld = f.trainers
    for t in f.trainers:
        t.target_epsilon = 6.0
    # 1. the process stops between the upload and the commit
    real_send = uploaded.fed.send

    def stopped_at_commit(description, *args, **kwargs):
        if description == "commit":
            raise FedchainError("the process stopped")
        return real_send(description, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(uploaded.fed, "send", stopped_at_commit)
        with pytest.raises(FedchainError, match="stopped"):
            uploaded.train_and_commit(f.task_id)
    pending = uploaded.journal.load(f.task_id, 1)
    assert pending.cid and f.store.has(pending.cid) and not pending.withheld
    assert f.fed.trainer_entry(f.task_id, 1, uploaded.address).status == TrainerStatus.NONE
    [counted] = uploaded.ledger.history(f.task_id, 2)
    assert counted.epsilon_total == pending.privacy_record.epsilon_total > 0
    # restarted: the journaled file is committed, nothing is trained or stored again
    before = _objects(f.store)
    assert uploaded.train_and_commit(f.task_id).cid == pending.cid
    assert _objects(f.store) == before
    assert f.fed.trainer_entry(f.task_id, 1, uploaded.address).status == TrainerStatus.COMMITTED

    # 2. the round stops taking commits while the other trainer trains: nothing uploaded, nothing counted
    real_readiness, calls = withheld.readiness, []

    def closes_during_training(task_id, round_=None):
        calls.append(task_id)
        if len(calls) > 1:
            raise NotReady("task 1 round 1 is not taking commits")
        return real_readiness(task_id, round_)

    before = _objects(f.store)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(withheld, "readiness", closes_during_training)
        with pytest.raises(NotReady):
            withheld.train_and_commit(f.task_id)
    entry = withheld.journal.load(f.task_id, 1)
    assert entry.withheld and not entry.cid and withheld.journal.blob(f.task_id, 1) is None
    assert _objects(f.store) == before  # never uploaded
    assert withheld.ledger.history(f.task_id, 2) == []
    # still in the commit phase: it trains afresh (a new plan, a new release) and commits
    assert withheld.train_and_commit(f.task_id).cid
    assert _objects(f.store) == before + 1
    assert [r.epsilon_total for r in withheld.ledger.history(f.task_id, 2)] == [
        withheld.journal.load(f.task_id, 1).privacy_record.epsilon_total]

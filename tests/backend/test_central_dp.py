"""Central DP through the indexer: a dp-fedavg task runs real rounds on the test's anvil (one finalized, one that
fails after the trainers revealed, i.e. after release, one finalized), and the API reports each round's central
epsilon as the aggregator wrote it in the result manifest, and the cumulative epsilon per round and per task as
the aggregator's accountant composes it over the released rounds. Also: migrations 0002-0004 upgrade older
databases."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from alembic import command
from ape import networks
from litestar.testing import TestClient
from sqlalchemy import inspect, text

from backend.app import BackendConfig, create_app
from backend.db import alembic_config, make_engine, migrate
from client.trainer import TrainConfig
from fedchain.manifests import fetch_manifest
from fedchain.privacy import central_epsilon
from fedchain.protocol import Phase
from tests.support.backend import new_indexer, run_honest_round
from tests.support.chain import sync_chain_clock, warp
from tests.support.federation import Federation, advance_to, build_federation

NOISE, CLIP, DELTA = 0.8, 1.0, 1e-5
LOCAL_EPSILON = 8.0  # the task's bound on each trainer's local DP-SGD epsilon


def round_failing_after_release(f: Federation, round_: int) -> None:
    """Trainers commit and reveal, the round enters AggregatorCommit, and no aggregator commits: NO_QUORUM.

    The trainers use another training seed here: the next round starts from the same global model, and the same
    seed would give the same tensors, which the aggregator rejects as replays of this round's updates."""
    for t in f.trainers:
        default = t.config
        t.config = replace(default, seed=default.seed + 1000)
        try:
            t.train_and_commit(f.task_id)
        finally:
            t.config = default
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    advance_to(f, round_, Phase.AGGREGATOR_COMMIT)
    warp(f.cfg.phase_seconds + 1)
    advance_to(f, round_, Phase.FAILED)


@pytest.fixture(scope="module")
def dp_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("central-dp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDCHAIN_HOME", str(root / "home"))
        sync_chain_clock()
        f = build_federation(root / "home", trainers=2, rounds=3, strategy="dp-fedavg",
                             strategy_params={"clip_norm": CLIP, "noise_multiplier": NOISE, "delta": DELTA},
                             train=TrainConfig(epochs=1), dp=True, epsilon=LOCAL_EPSILON)  # and local DP-SGD
        run_honest_round(f, 1)
        round_failing_after_release(f, 2)
        run_honest_round(f, 3)
        url = f"sqlite:///{root / 'indexed.sqlite3'}"
        new_indexer(url, f.store).catch_up()
        app = create_app(BackendConfig(database_url=url, run_indexer=False, rpc_url=networks.provider.uri,
                                       rate_limit_per_minute=0))
        with TestClient(app) as client:
            yield f, client


def test_central_epsilon_per_round_and_cumulative_match_the_aggregator(dp_world):
    f, client = dp_world
    rounds = client.get(f"/tasks/{f.task_id}/rounds").json()["items"]
    assert [r["phase"] for r in rounds] == ["finalized", "failed", "finalized"]
    assert rounds[1]["failure_reason"] == "NoQuorum"
    for r in rounds:
        released = f.fed.released_rounds(f.task_id, r["round"])  # the aggregator's own count, from the chain
        assert released == r["round"]  # round 2 failed after release: it counts
        assert r["central_epsilon_total"] == central_epsilon(NOISE, released, DELTA)
        if r["phase"] == "failed":
            assert r["central_epsilon"] is None and r["result_cid"] is None
            continue
        chain_round = f.fed.round(f.task_id, r["round"])
        manifest = fetch_manifest(f.store, chain_round.result_cid, chain_round.result_digest, 1 << 26)
        report = manifest.details["central_dp"]
        assert report["rounds"] == released
        assert r["central_epsilon"] == report["epsilon_round"] == central_epsilon(NOISE, 1, DELTA)
        assert r["central_epsilon_total"] == report["epsilon_total"]
        assert (r["central_noise_multiplier"], r["central_delta"]) == (report["noise_multiplier"], report["delta"])
    # RDP composition, not a plain sum: three rounds cost less than three times one round
    one, three = rounds[0]["central_epsilon"], rounds[2]["central_epsilon_total"]
    assert math.isfinite(three) and one < three < 3 * one
    task = client.get(f"/tasks/{f.task_id}").json()
    assert task["status"] == "completed" and task["strategy"] == "dp-fedavg"
    assert task["central_dp_rounds"] == f.fed.released_rounds(f.task_id, 3) == 3
    assert task["central_epsilon_total"] == rounds[2]["central_epsilon_total"] == central_epsilon(NOISE, 3, DELTA)
    assert task["central_delta"] == DELTA
    assert task["dp_epsilon"] == LOCAL_EPSILON
    one_round = client.get(f"/tasks/{f.task_id}/rounds/1").json()
    assert one_round["central_epsilon_total"] == central_epsilon(NOISE, 1, DELTA) == one_round["central_epsilon"]


def _alembic(engine, step, revision: str) -> None:
    """Run ``command.upgrade`` / ``command.downgrade`` to ``revision`` on ``engine``."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        step(cfg, revision)


def test_migration_0002_upgrades_a_0001_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    _alembic(engine, command.upgrade, "0001")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO rounds (task_id, round, phase, started_block, started_at, committed, revealed, "
            "aggregators_committed, aggregators_revealed, parent_model_cid, round_budget_wei, paid_wei, "
            "details_status, central_epsilon) VALUES (1, 1, 'finalized', 5, 6, 2, 2, 1, 1, '', '0', '0', 'ok', 0.5)"))
    assert "central_epsilon_total" not in {c["name"] for c in inspect(engine).get_columns("rounds")}
    migrate(engine)
    inspector = inspect(engine)
    assert {"central_epsilon_total", "central_delta", "central_noise_multiplier"} <= {
        c["name"] for c in inspector.get_columns("rounds")}
    assert {"central_epsilon_total", "central_delta", "central_dp_rounds"} <= {
        c["name"] for c in inspector.get_columns("tasks")}
    with engine.connect() as connection:
        row = connection.execute(text("SELECT central_epsilon, central_epsilon_total FROM rounds")).one()
    assert tuple(row) == (0.5, None)


def test_migrations_0003_to_0005_upgrade_a_0002_database_and_go_back(tmp_path):
    """0003 adds local_dp, 0004 locked_until, 0005 swaps it for bonds, attested weights and the vault's books."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    _alembic(engine, command.upgrade, "0002")

    def columns(table: str) -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    assert "local_dp" not in columns("contributions") and "locked_until" not in columns("accounts")
    _alembic(engine, command.upgrade, "0004")
    assert "local_dp" in columns("contributions") and "locked_until" in columns("accounts")
    migrate(engine)
    assert "locked_until" not in columns("accounts") and "reserved_wei" in columns("accounts")
    assert {"weight", "bond_wei"} <= columns("contributions")
    assert {"trainer_budget_wei", "aggregator_paid_wei", "swept_wei", "fee_wei"} <= columns("rounds")
    _alembic(engine, command.downgrade, "0004")
    assert "locked_until" in columns("accounts") and "weight" not in columns("contributions")
    _alembic(engine, command.downgrade, "0002")
    assert "local_dp" not in columns("contributions") and "locked_until" not in columns("accounts")


def test_contribution_epsilon_is_the_trainers_reported_local_epsilon(dp_world):
    f, client = dp_world
    contributions = client.get("/contributions", params={"task_id": f.task_id, "limit": 500}).json()["items"]
    assert len(contributions) == 6  # 2 trainers x 3 rounds
    spent: dict[str, list[float]] = {}
    for c in contributions:
        entry = f.fed.trainer_entry(f.task_id, c["round"], c["trainer"])  # CID and digest from the reveal event
        manifest = fetch_manifest(f.store, entry.cid, entry.update_digest, 1 << 26)
        assert c["epsilon"] == manifest.epsilon_spent and 0 < c["epsilon"] <= LOCAL_EPSILON
        assert c["local_dp"] is True
        spent.setdefault(c["trainer"], []).append(c["epsilon"])
    for series in spent.values():  # cumulative per trainer: grows every round it trained, failed round included
        assert series == sorted(series) and len(set(series)) == 3

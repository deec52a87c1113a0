"""The read API over the indexed anvil federation: values equal the chain's, pagination and filters, 400/404,
an OpenAPI fuzz run (schemathesis) with no server errors, and `fedchain backend serve` as a real process
(health, Prometheus metrics, CORS, rate limiting)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import schemathesis
from ape import chain, networks
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient
from sqlalchemy.orm import Session

from backend.app import BackendConfig, create_app
from backend.models import IndexerState
from tests.support.backend import postgres_server
from tests.support.net import free_port, wait_for

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def client(world):
    app = create_app(BackendConfig(database_url=world.url, run_indexer=False, rpc_url=networks.provider.uri,
                                   rate_limit_per_minute=0))
    with TestClient(app) as test_client:
        yield test_client


def test_tasks_and_rounds_match_the_chain(world, client):
    f = world.f
    page = client.get("/tasks").json()
    assert page["total"] == 1 and page["items"][0]["task_id"] == f.task_id
    task = client.get(f"/tasks/{f.task_id}").json()
    assert task["status"] == "completed" and task["global_model_cid"] == f.fed.task(f.task_id).global_model_cid
    assert client.get("/tasks", params={"status": "active"}).json()["total"] == 0
    rounds = client.get(f"/tasks/{f.task_id}/rounds").json()["items"]
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        chain_round = f.fed.round(f.task_id, r["round"])
        assert r["phase"] == "finalized" and r["result_cid"] == chain_round.result_cid
        assert r["metrics"]["accuracy"] == chain_round.accuracy_ppm / 1e6
        assert r["round_budget_wei"] == str(chain_round.round_budget)
        assert r["deadlines"]["trainer_commit"] > 0 and r["trainers_revealed"] == 3
    missing = client.get("/tasks/999")
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    assert client.get(f"/tasks/{f.task_id}/rounds/9").status_code == 404


def test_contributions_filters_pagination_and_leaderboard(world, client):
    f = world.f
    everything = client.get("/contributions", params={"limit": 500}).json()
    assert everything["total"] == 6
    pages = [client.get("/contributions", params={"limit": 4, "offset": o}).json()["items"] for o in (0, 4)]
    assert pages[0] + pages[1] == everything["items"] and len(pages[1]) == 2
    rejected = client.get("/contributions", params={"task_id": f.task_id, "round": 1, "accepted": "false"}).json()
    assert rejected["total"] == 1
    item = rejected["items"][0]
    assert item["trainer"] == f.people.trainers[2].address.lower()
    assert item["reject_code"] == "not_safetensors" and item["reject_message"] and item["reward_wei"] == "0"
    assert item["epsilon"] is None and item["local_dp"] is None  # not a model file: its privacy is unknown
    mine = client.get("/contributions", params={"trainer": f.people.trainers[0].address}).json()
    assert [c["round"] for c in mine["items"]] == [1, 2] and all(c["claimed"] for c in mine["items"])
    # this task trains without DP: every readable update says so (no epsilon, so no DP guarantee)
    assert all(c["epsilon"] is None and c["local_dp"] is False for c in mine["items"])
    board = client.get("/leaderboard").json()["items"]
    assert [e["rank"] for e in board] == [1, 2, 3]
    rewards = [int(e["total_reward_wei"]) for e in board]
    assert rewards == sorted(rewards, reverse=True)
    assert sum(rewards) == sum(int(c["reward_wei"]) for c in everything["items"])
    hostile = next(e for e in board if e["trainer"] == f.people.trainers[2].address.lower())
    assert (hostile["contributions"], hostile["accepted"], hostile["rejected"]) == (2, 1, 1)


def test_economics_and_claimable_match_the_chain(world, client):
    f = world.f
    eco = client.get("/economics").json()
    assert int(eco["total_supply_wei"]) == f.fed.token.totalSupply()
    assert int(eco["staked_wei"]) == f.fed.staking.totalStaked()
    treasury = f.fed.staking.treasury()
    assert eco["treasury"] == treasury.lower()
    assert int(eco["treasury_balance_wei"]) == f.fed.token.balanceOf(treasury)
    node_claimable = {t.address.lower(): sum(c.reward for c in t.claimable(f.task_id)) for t in f.trainers}
    assert int(eco["rewards_claimable_wei"]) == sum(node_claimable.values()) > 0
    per_round = client.get("/economics/rounds").json()["items"]
    books = [f.fed.call("vault", "paidOf", f.task_id, r) for r in (1, 2)]
    assert [int(r["paid_wei"]) for r in per_round] == [int(b[0]) for b in books]
    assert [int(r["aggregator_paid_wei"]) for r in per_round] == [int(b[1]) for b in books]
    assert [int(r["trainer_budget_wei"]) for r in per_round] == [f.fed.round_split(f.task_id, r)[0] for r in (1, 2)]
    for r in per_round:
        assert int(r["unclaimed_wei"]) == int(r["round_budget_wei"]) - sum(
            int(r[k]) for k in ("paid_wei", "aggregator_paid_wei", "fee_wei", "swept_wei"))
    for address, expected in node_claimable.items():
        account = client.get(f"/accounts/{address}").json()
        assert int(account["claimable_wei"]) == expected
        assert int(account["balance_wei"]) == f.fed.token.balanceOf(address)
        # the indexed bonds (BondReserved / BondReleased / Slashed) are the chain's reserved stake
        assert int(account["reserved_wei"]) == f.fed.reserved_stake(address)
    assert any(int(client.get(f"/accounts/{a}").json()["reserved_wei"]) > 0 for a in node_claimable)  # unclaimed
    assert client.get(f"/accounts/{f.people.sponsor.address}").json()["reserved_wei"] == "0"  # never committed
    claims = client.get("/events", params={"name": "RewardClaimed", "contract": "tasks"}).json()
    assert claims["total"] == 3  # two in round 1, one in round 2


def test_every_list_filter_and_page(world, client):
    f, tasks = world.f, world.f.fed.tasks
    sponsor = f.people.sponsor.address
    assert client.get("/tasks", params={"sponsor": sponsor}).json()["total"] == 1
    assert client.get("/tasks", params={"sponsor": f.people.trainers[0].address}).json()["total"] == 0
    assert client.get("/tasks", params={"status": "completed", "limit": 1}).json()["items"][0]["task_id"] == f.task_id
    rounds = f"/tasks/{f.task_id}/rounds"
    assert client.get(rounds, params={"phase": "finalized"}).json()["total"] == 2
    assert client.get(rounds, params={"phase": "failed"}).json() == {"items": [], "total": 0, "limit": 50,
                                                                      "offset": 0}
    second = client.get(rounds, params={"limit": 1, "offset": 1}).json()
    assert [r["round"] for r in second["items"]] == [2] and second["total"] == 2
    # contribution status, as the chain's trainer entries say (3 = claimed)
    for status, code in (("claimed", 3), ("revealed", 2), ("slashed", 4)):
        expected = sorted((r, t.lower()) for r in (1, 2) for t in f.fed.round_trainers(f.task_id, r)
                          if tasks.getTrainerEntry(f.task_id, r, t).status == code)
        page = client.get("/contributions", params={"status": status, "limit": 500}).json()
        assert sorted((c["round"], c["trainer"]) for c in page["items"]) == expected
    assert client.get("/contributions", params={"task_id": f.task_id + 1}).json()["total"] == 0
    board = client.get("/leaderboard").json()["items"]
    page = client.get("/leaderboard", params={"limit": 1, "offset": 1, "task_id": f.task_id}).json()
    assert page["items"] == [board[1]] and page["items"][0]["rank"] == 2 and page["total"] == 3
    per_round = client.get("/economics/rounds", params={"task_id": f.task_id, "limit": 1, "offset": 1}).json()
    assert [r["round"] for r in per_round["items"]] == [2] and per_round["total"] == 2
    assert client.get("/economics/rounds", params={"task_id": f.task_id + 1}).json()["total"] == 0
    # events of a block range: exactly the logs the node returns for it
    first = client.get("/events", params={"limit": 1}).json()["items"][0]["block_number"]
    lo, hi = first + 3, first + 12
    in_range = client.get("/events", params={"from_block": lo, "to_block": hi, "limit": 500}).json()
    logs = networks.provider.web3.eth.get_logs({"fromBlock": lo, "toBlock": hi,
                                                 "address": list(world.indexer.source.deployment.addresses.values())})
    assert in_range["total"] == len(logs) > 0
    assert [(e["tx_hash"], e["log_index"]) for e in in_range["items"]] == [
        ("0x" + bytes(g["transactionHash"]).hex(), g["logIndex"]) for g in logs]
    assert client.get("/events", params={"from_block": hi, "to_block": lo}).json()["total"] == 0
    transfers = client.get("/events", params={"contract": "token", "name": "Transfer", "limit": 500}).json()
    assert transfers["total"] > 0
    assert {(e["contract"], e["name"]) for e in transfers["items"]} == {("token", "Transfer")}
    assert client.get("/proposals", params={"state": "executed"}).json()["total"] == 0  # no DAO in this world


def test_health_reports_the_indexer_lag_in_blocks(world, client):
    with Session(world.indexer.engine) as db:
        last = db.get(IndexerState, 1).last_block
    chain.mine(3)
    health = client.get("/health").json()
    head = networks.provider.web3.eth.block_number
    assert health["status"] == "ok" and health["chain_head"] == head and health["last_indexed_block"] == last
    assert health["lag_blocks"] == head - last >= 3


def test_cors_allows_the_dashboard_by_default(world):
    app = create_app(BackendConfig(database_url=world.url, run_indexer=False, rpc_url=networks.provider.uri))
    with TestClient(app) as test_client:
        for origin in ("http://localhost:8080", "http://127.0.0.1:8080"):  # frontend/'s default address
            response = test_client.get("/tasks", headers={"Origin": origin})
            assert response.headers["access-control-allow-origin"] == origin
            preflight = test_client.options("/contributions", headers={
                "Origin": origin, "Access-Control-Request-Method": "GET"})
            assert preflight.status_code in (200, 204)
            assert "GET" in preflight.headers["access-control-allow-methods"]
        other = test_client.get("/tasks", headers={"Origin": "http://evil.test"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


def test_bad_input_is_400_with_a_message(client):
    for path, params in (("/contributions", {"limit": 0}), ("/contributions", {"trainer": "0x12"}),
                         ("/tasks", {"status": "sleeping"}), ("/accounts/not-an-address", {}),
                         ("/tasks/-3", {}), ("/events", {"from_block": 2**60})):
        response = client.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        body = response.json()
        assert body["detail"] and body["extra"][0]["message"]
    assert client.get("/proposals/123").status_code == 404


def test_health_reports_an_unreachable_chain(world):
    app = create_app(BackendConfig(database_url=world.url, run_indexer=False, rpc_url=f"http://127.0.0.1:{free_port()}"))
    with TestClient(app) as test_client:
        response = test_client.get("/health")
    assert response.status_code == 503
    assert response.json()["chain"] is False and response.json()["database"] is True


def test_health_reports_an_unreachable_database():
    server = postgres_server()
    url, running = server.__enter__(), True
    try:
        app = create_app(BackendConfig(database_url=url, run_indexer=False, rpc_url=networks.provider.uri))
        with TestClient(app) as test_client:
            up = test_client.get("/health")
            assert up.status_code == 200 and up.json()["database"] is True
            server.__exit__(None, None, None)  # the database goes away while the API keeps running
            running = False
            down = test_client.get("/health")
            assert down.status_code == 503
            assert down.json()["database"] is False and down.json()["chain"] is True
            assert down.json()["last_indexed_block"] is None
    finally:
        if running:
            server.__exit__(None, None, None)


@pytest.fixture
def api_schema(world):
    app = create_app(BackendConfig(database_url=world.url, run_indexer=False, rpc_url=networks.provider.uri,
                                   rate_limit_per_minute=0))
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


openapi = schemathesis.pytest.from_fixture("api_schema")


@openapi.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzz_finds_no_server_errors(case):
    """Every operation, generated from the spec: no 5xx, responses conform to the documented schemas."""
    case.call_and_validate()


def test_serve_process_health_metrics_cors_and_rate_limit(world, tmp_path):
    port = free_port()
    env = dict(os.environ, FEDCHAIN_HOME=str(world.home), APE_FOUNDRY_HOST=networks.provider.uri)
    proc = subprocess.Popen(
        [str(BIN / "fedchain"), "backend", "serve", "--port", str(port), "--rpc-url", networks.provider.uri,
         "--database-url", f"sqlite:///{tmp_path / 'served.sqlite3'}", "--rate-limit", "40",
         "--cors-origin", "http://dashboard.test"], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        head = networks.provider.web3.eth.block_number
        health = wait_for(lambda: (h := httpx.get(f"{base}/health").json())["last_indexed_block"] == head and h,
                          timeout=120)
        assert health["status"] == "ok" and health["lag_blocks"] == 0 and health["chain_head"] == head
        assert health["database"] and health["chain"] and "TaskManager" in health["deployment"]
        assert httpx.get(f"{base}/tasks").json()["total"] == 1
        metrics = httpx.get(f"{base}/metrics").text
        assert f"fedchain_indexer_last_block {float(head)}" in metrics
        assert f"fedchain_indexer_head_block {float(head)}" in metrics and "fedchain_indexer_lag_blocks 0.0" in metrics
        events = httpx.get(f"{base}/events", params={"limit": 1}).json()["total"]
        assert f"fedchain_indexer_events_total {float(events)}" in metrics
        assert "requests_total{" in metrics and 'app_name="fedchain_backend"' in metrics
        allowed = httpx.get(f"{base}/tasks", headers={"Origin": "http://dashboard.test"})
        assert allowed.headers["access-control-allow-origin"] == "http://dashboard.test"
        other = httpx.get(f"{base}/tasks", headers={"Origin": "http://elsewhere.test"})
        assert "access-control-allow-origin" not in other.headers
        statuses = [httpx.get(f"{base}/contributions").status_code for _ in range(45)]
        assert 429 in statuses and statuses[0] == 200
        assert httpx.get(f"{base}/health").status_code == 200  # health is not rate limited
        assert httpx.get(f"{base}/schema/openapi.json").status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "fedchain backend on" in output

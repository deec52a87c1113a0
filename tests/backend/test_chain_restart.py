"""A real chain reset: our own anvil process (not the test's), a demo deployment on it, `fedchain backend serve`
indexing it; then anvil is killed and a fresh one started on the same port with a different demo (the contract
addresses come out the same: same deployer, same nonces), and the running backend detects the new chain, wipes
and re-indexes, so its API equals the new chain with no row of the old one left. About 2-3 minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from fedchain.deployment import Deployment
from fedchain.web3chain import Web3Chain, load_abis
from tests.support.net import free_port, wait_for

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "node_modules" / ".bin" / "anvil"
MNEMONIC = "test test test test test test test test test test test junk"  # ape-config.yaml's test accounts


def start_anvil(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(ANVIL), "--port", str(port), "--mnemonic", MNEMONIC, "--accounts", "20",
                             "--hardfork", "prague", "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 2}))
    wait_for(lambda: proc.poll() is None and w3.eth.block_number >= 0, timeout=30)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_demo(env: dict[str, str], trainers: int) -> None:
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--json", "--rounds", "1", "--trainers", str(trainers)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]


def indexed(base: str, contributions: int) -> dict | bool:
    """The API once the indexer has reached the chain head and holds `contributions` contributions."""
    health = httpx.get(f"{base}/health", timeout=5).json()
    total = httpx.get(f"{base}/contributions", timeout=5).json()["total"]
    return health if health["lag_blocks"] == 0 and total == contributions else False


def api_items(base: str, path: str) -> list[dict]:
    items, offset = [], 0
    while True:
        page = httpx.get(f"{base}{path}", params={"limit": 500, "offset": offset}, timeout=10).json()
        items += page["items"]
        offset += len(page["items"])
        if offset >= page["total"] or not page["items"]:
            return items


def assert_api_equals_chain(base: str, rpc: str, trainers: int) -> None:
    source = Web3Chain(rpc, Deployment.load("ethereum:local"), load_abis())
    logs = source.logs(source.deployment.block, source.head())
    events = api_items(base, "/events")
    assert sorted((e["tx_hash"], e["log_index"]) for e in events) == sorted((g.tx_hash, g.log_index) for g in logs)
    tasks = api_items(base, "/tasks")
    assert [t["task_id"] for t in tasks] == [1]
    chain_task = source.call("tasks", "getTask", 1)
    assert tasks[0]["global_model_cid"] == chain_task["globalModelCid"] and tasks[0]["status"] == "completed"
    contributions = api_items(base, "/contributions")
    chain_trainers = sorted(t.lower() for t in source.round_trainers(1, 1))
    assert sorted(c["trainer"] for c in contributions) == chain_trainers and len(chain_trainers) == trainers
    for c in contributions:
        account = httpx.get(f"{base}/accounts/{c['trainer']}", timeout=5).json()
        assert int(account["balance_wei"]) == source.call("token", "balanceOf", Web3.to_checksum_address(c["trainer"]))
    rnd = httpx.get(f"{base}/tasks/1/rounds/1", timeout=5).json()
    assert rnd["phase"] == "finalized" and rnd["details_status"] == "ok"
    assert rnd["result_cid"] == source.call("tasks", "getRound", 1, 1)["resultCid"]


@pytest.mark.e2e
def test_real_anvil_restart_is_detected_and_reindexed(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))  # where the demos record their deployment
    anvil_port, api_port = free_port(), free_port()
    rpc, base = f"http://127.0.0.1:{anvil_port}", f"http://127.0.0.1:{api_port}"
    env = dict(os.environ, FEDCHAIN_HOME=str(tmp_path / "home"), APE_FOUNDRY_HOST=rpc, FEDCHAIN_POLL_SECONDS="0.2")
    env.pop("FEDCHAIN_STORE", None)
    anvil = start_anvil(anvil_port)
    server, log_path = None, tmp_path / "serve.log"
    log_file = log_path.open("wb")  # a file, not a pipe: nobody reads a pipe while the server runs
    try:
        run_demo(env, trainers=3)
        server = subprocess.Popen(
            [str(BIN / "fedchain"), "backend", "serve", "--port", str(api_port), "--rpc-url", rpc,
             "--database-url", f"sqlite:///{tmp_path / 'backend.sqlite3'}", "--rate-limit", "0"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for(lambda: indexed(base, contributions=3), timeout=180, interval=0.5)
        assert_api_equals_chain(base, rpc, trainers=3)
        old_genesis = Web3(Web3.HTTPProvider(rpc)).eth.get_block(0)["hash"]

        stop(anvil)  # the chain is gone: /health says so, the API keeps serving what it has
        down = wait_for(lambda: (r := httpx.get(f"{base}/health", timeout=10)).status_code == 503 and r.json())
        assert down["chain"] is False and down["database"] is True
        assert httpx.get(f"{base}/contributions", timeout=5).json()["total"] == 3

        anvil = start_anvil(anvil_port)  # a fresh chain on the same port, then a smaller demo on it
        assert Web3(Web3.HTTPProvider(rpc)).eth.get_block(0)["hash"] != old_genesis
        run_demo(env, trainers=2)
        health = wait_for(lambda: indexed(base, contributions=2), timeout=180, interval=0.5)
        assert health["status"] == "ok" and health["indexer_error"] is None
        assert_api_equals_chain(base, rpc, trainers=2)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        resets = [line for line in metrics.splitlines() if line.startswith("fedchain_indexer_resets_total")]
        assert resets and float(resets[0].split()[-1]) >= 1
    finally:
        if server is not None:
            stop(server)
        log_file.close()
        stop(anvil)
    output = log_path.read_text(errors="replace")
    assert "chain reset detected (chain id or genesis block changed)" in output, output[-3000:]

"""Backend load benchmark: requests per second and p99 latency of the main list endpoints.

The database holds 10,000 contributions (20 tasks x 50 rounds x 10 trainers out of 200 addresses). These are
SYNTHETIC rows inserted straight into a fresh SQLite read model (same schema and migrations as the indexer's);
indexing 10,000 real contributions from anvil would take hours of training. The server is `fedchain backend
serve --no-indexer --rate-limit 0` in its own process; this script is the second process and sends a bounded
load (fixed request count, fixed concurrency, a time cap) on loopback only.

Baseline measured in the same run: `GET /tasks/{id}` (one primary-key row). Each list endpoint is reported
as an absolute rps / p99 and as its rps ratio to the baseline.

    python bench/backend_load.py [--requests 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.db import make_engine, migrate, session_factory  # noqa: E402
from backend.models import Account, Contribution, Round, Task  # noqa: E402

TASKS, ROUNDS, PER_ROUND, TRAINERS = 20, 50, 10, 200
ONE = 10**18


def populate(url: str, seed: int = 1) -> list[str]:
    """Insert the synthetic read model; returns the trainer addresses."""
    rng = random.Random(seed)
    trainers = [f"0x{rng.getrandbits(160):040x}" for _ in range(TRAINERS)]
    engine = make_engine(url)
    migrate(engine)
    with session_factory(engine).begin() as db:
        for t in range(1, TASKS + 1):
            db.add(Task(task_id=t, sponsor=trainers[t], status="completed", architecture="mlp:64-32-10",
                        strategy="fedavg", initial_model_cid=f"bafy{t}", global_model_cid=f"bafy{t}r{ROUNDS}",
                        validation_cid=f"bafyval{t}", reward_budget_wei=str(1000 * ONE), remaining_budget_wei="0",
                        reclaimed_wei="0", num_rounds=ROUNDS, current_round=ROUNDS, min_trainers=5,
                        max_trainers=PER_ROUND, dp_epsilon=None, created_block=t, created_at=1_700_000_000 + t))
            for r in range(1, ROUNDS + 1):
                budget = 1000 * ONE // ROUNDS
                db.add(Round(task_id=t, round=r, phase="finalized", commit_deadline=1, reveal_deadline=2,
                             aggregator_commit_deadline=3, aggregator_reveal_deadline=4, started_block=r,
                             started_at=r, ended_block=r + 1, committed=PER_ROUND, revealed=PER_ROUND,
                             aggregators_committed=1, aggregators_revealed=1, parent_model_cid="bafyp",
                             result_cid=f"bafy{t}r{r}", result_digest="0x" + "11" * 32, scores_root="0x" + "22" * 32,
                             total_weight="1", accepted=PER_ROUND - 1, rejected=1, accuracy=0.9, loss=0.3,
                             central_epsilon=None, round_budget_wei=str(budget), paid_wei=str(budget // 2),
                             failure_reason=None, details_status="ok"))
                for i, trainer in enumerate(rng.sample(trainers, PER_ROUND)):
                    reward = budget // PER_ROUND if i else 0
                    db.add(Contribution(task_id=t, round=r, trainer=trainer, status="claimed" if i % 2 else "revealed",
                                        committed_block=r, update_cid=f"bafyu{t}{r}{i}", update_digest="0x" + "33" * 32,
                                        samples=100 + i, score=0 if i == 0 else 900_000 + i, accepted=i != 0,
                                        reject_code="non_finite" if i == 0 else None, reject_message=None,
                                        reward_wei=str(reward), reward_tokens=reward / ONE, claimed=bool(i % 2),
                                        slashed_wei="0", epsilon=None))
        for trainer in trainers:
            db.add(Account(address=trainer, balance_wei=str(100 * ONE), staked_wei=str(10 * ONE), unbonding_wei="0",
                           slashed_wei="0"))
    engine.dispose()
    return trainers


async def load(base: str, path: str, requests: int, concurrency: int, cap_seconds: float) -> dict:
    """`requests` GETs with `concurrency` in flight (stops early after `cap_seconds`)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))
    deadline = time.perf_counter() + cap_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await client.get(path)  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"path": path, "n": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cap-seconds", type=float, default=30.0, help="time cap per endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        trainers = populate(url)
        port = free_port()
        env = dict(os.environ, FEDCHAIN_HOME=tmp)
        server = subprocess.Popen([sys.executable, "-m", "fedchain.cli", "backend", "serve", "--no-indexer",
                                   "--rate-limit", "0", "--port", str(port), "--database-url", url,
                                   "--rpc-url", f"http://127.0.0.1:{free_port()}"], cwd=REPO, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/tasks/1", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            total = httpx.get(f"{base}/contributions", params={"limit": 1}).json()["total"]
            print(f"server up; {total} contributions indexed (synthetic); {args.requests} requests per endpoint, "
                  f"concurrency {args.concurrency}", file=sys.stderr)
            paths = ["/tasks/7", "/tasks?limit=50", "/tasks/7/rounds?limit=50", "/contributions?limit=50",
                     "/contributions?limit=50&offset=5000", f"/contributions?trainer={trainers[3]}",
                     "/contributions?task_id=7&round=25", "/leaderboard?limit=50", "/economics/rounds?limit=50"]
            results = [asyncio.run(load(base, p, args.requests, args.concurrency, args.cap_seconds)) for p in paths]
        finally:
            server.terminate()
            server.wait(30)
    baseline = results[0]["rps"]
    lines = [f"Backend load: {total} synthetic contributions, SQLite, 1 uvicorn worker, {args.concurrency} concurrent "
             f"requests from a second process on loopback; baseline GET /tasks/{{id}} = {baseline:.0f} rps.", "",
             "| endpoint | requests | errors | rps | x baseline | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{r['path']}` | {r['n']} | {r['errors']} | {r['rps']:.0f} | {r['rps'] / baseline:.2f} "
                     f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    report = "\n".join(lines)
    print(report)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "backend_load.md").write_text(report + "\n")


if __name__ == "__main__":
    main()

"""`fedchain demo --backend`: run `fedchain backend serve` next to the demo as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx


def start_backend(port: int, rpc_url: str) -> subprocess.Popen:
    """Start the backend (indexer + API) on 127.0.0.1:`port`; it waits for the demo's deployment by itself."""
    args = [sys.executable, "-m", "fedchain.cli", "backend", "serve", "--port", str(port), "--rpc-url", rpc_url]
    return subprocess.Popen(args, env=dict(os.environ), stdin=subprocess.DEVNULL)


def wait_until_indexed(port: int, timeout: float = 120.0) -> dict[str, Any]:
    """Poll /health until the indexer has reached the chain head; returns what the API then reports."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{base}/health", timeout=5).json()
            if health.get("lag_blocks") == 0 and health.get("last_indexed_block") is not None:
                break
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    else:
        raise TimeoutError(f"the backend did not catch up with the chain within {timeout:.0f}s (last: {health})")
    tasks = httpx.get(f"{base}/tasks", params={"limit": 1}, timeout=5).json()["total"]
    contributions = httpx.get(f"{base}/contributions", params={"limit": 1}, timeout=5).json()["total"]
    proposals = httpx.get(f"{base}/proposals", timeout=5).json()["items"]
    return {"url": base, "openapi": f"{base}/schema", "last_indexed_block": health["last_indexed_block"],
            "tasks": tasks, "contributions": contributions,
            "proposals": [{k: p[k] for k in ("proposal_id", "state", "for_votes_wei")} for p in proposals]}


def stop_backend(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

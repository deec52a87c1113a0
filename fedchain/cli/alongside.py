"""``fedchain demo --backend/--dashboard``: run ``fedchain backend serve`` and ``fedchain dashboard`` next to the
demo, each as its own process (they wait for the demo's deployment record by themselves)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx

from frontend.layout import PAGES

DEPLOYMENT_WAIT_SECONDS = 600


def start_backend(port: int, rpc_url: str) -> subprocess.Popen:
    """Start the backend (indexer + API) on 127.0.0.1:``port``."""
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


def start_dashboard(port: int, rpc_url: str, backend_url: str) -> subprocess.Popen:
    """Start the dashboard on 127.0.0.1:``port``; its output goes to stderr (``--json`` keeps stdout)."""
    args = [sys.executable, "-m", "fedchain.cli", "dashboard", "--port", str(port), "--rpc-url", rpc_url,
            "--backend-url", backend_url, "--wait-for-deployment", str(DEPLOYMENT_WAIT_SECONDS)]
    return subprocess.Popen(args, env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=sys.stderr)


def wait_until_serving(proc: subprocess.Popen, port: int, timeout: float = 120.0) -> dict[str, Any]:
    """Poll until every page answers 200; returns the URL and each page's status."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited with code {proc.returncode} (see its message above)")
        try:
            statuses = {path: httpx.get(base + path, timeout=10).status_code for path, _ in PAGES}
            if all(code == 200 for code in statuses.values()):
                return {"url": base, "pages": statuses}
            last = str(statuses)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise TimeoutError(f"the dashboard did not serve its pages within {timeout:.0f}s (last: {last})")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process started here; kill it if it has not exited within 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

"""`fedchain demo --dashboard`: run `fedchain dashboard` next to the demo (and its backend) as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx

from backend.alongside import stop_backend
from frontend.layout import PAGES

DEPLOYMENT_WAIT_SECONDS = 600


def start_dashboard(port: int, rpc_url: str, backend_url: str) -> subprocess.Popen:
    """Start the dashboard on 127.0.0.1:`port`; it waits for the demo's deployment record by itself."""
    args = [sys.executable, "-m", "fedchain.cli", "dashboard", "--port", str(port), "--rpc-url", rpc_url,
            "--backend-url", backend_url, "--wait-for-deployment", str(DEPLOYMENT_WAIT_SECONDS)]
    # its output goes to stderr so that `fedchain demo --json` keeps stdout for the summary
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


def stop_dashboard(proc: subprocess.Popen) -> None:
    stop_backend(proc)  # the same terminate-then-kill as the backend's

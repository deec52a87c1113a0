"""`fedchain demo --dashboard PORT --json` as a user runs it: the backend and the dashboard run beside the demo as
their own processes, the dashboard serves every page once the demo's rounds are indexed, and both are stopped."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from frontend.layout import PAGES
from tests.support.cli import BIN, REPO, cli_env
from tests.support.net import free_port


def test_demo_with_dashboard_serves_every_page_then_stops(tmp_path):
    backend_port, dashboard_port = free_port(), free_port()
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--rounds", "1", "--trainers", "2", "--json",
                           "--backend", str(backend_port), "--dashboard", str(dashboard_port)],
                          cwd=REPO, env=cli_env(tmp_path / "home"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # stdout holds only the summary: the dashboard's output went to stderr
    assert summary["backend"]["contributions"] == 2
    board = summary["dashboard"]
    assert board["url"] == f"http://127.0.0.1:{dashboard_port}"
    assert board["pages"] == {path: 200 for path, _ in PAGES}
    with pytest.raises(httpx.ConnectError):  # with --json the demo does not keep serving
        httpx.get(board["url"], timeout=5)

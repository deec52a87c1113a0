"""`fedchain demo --governance --backend PORT` as a user runs it: the backend runs beside the demo as its own
process, indexes the demo's task, contributions and the DAO proposal (OZ Governor events) from the chain."""

from __future__ import annotations

import json
import subprocess

from tests.support.cli import BIN, REPO, cli_env
from tests.support.net import free_port


def test_demo_with_backend_indexes_rounds_and_the_dao_proposal(tmp_path):
    port = free_port()
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--rounds", "1", "--trainers", "2", "--governance",
                           "--json", "--backend", str(port)], cwd=REPO, env=cli_env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    backend = summary["backend"]
    assert backend["url"] == f"http://127.0.0.1:{port}"
    assert backend["tasks"] >= 1 and backend["contributions"] == 2  # 1 round x 2 trainers
    proposals = {p["proposal_id"]: p for p in backend["proposals"]}
    governance = summary["governance"]
    indexed = proposals[str(governance["proposal_id"])]
    assert indexed["state"] == governance["state"].lower() == "executed"
    assert int(indexed["for_votes_wei"]) > 0

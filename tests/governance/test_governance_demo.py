"""`fedchain demo --governance --json`: the DAO owns the demo's protocol and one parameter changes by proposal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ape import networks

from tests.support.chain import sync_chain_clock

REPO = Path(__file__).resolve().parents[2]


def test_demo_with_governance(fedchain_home):
    # earlier modules' snapshot reverts can leave anvil's clock behind the wall clock that the demo's trainers
    # compare deadlines with: bring the chain's clock up to now first
    sync_chain_clock()
    env = dict(os.environ, FEDCHAIN_HOME=str(fedchain_home), APE_FOUNDRY_HOST=networks.provider.uri)
    fedchain = str(Path(sys.executable).parent / "fedchain")
    proc = subprocess.run([fedchain, "demo", "--governance", "--rounds", "1", "--trainers", "3", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rounds"][0]["status"] == "finalized"
    g = summary["governance"]
    assert g["deployer_roles"] == []
    assert (g["parameter"], g["before"], g["after"], g["state"]) == ("minTrainerStake", 1, 200, "Executed")
    assert "InsufficientStake(available=" in g["next_task_commit"]
    assert g["next_task_commit"].endswith("required=200 FED)")
    assert summary["rounds"][0]["accepted"] >= 1  # the 2-of-3 drawn committee finalized the round
    assert "Governance: one parameter change by proposal" in proc.stderr and "the deployer holds no role" in proc.stderr

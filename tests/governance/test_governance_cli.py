"""`ape run deploy --governance` and `ape run governance ...` as separate processes against the test's anvil:
delegate, propose by parameter name, vote, status, queue, execute (too early, then on time), list, params."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ape import accounts, chain, networks

from fedchain.ape.chain import Fedchain
from fedchain.ape.deploy import privileged_holders
from fedchain.protocol import ONE_TOKEN

REPO = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).parent / "ape")
NETWORK = ["--network", "ethereum:local:foundry"]


def run(args: list[str], home: Path, ok: bool = True) -> str:
    env = dict(os.environ, FEDCHAIN_HOME=str(home), APE_FOUNDRY_HOST=networks.provider.uri)
    proc = subprocess.run([APE, "run", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, f"{args} exited {proc.returncode}:\n{output}"
    return output


def travel(seconds: int) -> None:
    chain.mine(timestamp=int(chain.blocks.head.timestamp) + seconds)


def test_governance_through_the_ape_scripts(fedchain_home):
    pool = accounts.test_accounts
    deployer, alice, bob, guardian = pool[0], pool[1], pool[2], pool[3]
    out = run(["deploy", *NETWORK, "--account", "TEST::0", "--governance", "--guardian", guardian.address,
               "--mint", f"{alice.address}=1000", "--mint", f"{bob.address}=50", "--voting-period", "120"],
              fedchain_home)
    assert "FedGovernor" in out and "holds none" in out
    fed = Fedchain.connect()
    assert fed.deployment.governed
    assert privileged_holders(fed, deployer.address) == []

    out = run(["governance", "delegate", *NETWORK, "--account", "TEST::1"], fedchain_home)
    assert "voting power now 1,000.00 FED" in out
    travel(1)
    out = run(["governance", "propose", *NETWORK, "--account", "TEST::2", "--set", "minTrainerStake=200"],
              fedchain_home, ok=False)
    assert "not enough votes to propose" in out
    out = run(["governance", "propose", *NETWORK, "--account", "TEST::1", "-d", "Raise the trainer stake floor",
               "--set", "minTrainerStake=200", "--set", "trainerSlashBps=600"], fedchain_home)
    assert "proposal 1 created" in out and "minTrainerStake 1 FED -> 200 FED" in out  # the local floor: 1 FED
    travel(2)
    out = run(["governance", "execute", "1", *NETWORK, "--account", "TEST::1"], fedchain_home, ok=False)
    assert "it is Active, execute needs Queued" in out
    out = run(["governance", "vote", "1", "for", "--reason", "sybil resistance", *NETWORK, "--account", "TEST::1"],
              fedchain_home)
    assert "voted for on proposal 1 with 1,000.00 FED" in out

    travel(121)
    out = run(["governance", "status", "1", *NETWORK], fedchain_home)
    assert "Succeeded" in out and "for 1,000.00" in out and "quorum" in out and "UTC" in out
    out = run(["governance", "queue", "1", *NETWORK, "--account", "TEST::2"], fedchain_home)
    assert "queued; executable from" in out
    out = run(["governance", "execute", "1", *NETWORK, "--account", "TEST::2"], fedchain_home, ok=False)
    assert "too early" in out
    travel(61)
    out = run(["governance", "execute", "1", *NETWORK, "--account", "TEST::2"], fedchain_home)
    assert "executed" in out
    assert fed.policy.minTrainerStake() == 200 * ONE_TOKEN
    assert fed.tasks.trainerSlashBps() == 600
    out = run(["governance", "list", *NETWORK], fedchain_home)
    assert "Executed" in out and "Raise the trainer stake floor" in out
    out = run(["governance", "params", *NETWORK], fedchain_home)
    assert [line.split()[1] for line in out.splitlines() if line.startswith("minTrainerStake")] == ["200"]


def test_old_deployment_records_still_load(fedchain_home):
    """A deployments.json record written before governance (no governor/timelock/policy keys) loads ungoverned."""
    import json

    from fedchain.ape import governance as gov
    from fedchain.ape.deploy import deploy_protocol
    from fedchain.config import settings

    fed = deploy_protocol(accounts.test_accounts[0], save=True)
    path = settings().deployments_file
    records = json.loads(path.read_text())
    for record in records.values():
        for key in ("governor", "timelock", "policy", "rejection_slasher"):
            record.pop(key, None)
    path.write_text(json.dumps(records))
    loaded = Fedchain.connect()
    assert loaded.deployment.tasks == fed.deployment.tasks
    assert not loaded.deployment.governed and loaded.governor is None and loaded.policy is None
    with pytest.raises(gov.GovernanceError, match="ape run deploy --governance"):
        gov.list_proposals(loaded)

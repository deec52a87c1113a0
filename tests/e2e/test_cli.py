"""The command-line path: `ape run deploy`, `fedchain client ...` and `fedchain aggregator run` as separate
processes against the test's anvil, following a 2-round task to completion."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ape import accounts, networks

from fedchain.ape.chain import Fedchain
from fedchain.architectures import initial_tensors
from fedchain.codec import ModelManifest, encode_dataset, encode_model, sha256
from fedchain.data import load_dataset, split_holdout
from fedchain.protocol import ONE_TOKEN, Phase, TaskStatus
from fedchain.store import open_store

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NETWORK = "ethereum:local:foundry"


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FEDCHAIN_HOME=str(home), APE_FOUNDRY_HOST=networks.provider.uri, FEDCHAIN_POLL_SECONDS="0.2")
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def create_task(fed: Fedchain, sponsor, trainers: int, rounds: int) -> int:
    store = open_store(None)
    arch = "mlp:64-32-10"
    x, y = load_dataset("digits")
    _, validation, _ = split_holdout(x, y, 0.15, 0.2, 0)
    model = encode_model(initial_tensors(arch, 0), ModelManifest(kind="initial", architecture=arch))
    val = encode_dataset(*validation, name="digits-validation")
    budget = 100 * ONE_TOKEN
    fed.token.approve(fed.tasks.address, budget, sender=sponsor)
    params = (arch, store.put(model), sha256(model), store.put(val), sha256(val), budget, rounds, trainers, trainers,
              1, 1, 120, 120, 120, 120, 10 * ONE_TOKEN, 10 * ONE_TOKEN, "fedavg", b"", 0, 0, 0)
    receipt = fed.tasks.createTask(params, sender=sponsor)
    return int(next(iter(receipt.events.filter(fed.tasks.TaskCreated))).taskId)


def test_deploy_stake_train_aggregate_claim_through_the_cli(fedchain_home):
    env = cli_env(fedchain_home)
    pool = accounts.test_accounts
    deployer, sponsor, agg, t1, t2 = pool[0], pool[2], pool[3], pool[4], pool[5]
    out = run([str(BIN / "ape"), "run", "deploy", "--network", NETWORK, "--account", "TEST::0",
               "--aggregator", agg.address], env)
    assert "TaskManager" in out
    fed = Fedchain.connect()  # reads the deployment the script recorded in FEDCHAIN_HOME
    for who in (sponsor, agg, t1, t2):
        fed.token.mint(who, 1000 * ONE_TOKEN, sender=deployer)
    for index in (3, 4, 5):
        out = run([str(BIN / "fedchain"), "client", "stake", "50", "--account", f"TEST::{index}",
                   "--network", NETWORK], env)
        assert "staked 50 FED" in out
    task_id = create_task(fed, sponsor, trainers=2, rounds=2)
    fedchain = str(BIN / "fedchain")
    procs = [subprocess.Popen([fedchain, "aggregator", "run", "--task", str(task_id), "--account", "TEST::3",
                               "--network", NETWORK, "--timeout", "300"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    for shard, index in ((1, 4), (2, 5)):
        procs.append(subprocess.Popen(
            [fedchain, "client", "run", "--task", str(task_id), "--data", "digits", "--shard", f"{shard}/2",
             "--epochs", "2", "--account", f"TEST::{index}", "--network", NETWORK],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for proc in procs:
        output, _ = proc.communicate(timeout=360)
        outputs.append(output)
        assert proc.returncode == 0, output
    task = fed.task(task_id)
    assert TaskStatus(task.status) == TaskStatus.COMPLETED
    for round_ in (1, 2):
        assert Phase(fed.round(task_id, round_).phase) == Phase.FINALIZED
    for trainer, output in zip((t1, t2), outputs[1:], strict=True):
        assert fed.token.balanceOf(trainer.address) > 950 * ONE_TOKEN, output  # 1000 - 50 staked + rewards
        assert "revealed" in output and "completed" in output
    status = run([fedchain, "client", "status", "--task", str(task_id), "--account", "TEST::4",
                  "--network", NETWORK], env)
    assert "round 1: claimed" in status and "round 2: claimed" in status
    # every round was claimed, so no bond is left reserved: the whole stake is free to leave
    assert fed.reserved_stake(t1.address) == 0
    out = run([fedchain, "client", "unstake", "50", "--account", "TEST::4", "--network", NETWORK], env)
    _, release = fed.staking.unbondingOf(t1.address)
    assert f"unbonding 50 FED, withdrawable after {time.ctime(int(release))}" in out

"""The command-line path: `ape run deploy`, `fedchain client ...` and `fedchain aggregator run` as separate
processes against the test's anvil, following a 2-round task to completion."""

from __future__ import annotations

import subprocess
import time

from ape import accounts

from fedchain.ape.chain import Fedchain
from fedchain.protocol import ONE_TOKEN, Phase, TaskStatus
from tests.support.cli import BIN, NETWORK, REPO, cli_env, create_task, run


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

"""The trainer's failures as a new user meets them (issue 15), through the CLI as separate processes:

* without enough free stake, `client run` says so in one line, in tokens, before training or uploading anything;
* data that does not fit the task is one line, not a traceback;
* a trainer whose `client train` stopped after committing reveals with `client reveal`, and a restarted
  `client run` reveals what the journal holds before anything else; nobody is slashed for a stop.
"""

from __future__ import annotations

import subprocess
import time

from ape import accounts, chain

from fedchain.ape.chain import Fedchain
from fedchain.protocol import ONE_TOKEN, Phase, TaskStatus, TrainerStatus
from tests.support.cli import BIN, NETWORK, REPO, cli_env, create_task, error_lines, fails, run

FEDCHAIN = str(BIN / "fedchain")


def _objects(home) -> int:
    objects = home / "store" / "objects"
    return sum(1 for _ in objects.iterdir()) if objects.is_dir() else 0


def _deploy(env, agg) -> Fedchain:
    run([str(BIN / "ape"), "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--aggregator",
         agg.address], env)
    return Fedchain.connect()


def _wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def test_user_errors_are_one_line_and_nothing_is_trained_without_stake(fedchain_home):
    env = cli_env(fedchain_home)
    pool = accounts.test_accounts
    deployer, sponsor, agg, poor = pool[0], pool[2], pool[3], pool[4]
    fed = _deploy(env, agg)
    for who in (sponsor, poor):
        fed.token.mint(who, 1000 * ONE_TOKEN, sender=deployer)
    task_id = create_task(fed, sponsor, trainers=2, rounds=1)
    out = run([FEDCHAIN, "client", "stake", "5", "--account", "TEST::4", "--network", NETWORK], env)
    assert "staked 5 FED" in out
    before = _objects(fedchain_home)

    out = fails([FEDCHAIN, "client", "run", "--task", str(task_id), "--data", "digits", "--shard", "1/2",
                 "--account", "TEST::4", "--network", NETWORK], env, timeout=120)
    [line] = error_lines(out)
    assert "bond of 10 FED" in line and "free stake is 5 FED" in line and "stake 5 FED more" in line, out
    assert "wei" not in out and "training on" not in out
    assert _objects(fedchain_home) == before  # nothing trained, nothing uploaded
    assert not (fedchain_home / "journal").exists() or not any((fedchain_home / "journal").rglob("*.json"))
    assert fed.trainer_entry(task_id, 1, poor.address).status == TrainerStatus.NONE

    # enough stake, but data of the wrong shape: one line naming the mismatch
    run([FEDCHAIN, "client", "stake", "20", "--account", "TEST::4", "--network", NETWORK], env)
    out = fails([FEDCHAIN, "client", "train", "--task", str(task_id), "--data", "wine", "--account", "TEST::4",
                 "--network", NETWORK], env, timeout=120)
    [line] = error_lines(out)
    assert "13 features" in line and "mlp:64-32-10 takes 64" in line, out
    assert _objects(fedchain_home) == before

    for args, words in (
        (["client", "status", "--task", "99", "--account", "TEST::4"], "there is no task 99"),
        (["client", "train", "--task", "99", "--account", "TEST::4"], "there is no task 99"),
        (["client", "unstake", "1000", "--account", "TEST::4"], "FED"),
        (["client", "stake", "lots", "--account", "TEST::4"], "AMOUNT"),
        (["client", "stake", "--account", "TEST::4", "--", "-1"], "AMOUNT"),
    ):
        out = fails([FEDCHAIN, *args, "--network", NETWORK], env, timeout=120)
        assert words in out and "wei" not in out, out


def test_a_stopped_trainer_reveals_from_its_journal(fedchain_home):
    env = cli_env(fedchain_home)
    pool = accounts.test_accounts
    deployer, sponsor, agg, t1, t2 = pool[0], pool[2], pool[3], pool[4], pool[5]
    fed = _deploy(env, agg)
    for who in (sponsor, agg, t1, t2):
        fed.token.mint(who, 1000 * ONE_TOKEN, sender=deployer)
    for index in (3, 4, 5):
        run([FEDCHAIN, "client", "stake", "50", "--account", f"TEST::{index}", "--network", NETWORK], env)
    # room for a third trainer: the commit phase stays open until its deadline, so a trainer that has committed
    # waits there (a full round would move on at once, and a fast trainer reveal before the test can stop it)
    task_id = create_task(fed, sponsor, trainers=2, rounds=1, max_trainers=3)

    # both trainers start `client train` and are stopped (SIGKILL) once their commitment has landed
    for shard, (index, who) in enumerate(((4, t1), (5, t2)), start=1):
        proc = subprocess.Popen([FEDCHAIN, "client", "train", "--task", str(task_id), "--data", "digits", "--shard",
                                 f"{shard}/2", "--account", f"TEST::{index}", "--network", NETWORK], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_until(lambda who=who: fed.trainer_entry(task_id, 1, who.address).status == TrainerStatus.COMMITTED,
                        240, "the commitment")
        except AssertionError as exc:
            proc.kill()
            raise AssertionError(f"{exc}; the trainer said:\n{proc.communicate()[0][-3000:]}") from None
        finally:
            proc.kill()
            proc.wait()
    assert all(fed.trainer_entry(task_id, 1, w.address).status == TrainerStatus.COMMITTED for w in (t1, t2))

    # past the commit deadline, t1 reveals with `client reveal` (it advances the round into its reveal phase)
    chain.mine(timestamp=fed.phase_view(task_id).deadline + 1)
    out = run([FEDCHAIN, "client", "reveal", "--task", str(task_id), "--timeout", "120", "--account", "TEST::4",
               "--network", NETWORK], env)
    assert "round 1: revealed" in out, out
    assert fed.trainer_entry(task_id, 1, t1.address).status == TrainerStatus.REVEALED
    out = run([FEDCHAIN, "client", "reveal", "--task", str(task_id), "--account", "TEST::4", "--network", NETWORK],
              env)
    assert "nothing to reveal" in out

    # t2 restarts with `client run`: the journal's pending reveal first, then it follows the task to the end
    procs = [subprocess.Popen([FEDCHAIN, "aggregator", "run", "--task", str(task_id), "--account", "TEST::3",
                               "--network", NETWORK, "--timeout", "300"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen([FEDCHAIN, "client", "run", "--task", str(task_id), "--data", "digits", "--shard", "2/2",
                               "--account", "TEST::5", "--network", NETWORK], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    outputs = []
    for proc in procs:
        output, _ = proc.communicate(timeout=360)
        outputs.append(output)
        assert proc.returncode == 0, output
    assert "round 1: revealed" in outputs[1] and "training on" not in outputs[1], outputs[1]
    assert fed.task(task_id).status == TaskStatus.COMPLETED
    rnd = fed.round(task_id, 1)
    assert rnd.phase == Phase.FINALIZED and rnd.accepted == 2
    assert fed.trainer_entry(task_id, 1, t2.address).status == TrainerStatus.CLAIMED  # `client run` claimed
    assert fed.trainer_entry(task_id, 1, t1.address).status == TrainerStatus.REVEALED  # t1 may claim later
    assert int(fed.staking.stakeOf(t1.address)) == int(fed.staking.stakeOf(t2.address)) == 50 * ONE_TOKEN

"""Privacy budgets through the real `fedchain client` CLI: separate trainer processes against the test's anvil, a
task with an on-chain DP bound, and `fedchain aggregator run` finishing the rounds."""

from __future__ import annotations

import re
import subprocess
import time

from client.trainer import default_train_config
from fedchain.protocol import Phase, TrainerStatus
from tests.support.cli import BIN, NETWORK, REPO, cli_env
from tests.support.federation import build_federation

TRAINER = "TEST::4"  # Participants.from_test_accounts: the first trainer
FEDCHAIN = str(BIN / "fedchain")


def client(command: str, task_id: int, env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    args = [FEDCHAIN, "client", command, "--task", str(task_id), "--account", TRAINER, "--network", NETWORK,
            *options]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def epsilon_so_far(status_output: str) -> float:
    match = re.search(r"epsilon spent so far: ([0-9.]+) \(task bound 1\)", status_output)
    assert match, status_output
    return float(match.group(1))


def wait_finalized(fed, task_id: int, round_: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while Phase(fed.round(task_id, round_).phase) != Phase.FINALIZED:
        assert time.monotonic() < deadline, f"round {round_} not finalized (phase {fed.round(task_id, round_).phase})"
        time.sleep(0.5)


def test_cli_trainer_stays_inside_the_task_bound_and_stops_at_its_budget(fedchain_home):
    # one trainer (TEST::4), a task with an on-chain bound of epsilon 1 over 2 rounds; the in-process node for
    # round 1 trains with the DP defaults, as the CLI does
    f = build_federation(fedchain_home, trainers=1, rounds=2, dp=True, epsilon=1.0,
                         train=default_train_config(private=True))
    env = cli_env(fedchain_home)
    data = ("--data", "digits", "--shard", "1/4")  # local training: the DP defaults
    aggregator = subprocess.Popen([FEDCHAIN, "aggregator", "run", "--task", str(f.task_id), "--account", "TEST::3",
                                   "--network", NETWORK, "--timeout", "600"], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # round 1: the trainer would accept epsilon 8, but the task's bound of 1 wins
        trainer = f.trainers[0]
        trainer.target_epsilon = 8.0
        assert trainer.participate(f.task_id, timeout=240) == 1
        wait_finalized(f.fed, f.task_id, 1)
        _, first = trainer.epsilon_report(f.task_id)[1]  # what the revealed update's manifest records
        assert 0 < first < 1.0  # planned for both rounds: round 1 spends only part of the bound

        # through the CLI, the trainer lowers its own target below what it has already spent: no round 2 for it
        stopped = client("run", f.task_id, env, "--epsilon", f"{first / 2:.4f}", *data)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopping: privacy budget reached" in stopped.stdout, stopped.stdout
        assert "already spent on this task reaches the budget" in stopped.stdout
        assert f"stopped taking part in task {f.task_id}" in stopped.stdout
        entry = f.fed.tasks.getTrainerEntry(f.task_id, 2, trainer.address)
        assert TrainerStatus(entry.status) == TrainerStatus.NONE  # nothing trained, nothing committed

        # back at target 8 it trains round 2 (with the DP defaults) and the task completes; the bound of 1 still
        # caps the whole task
        finished = client("run", f.task_id, env, "--epsilon", "8", *data)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert "local training: 2 epochs, batch 64, lr 0.5, momentum 0" in finished.stdout  # the DP defaults
        assert f"task {f.task_id} completed" in finished.stdout, finished.stdout
        status = client("status", f.task_id, env)
        assert status.returncode == 0, status.stderr
        total = epsilon_so_far(status.stdout)
        assert first < total <= 1.0 and total > 1.0 - 0.05, status.stdout  # the bound, used and not exceeded
        assert "round 2:" in status.stdout and "in total" in status.stdout
    finally:
        aggregator.terminate()
        aggregator.communicate(timeout=60)

"""Running the `fedchain` and `ape` CLIs as separate processes against the test's anvil."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ape import networks

from fedchain.ape.chain import Fedchain
from fedchain.architectures import initial_tensors
from fedchain.codec import ModelManifest, encode_dataset, encode_model, sha256
from fedchain.data import load_dataset, split_holdout
from fedchain.protocol import ONE_TOKEN
from fedchain.store import open_store
from fedchain.taskspec import architecture_bound

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


def create_task(fed: Fedchain, sponsor, trainers: int, rounds: int, max_trainers: int | None = None) -> int:
    """A digits task needing ``trainers`` (room for ``max_trainers``, default the same), phases of 120 s."""
    store = open_store(None)
    arch = "mlp:64-32-10"
    x, y = load_dataset("digits")
    _, validation, _ = split_holdout(x, y, 0.15, 0.2, 0)
    model = encode_model(initial_tensors(arch, 0), ModelManifest(kind="initial", architecture=arch))
    val = encode_dataset(*validation, name="digits-validation")
    budget = 100 * ONE_TOKEN
    fed.token.approve(fed.tasks.address, budget, sender=sponsor)
    params = (arch, store.put(model), sha256(model), store.put(val), sha256(val), budget, rounds, trainers,
              max_trainers or trainers,
              1, 1, 120, 120, 120, 120, 10 * ONE_TOKEN, 10 * ONE_TOKEN, "fedavg", b"", 0, 0, 0,
              architecture_bound(arch))
    receipt = fed.tasks.createTask(params, sender=sponsor)
    return int(next(iter(receipt.events.filter(fed.tasks.TaskCreated))).taskId)


def fails(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    """Run a command that must fail as a user error: non-zero exit, no traceback; its output."""
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{args} succeeded:\n{output}"
    assert "Traceback" not in output, output
    return output


def error_lines(output: str) -> list[str]:
    """The lines of a failed command's output that say what went wrong (click prints ``Error: ...``)."""
    return [line for line in output.splitlines() if line.startswith("Error:")]

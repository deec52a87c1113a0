"""Running the ``fedchain`` and ``ape`` commands as separate processes against the test's anvil."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ape import networks

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NETWORK = "ethereum:local:foundry"


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that uses ``home`` and the test's anvil."""
    env = dict(os.environ)
    env.update(FEDCHAIN_HOME=str(home), APE_FOUNDRY_HOST=networks.provider.uri, FEDCHAIN_POLL_SECONDS="0.2")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    """Run a command to completion; its stdout (the test fails, with both streams, when it fails)."""
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout

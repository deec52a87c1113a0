"""`fedchain chain start`: one persistent local chain that separate processes share through APE_FOUNDRY_HOST; a
deployment recorded on it is still there after a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx

from tests.support.cli import BIN, NETWORK, REPO, run

FEDCHAIN = str(BIN / "fedchain")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([FEDCHAIN, "chain", "start", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                       timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the chain did not answer within 60 s")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_a_persistent_local_chain_keeps_its_deployment_across_restarts(tmp_path):
    port = _free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "APE_FOUNDRY_HOST"}
    env.update(FEDCHAIN_HOME=str(home))
    proc = _start(env, port)
    try:
        env["APE_FOUNDRY_HOST"] = f"http://127.0.0.1:{port}"
        run([str(BIN / "ape"), "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--mint",
             "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC=25"], env)
        balance = run([FEDCHAIN, "token", "balance", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "--network",
                       NETWORK], env)
        assert "25 FED in the wallet" in balance
    finally:
        out = _stop(proc)
    assert f"export APE_FOUNDRY_HOST=http://127.0.0.1:{port}" in out
    assert (home / "anvil-state.json").is_file()
    proc = _start({k: v for k, v in env.items() if k != "APE_FOUNDRY_HOST"}, port)
    try:  # the same deployment answers after the restart: its record in FEDCHAIN_HOME matches the chain
        assert run([FEDCHAIN, "token", "balance", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "--network",
                    NETWORK], env) == balance
        assert "no tasks yet" in run([FEDCHAIN, "task", "list", "--network", NETWORK], env)
    finally:
        _stop(proc)

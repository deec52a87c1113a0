"""Start and stop real js-ipfs nodes (tools/ipfs-node.mjs) on loopback for tests and benchmarks."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = REPO_ROOT / "tools" / "ipfs-node.mjs"
READY = "IPFS_NODE_READY "


@dataclass
class IpfsNode:
    """One js-ipfs process: its repo directory, ports and (while running) the process."""

    repo: Path
    api_port: int = field(default_factory=free_port)
    swarm_port: int = field(default_factory=free_port)
    peers: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    peer_id: str = ""
    swarm: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 90.0) -> IpfsNode:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node (Node.js) is needed to run the js-ipfs test node")
        self.repo.mkdir(parents=True, exist_ok=True)
        cmd = [node, str(LAUNCHER), "--repo", str(self.repo), "--api-port", str(self.api_port),
               "--swarm-port", str(self.swarm_port)]
        for peer in self.peers:
            cmd += ["--peer", peer]
        log = (self.repo.parent / f"{self.repo.name}.log").open("ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log,
                                     env={**os.environ, "DEBUG": ""}, start_new_session=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(READY.encode()):
                    info = json.loads(line[len(READY):])
                    self.peer_id, self.swarm = info["peerId"], info["swarm"]
                    return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"js-ipfs node did not start (last line {line!r}); see {log.name}")

    def stop(self) -> None:
        """SIGTERM (the node closes its repo), then SIGKILL if it does not exit in 20 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

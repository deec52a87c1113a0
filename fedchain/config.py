"""Runtime settings from the environment, with defaults that run everything on one machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NETWORK = "ethereum:local:foundry"
LOCAL_NETWORKS = ("local",)


@dataclass(frozen=True)
class Settings:
    """Where fedchain keeps its files and which content store it uses."""

    home: Path
    store: str | None
    max_model_bytes: int
    poll_seconds: float

    @property
    def deployments_file(self) -> Path:
        return self.home / "deployments.json"

    @property
    def journal_dir(self) -> Path:
        return self.home / "journal"


def settings() -> Settings:
    """Read FEDCHAIN_* environment variables (read on every call so tests can change them)."""
    home = Path(os.environ.get("FEDCHAIN_HOME", Path.home() / ".fedchain")).expanduser()
    return Settings(
        home=home,
        store=os.environ.get("FEDCHAIN_STORE") or None,
        max_model_bytes=int(os.environ.get("FEDCHAIN_MAX_MODEL_BYTES", 64 * 1024 * 1024)),
        poll_seconds=float(os.environ.get("FEDCHAIN_POLL_SECONDS", "1.0")),
    )


def ensure_tool_paths() -> None:
    """Put the repo's node tools (anvil) and the solc-js wrapper where ape and its plugins look."""
    node_bin = REPO_ROOT / "node_modules" / ".bin"
    path = os.environ.get("PATH", "")
    if node_bin.is_dir() and str(node_bin) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{node_bin}{os.pathsep}{path}"
    os.environ.setdefault("SOLCX_BINARY_PATH", str(REPO_ROOT / "tools" / "solc-bin"))

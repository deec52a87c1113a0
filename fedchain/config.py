"""Runtime settings from the environment, with defaults that run everything on one machine.

Every ``FEDCHAIN_*`` variable is read here and only here, on every call (so tests and long-running processes see
changes). An empty variable means "not set".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NETWORK = "ethereum:local:foundry"
DEFAULT_MAX_MODEL_BYTES = 4 * 1024**3  # model files are streamed and bounded per task by their architecture
DEFAULT_MAX_DATASET_BYTES = 256 * 1024**2  # validation sets are read into memory


def env(name: str) -> str | None:
    """``os.environ[name]``, with an empty value read as unset."""
    value = os.environ.get(name)
    return value if value else None


def _number(name: str, default: float) -> float:
    raw = env(name)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def home() -> Path:
    """``$FEDCHAIN_HOME`` (default ``~/.fedchain``): deployments, the local store, journals, follower state."""
    return Path(env("FEDCHAIN_HOME") or "~/.fedchain").expanduser()


@dataclass(frozen=True)
class Settings:
    """Where fedchain keeps its files, which content store it uses and its limits."""

    home: Path
    store: str | None  # FEDCHAIN_STORE: local, local:PATH or kubo:URL
    ipfs_api: str | None  # FEDCHAIN_IPFS_API: a Kubo RPC URL used when no store spec is given
    ipfs_timeout: float
    ipfs_retry_seconds: float
    max_model_bytes: int  # FEDCHAIN_MAX_MODEL_BYTES: the largest model file this node reads (each task: less)
    max_dataset_bytes: int  # FEDCHAIN_MAX_DATASET_BYTES: the largest validation set it reads
    poll_seconds: float
    rpc_url: str  # FEDCHAIN_RPC_URL, else APE_FOUNDRY_HOST (ape's local node): for web3 readers
    backend_url: str  # FEDCHAIN_BACKEND_URL: the read API the dashboard uses
    database_url: str | None  # FEDCHAIN_DATABASE_URL: the backend's database (default SQLite under home)

    @property
    def deployments_file(self) -> Path:
        return self.home / "deployments.json"

    @property
    def journal_dir(self) -> Path:
        return self.home / "journal"

    @property
    def local_store_dir(self) -> Path:
        return self.home / "store"


def settings() -> Settings:
    """Read the ``FEDCHAIN_*`` environment variables now."""
    return Settings(
        home=home(),
        store=env("FEDCHAIN_STORE"),
        ipfs_api=env("FEDCHAIN_IPFS_API"),
        ipfs_timeout=_number("FEDCHAIN_IPFS_TIMEOUT", 60.0),
        ipfs_retry_seconds=_number("FEDCHAIN_IPFS_RETRY_SECONDS", 120.0),
        max_model_bytes=int(_number("FEDCHAIN_MAX_MODEL_BYTES", DEFAULT_MAX_MODEL_BYTES)),
        max_dataset_bytes=int(_number("FEDCHAIN_MAX_DATASET_BYTES", DEFAULT_MAX_DATASET_BYTES)),
        poll_seconds=_number("FEDCHAIN_POLL_SECONDS", 1.0),
        rpc_url=env("FEDCHAIN_RPC_URL") or env("APE_FOUNDRY_HOST") or "http://127.0.0.1:8545",
        backend_url=env("FEDCHAIN_BACKEND_URL") or "http://127.0.0.1:8000",
        database_url=env("FEDCHAIN_DATABASE_URL"),
    )


def ensure_tool_paths() -> None:
    """Put the repo's node tools (anvil) and the solc-js wrapper where ape and its plugins look.

    Called by the entry points that talk to a chain through ape (the ``fedchain`` command, ``fedchain.ape``), never
    at import time of the core.
    """
    node_bin = REPO_ROOT / "node_modules" / ".bin"
    path = os.environ.get("PATH", "")
    if node_bin.is_dir() and str(node_bin) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{node_bin}{os.pathsep}{path}"
    os.environ.setdefault("SOLCX_BINARY_PATH", str(REPO_ROOT / "tools" / "solc-bin"))

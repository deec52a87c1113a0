"""What every dashboard page reads from: the dashboard's configuration, the deployment, the chain and the backend."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from backend.chainsource import ChainSource, DeploymentRecord, load_abis
from frontend.backend_client import BackendClient


@dataclass(frozen=True)
class DashboardConfig:
    """Everything `fedchain dashboard` configures."""

    rpc_url: str = field(default_factory=lambda: os.environ.get("FEDCHAIN_RPC_URL")
                         or os.environ.get("APE_FOUNDRY_HOST") or "http://127.0.0.1:8545")
    backend_url: str = field(default_factory=lambda: os.environ.get("FEDCHAIN_BACKEND_URL") or "http://127.0.0.1:8000")
    network: str = "ethereum:local"  # which record of $FEDCHAIN_HOME/deployments.json
    host: str = "127.0.0.1"
    port: int = 8080


class DashboardContext:
    """Shared, read-only handles for the pages: one per dashboard process, never per-user state.

    Per-user state (the connected wallet, its sign-in) lives with the browser tab, not here.
    """

    def __init__(self, config: DashboardConfig, deployment: DeploymentRecord | None = None):
        self.config = config
        self._deployment = deployment

    @cached_property
    def deployment(self) -> DeploymentRecord:
        record = self._deployment or DeploymentRecord.load(self.config.network)
        if record is None:
            raise LookupError(f"no fedchain deployment recorded for {self.config.network}; "
                              "run `ape run deploy` or `fedchain demo` first")
        return record

    @cached_property
    def chain(self) -> ChainSource:
        """Contract handles (web3) for view calls and receipts; `chain.contracts[role]`, `chain.w3`."""
        return ChainSource(self.config.rpc_url, self.deployment, load_abis())

    @cached_property
    def backend(self) -> BackendClient:
        """Async reader of the backend's read API (history); errors are `frontend.backend_client.BackendError`."""
        return BackendClient(self.config.backend_url)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

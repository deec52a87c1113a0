"""What every dashboard page reads from: the dashboard's configuration, the deployment, the chain and the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from fedchain.config import settings
from fedchain.deployment import Deployment
from fedchain.web3chain import Web3Chain, load_abis
from frontend.backend_client import BackendClient


@dataclass(frozen=True)
class DashboardConfig:
    """Everything `fedchain dashboard` configures."""

    rpc_url: str = field(default_factory=lambda: settings().rpc_url)
    backend_url: str = field(default_factory=lambda: settings().backend_url)
    network: str = "ethereum:local"  # which record of $FEDCHAIN_HOME/deployments.json
    host: str = "127.0.0.1"
    port: int = 8080


class DashboardContext:
    """Shared, read-only handles for the pages: one per dashboard process, never per-user state.

    Per-user state (the connected wallet, its sign-in) lives with the browser tab, not here.
    """

    def __init__(self, config: DashboardConfig, deployment: Deployment | None = None):
        self.config = config
        self._deployment = deployment  # given: fixed; otherwise read from deployments.json, re-read when it changes
        self._recorded: tuple[float, Deployment] | None = None
        self._chain: tuple[Deployment, Web3Chain] | None = None

    @property
    def deployment(self) -> Deployment:
        """The deployment shown; a redeploy recorded while the dashboard runs (e.g. `fedchain demo`) is picked up."""
        if self._deployment is not None:
            return self._deployment
        path = settings().deployments_file
        mtime = path.stat().st_mtime if path.exists() else -1.0
        if self._recorded is None or self._recorded[0] != mtime:
            record = Deployment.find(self.config.network, path)
            if record is None:
                raise LookupError(f"no fedchain deployment recorded for {self.config.network}; "
                                  "run `ape run deploy` or `fedchain demo` first")
            self._recorded = (mtime, record)
        return self._recorded[1]

    @property
    def chain(self) -> Web3Chain:
        """Contract handles (web3) for view calls and receipts; `chain.contracts[role]`, `chain.w3`."""
        record = self.deployment
        if self._chain is None or self._chain[0] != record:
            self._chain = (record, Web3Chain(self.config.rpc_url, record, load_abis()))
        return self._chain[1]

    @cached_property
    def backend(self) -> BackendClient:
        """Async reader of the backend's read API (history); errors are `frontend.backend_client.BackendError`."""
        return BackendClient(self.config.backend_url)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

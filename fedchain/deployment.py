"""The deployment record: which addresses make up fedchain on one network (``$FEDCHAIN_HOME/deployments.json``).

Written by ``ape run deploy`` and the demos, read by every role, the backend and the dashboard. The file maps a
network key (``ecosystem:network``, e.g. ``ethereum:local``) to one record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fedchain.config import settings
from fedchain.errors import NotDeployed

# role in a record -> contract name in the build
CONTRACT_NAMES = {"token": "FedToken", "staking": "Staking", "tasks": "TaskManager",
                  "rejection_slasher": "RejectionSlasher", "governor": "FedGovernor", "timelock": "FedTimelock",
                  "policy": "ProtocolPolicy", "retention": "TaskRetention", "committee": "AggregatorCommittee",
                  "vault": "RewardVault", "validation_keys": "ValidationKeys"}


@dataclass(frozen=True)
class Deployment:
    """Addresses of one fedchain deployment on one network."""

    network: str
    chain_id: int
    token: str
    staking: str
    tasks: str
    block: int
    deployer: str = ""
    rejection_slasher: str | None = None  # RejectionSlasher: slashes trainers whose update was rejected
    governor: str | None = None  # FedGovernor, when the DAO owns the deployment
    timelock: str | None = None  # FedTimelock: every admin role, the minter role and the treasury
    policy: str | None = None  # ProtocolPolicy: stake floors, quorum bounds, strategy allowlist, guardian pause
    retention: str | None = None  # TaskRetention: each task's retention policy (what pinning nodes keep)
    committee: str | None = None  # AggregatorCommittee: approved aggregators, each round's drawn committee
    vault: str | None = None  # RewardVault: task budgets, reward claims, aggregator share, fee, claim window
    validation_keys: str | None = None  # ValidationKeys: sponsors' keys of sealed validation sets, per round
    block_hash: str = ""  # hash of ``block``: tells apart two local chains that deployed at the same addresses

    @property
    def instance(self) -> str:
        """A file-name-safe key unique to this deployment: the chain id, the TaskManager's address and, when
        recorded, the start of ``block_hash`` (a restarted local chain deploys again at the same addresses, and
        one chain's journal or cursor must not be read as the other's)."""
        key = f"{self.chain_id}-{self.tasks.lower()}"
        tag = self.block_hash.lower().removeprefix("0x")[:16]
        return f"{key}-{tag}" if tag and all(c in "0123456789abcdef" for c in tag) else key

    @property
    def governed(self) -> bool:
        return bool(self.governor and self.timelock)

    @property
    def addresses(self) -> dict[str, str]:
        """Role -> address of every contract in the record."""
        return {role: getattr(self, role) for role in CONTRACT_NAMES if getattr(self, role)}

    def save(self, path: Path | None = None) -> None:
        """Record this deployment for its network (other networks' records are kept); atomic."""
        path = path or settings().deployments_file
        path.parent.mkdir(parents=True, exist_ok=True)
        records = _read(path)
        records[self.network] = asdict(self)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True))
        tmp.replace(path)

    @classmethod
    def find(cls, network: str, path: Path | None = None) -> Deployment | None:
        """The record for ``network``, or None when there is none (or the file is unreadable)."""
        raw = _read(path or settings().deployments_file).get(network)
        if not isinstance(raw, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{"network": network, **{k: v for k, v in raw.items() if k in known}})
        except TypeError:
            return None

    @classmethod
    def load(cls, network: str, path: Path | None = None) -> Deployment:
        """The record for ``network``; ``NotDeployed`` says how to deploy when there is none."""
        path = path or settings().deployments_file
        record = cls.find(network, path)
        if record is None:
            raise NotDeployed(
                f"no fedchain deployment recorded for {network} in {path}; "
                "run `ape run deploy --network <choice>` (or `fedchain demo` on a local chain)"
            )
        return record

    def require_on_chain(self, chain_id: int, has_code: bool) -> Deployment:
        """This record, if the connected chain (its id, and whether the TaskManager has code) holds it."""
        if self.chain_id != chain_id or not has_code:
            raise NotDeployed(
                f"the deployment recorded for {self.network} is not on the connected chain "
                "(was the local chain restarted?); deploy again with `ape run deploy`"
            )
        return self


def _read(path: Path) -> dict[str, Any]:
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}

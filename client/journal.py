"""The trainer's journal: what it must remember between commit and reveal, one JSON file per committed round.

``$FEDCHAIN_HOME/journal/<chain id>-<TaskManager>-<task>-<round>-<trainer>.json`` holds the update's CID, digest,
sample count and the round's privacy record. It is written before the commit is sent, so a trainer that stops
after committing can still reveal (``fedchain client reveal``), and it is the trainer's privacy ledger: every DP
release it journaled counts against its budget, whether or not it was revealed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedchain.config import settings
from fedchain.deployment import Deployment
from fedchain.manifests import PrivacyRecord


@dataclass(frozen=True)
class PendingUpdate:
    """A committed update: what the reveal needs and what the round cost in privacy."""

    task_id: int
    round: int
    cid: str
    digest: str
    num_samples: int
    epsilon_spent: float | None
    privacy: dict[str, Any] | None = None

    @property
    def privacy_record(self) -> PrivacyRecord | None:
        return PrivacyRecord.from_record(self.privacy)


class Journal:
    """One trainer's journal for one deployment."""

    def __init__(self, deployment: Deployment, trainer: str, directory: Path | None = None) -> None:
        self.deployment = deployment
        self.trainer = trainer.lower()
        self.directory = directory or settings().journal_dir

    def path(self, task_id: int, round_: int) -> Path:
        d = self.deployment
        return self.directory / f"{d.chain_id}-{d.tasks.lower()}-{task_id}-{round_}-{self.trainer}.json"

    def record(self, pending: PendingUpdate) -> Path:
        """Write an entry atomically (before the commit is sent)."""
        path = self.path(pending.task_id, pending.round)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(pending)))
        os.replace(tmp, path)
        return path

    def load(self, task_id: int, round_: int) -> PendingUpdate | None:
        """The entry of a round, or None when there is none or it is unreadable."""
        try:
            raw = json.loads(self.path(task_id, round_).read_text())
            return PendingUpdate(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def has(self, task_id: int, round_: int) -> bool:
        return self.path(task_id, round_).exists()

"""The trainer's journal: what it must remember between training and reveal, one JSON file per round.

``$FEDCHAIN_HOME/journal/<deployment>-<task>-<round>-<trainer>.json`` (``Deployment.instance``: chain id,
TaskManager address and the deployment block's hash) holds the update's CID, digest,
sample count and the round's privacy record, and ``....safetensors`` beside it the update file itself. The entry
is written right after training, before the update is uploaded or committed, so

- a trainer that stops after committing still reveals (``fedchain client reveal``, or a restarted ``client run``
  or ``client train``, which resume every pending reveal);
- a trainer that stops between training and commit commits the same update on restart instead of training again;
- it is the trainer's privacy ledger: every DP release it journaled counts against its budget, whether or not it
  was uploaded, committed or revealed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fedchain.codec import ModelManifest
from fedchain.config import settings
from fedchain.deployment import Deployment
from fedchain.manifests import PrivacyRecord
from fedchain.modelfile import write_model_file


@dataclass(frozen=True)
class PendingUpdate:
    """A committed update: what the reveal needs and what the round cost in privacy."""

    task_id: int
    round: int
    cid: str  # "" until the update is uploaded
    digest: str
    num_samples: int
    epsilon_spent: float | None
    privacy: dict[str, Any] | None = None
    parent_cid: str = ""  # the global model it was trained from
    withheld: bool = False  # trained but never uploaded (the round closed first): not a release

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
        return self.directory / f"{self.deployment.instance}-{task_id}-{round_}-{self.trainer}.json"

    def blob_path(self, task_id: int, round_: int) -> Path:
        return self.path(task_id, round_).with_suffix(".safetensors")

    def record(self, pending: PendingUpdate, blob: bytes | None = None) -> Path:
        """Write an entry (and the update file, when given) atomically: before the upload and the commit."""
        path = self.path(pending.task_id, pending.round)
        path.parent.mkdir(parents=True, exist_ok=True)
        if blob is not None:
            _write_atomic(self.blob_path(pending.task_id, pending.round), blob)
        _write_atomic(path, json.dumps(asdict(pending)).encode())
        return path

    def write_update(self, task_id: int, round_: int, tensors: dict, manifest: ModelManifest, code: str = "F32"
                     ) -> Path:
        """Write a round's update file (atomically, tensor by tensor, in the task's transport ``code``) before its
        entry is recorded."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return write_model_file(tensors, manifest, self.blob_path(task_id, round_), code)

    def update_file(self, task_id: int, round_: int) -> Path | None:
        """The journaled update file of a round, if it is still there."""
        path = self.blob_path(task_id, round_)
        return path if path.is_file() else None

    def withhold(self, pending: PendingUpdate) -> None:
        """Mark an entry as never uploaded (if it was not) and drop its file: it released nothing."""
        if pending.cid:
            return
        self.record(replace(pending, withheld=True))
        self.blob_path(pending.task_id, pending.round).unlink(missing_ok=True)

    def blob(self, task_id: int, round_: int) -> bytes | None:
        """The journaled update file of a round, if it is still there."""
        try:
            return self.blob_path(task_id, round_).read_bytes()
        except OSError:
            return None

    def rounds(self, task_id: int) -> list[int]:
        """The rounds of a task with an entry, ascending."""
        prefix = f"{self.deployment.instance}-{task_id}-"
        pattern = re.compile(re.escape(prefix) + r"(\d+)-" + re.escape(self.trainer) + r"\.json")
        if not self.directory.is_dir():
            return []
        found = (pattern.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load(self, task_id: int, round_: int) -> PendingUpdate | None:
        """The entry of a round, or None when there is none or it is unreadable."""
        try:
            raw = json.loads(self.path(task_id, round_).read_text())
            return PendingUpdate(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def has(self, task_id: int, round_: int) -> bool:
        return self.path(task_id, round_).exists()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

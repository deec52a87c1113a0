"""The pin follower: keep every file the contracts reference pinned on one or more targets.

It reads TaskManager events (``TaskCreated`` -> initial model and validation set, ``UpdateRevealed`` ->
trainer updates, ``RoundFinalized`` -> the new global model and the aggregator state it names,
``RoundFailed``/``TaskCompleted`` -> releases) in block order, turns them into *references* (a name such
as ``t1/r2/update/0xab..`` pointing at a CID), and makes every target hold a pin for each referenced CID and
for no CID the retention policy let go.  Its cursor and pending work live in a JSON file under
``$FEDCHAIN_HOME/pin-follower/``: a cache, not protocol state.  A restart resumes at the saved block; work
that failed (target down, content not found) stays pending and is retried on the next pass.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.pin_targets import ABSENT, FAILED, PINNED, PinTarget
from fedchain.cid import normalize_cid
from fedchain.codec import decode_model
from fedchain.store.base import ContentError, ContentNotFound, ContentStore, StoreUnavailable

log = logging.getLogger(__name__)
EVENTS = ("TaskCreated", "UpdateRevealed", "RoundFinalized", "RoundFailed", "TaskCompleted")
MISSING = "missing"


@dataclass(frozen=True)
class RetentionPolicy:
    """What may be unpinned.  The contracts hold no retention field, so the follower's operator sets it.

    ``keep_rejected``: keep updates the round's result lists as rejected (default: drop once finalized).
    ``update_rounds``: keep accepted updates for this many later finalized rounds (None: forever).
    ``models``: ``"all"`` global models, or ``"final"``: once a task completes, only its last model.
    Updates of failed rounds are dropped.
    """

    keep_rejected: bool = False
    update_rounds: int | None = None
    models: str = "all"

    def __post_init__(self) -> None:
        if self.models not in ("all", "final"):
            raise ValueError("models must be 'all' or 'final'")
        if self.update_rounds is not None and self.update_rounds < 0:
            raise ValueError("update_rounds must be >= 0")


@dataclass
class FollowerState:
    """The follower's cursor and work, saved as JSON after every pass."""

    next_block: int = 0
    refs: dict[str, str] = field(default_factory=dict)  # reference name -> CID
    pins: dict[str, dict[str, str]] = field(default_factory=dict)  # CID -> target name -> status
    errors: dict[str, str] = field(default_factory=dict)  # CID -> last problem (content not found, ...)
    inspect: list[list[Any]] = field(default_factory=list)  # finalized results still to read: [task, round, cid, sha]

    @classmethod
    def load(cls, path: Path) -> FollowerState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.__dict__, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)


@dataclass
class PassReport:
    """What one pass did (for the CLI's progress lines and for tests)."""

    events: int = 0
    pinned: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)


class PinFollower:
    """Follow one deployment's TaskManager and keep ``targets`` pinned to what its events reference."""

    def __init__(self, tasks: Any, targets: Sequence[PinTarget], state_path: Path, *,
                 reader: ContentStore, policy: RetentionPolicy | None = None, confirmations: int = 0,
                 max_result_bytes: int = 64 * 1024 * 1024, batch_blocks: int = 2000,
                 from_block: int = 0, head: Callable[[], int] | None = None) -> None:
        if not targets:
            raise ValueError("the pin follower needs at least one target")
        self.tasks = tasks
        self.targets = list(targets)
        self.state_path = state_path
        self.state = FollowerState.load(state_path)
        if not state_path.exists():
            self.state.next_block = from_block
        self.reader = reader
        self.policy = policy or RetentionPolicy()
        self.confirmations = confirmations
        self.max_result_bytes = max_result_bytes
        self.batch_blocks = batch_blocks
        self._head = head or _chain_head

    # --- events -> references ----------------------------------------------------------------
    def _events(self, start: int, stop: int) -> list[Any]:
        logs = [entry for name in EVENTS for entry in getattr(self.tasks, name).range(start, stop + 1)]
        return sorted(logs, key=lambda e: (int(e.block_number), int(e.log_index)))

    def _ref(self, name: str, cid: str) -> None:
        try:
            cid = normalize_cid(cid)
        except ValueError:
            self.state.errors[name] = f"not a CID: {cid!r}"
            return
        self.state.refs[name] = cid
        self.state.pins.setdefault(cid, {})

    def _release(self, prefix: str, keep: Callable[[str], bool] = lambda _: False) -> None:
        for name in [n for n in self.state.refs if n.startswith(prefix) and not keep(n)]:
            del self.state.refs[name]

    def _on_event(self, event: Any) -> None:
        name, task = event.event_name, int(event.taskId)
        if name == "TaskCreated":
            params = self.tasks.getTask(task).params
            self._ref(f"t{task}/model/r0", event.initialModelCid)
            self._ref(f"t{task}/validation", params.validationCid)
        elif name == "UpdateRevealed":
            self._ref(f"t{task}/r{int(event.round)}/update/{event.trainer.lower()}", event.cid)
        elif name == "RoundFinalized":
            round_ = int(event.round)
            self._ref(f"t{task}/model/r{round_}", event.resultCid)
            self.state.inspect.append([task, round_, normalize_cid(event.resultCid), bytes(event.resultDigest).hex()])
            if self.policy.update_rounds is not None:
                self._release(f"t{task}/r{round_ - self.policy.update_rounds}/update/")
        elif name == "RoundFailed":
            self._release(f"t{task}/r{int(event.round)}/update/")
        elif name == "TaskCompleted" and self.policy.models == "final":
            final = normalize_cid(self.tasks.getTask(task).globalModelCid)
            self._release(f"t{task}/model/", keep=lambda n: self.state.refs[n] == final)
            self._release(f"t{task}/r", keep=lambda n: "/update/" in n)  # aggregator states go too

    def _inspect_results(self, report: PassReport) -> None:
        """Read finalized results: pin the aggregator state they name, release rejected updates."""
        pending = []
        for task, round_, cid, sha in self.state.inspect:
            try:
                blob = self.reader.get(cid, sha256=bytes.fromhex(sha), max_bytes=self.max_result_bytes)
                _, manifest = decode_model(blob, self.max_result_bytes)
            except StoreUnavailable as exc:
                report.unavailable.append(f"reader: {exc}")
                pending.append([task, round_, cid, sha])
                continue
            except (ContentError, ValueError) as exc:
                self.state.errors[cid] = f"round {round_} result unreadable: {exc}"
                report.missing[cid] = self.state.errors[cid]
                continue
            details = manifest.details or {}
            state_ref = details.get("server_state")
            if isinstance(state_ref, dict) and state_ref.get("cid"):
                self._ref(f"t{task}/r{round_}/state", state_ref["cid"])
            if not self.policy.keep_rejected:
                for trainer in details.get("rejected", {}):
                    self._release(f"t{task}/r{round_}/update/{str(trainer).lower()}")
        self.state.inspect = pending

    # --- references -> pins ------------------------------------------------------------------
    def _apply(self, report: PassReport) -> None:
        wanted = set(self.state.refs.values())
        for cid in sorted(self.state.pins):
            statuses = self.state.pins[cid]
            for target in self.targets:
                try:
                    self._apply_one(target, cid, cid in wanted, statuses, report)
                except StoreUnavailable as exc:
                    report.unavailable.append(f"{target.name}: {exc}")
            if cid not in wanted and all(statuses.get(t.name, ABSENT) == ABSENT for t in self.targets):
                del self.state.pins[cid]
                self.state.errors.pop(cid, None)

    def _apply_one(self, target: PinTarget, cid: str, want: bool, statuses: dict[str, str],
                   report: PassReport) -> None:
        status = statuses.get(target.name, ABSENT)
        if want and status != PINNED:
            if status not in (ABSENT, MISSING, FAILED):
                status = target.status(cid)  # queued on a pinning service: did it finish?
            if status in (ABSENT, MISSING, FAILED):
                try:
                    status = target.pin(cid, label=cid)
                except ContentNotFound as exc:
                    status = MISSING
                    self.state.errors[cid] = f"{target.name}: content not found ({exc})"
            if status == FAILED:
                status = MISSING
                self.state.errors[cid] = f"{target.name}: the pinning service could not find the content"
            statuses[target.name] = status
            if status == PINNED:
                self.state.errors.pop(cid, None)
                report.pinned.append(cid)
            elif status == MISSING:
                report.missing[cid] = self.state.errors[cid]
                log.warning("cannot pin %s: %s", cid, self.state.errors[cid])
        elif not want and status != ABSENT:
            target.unpin(cid)
            statuses[target.name] = ABSENT
            report.unpinned.append(cid)

    # --- passes ------------------------------------------------------------------------------
    def run_once(self) -> PassReport:
        """Read new confirmed events, then bring every target in line; saves the state after each batch."""
        report = PassReport()
        last = self._head() - self.confirmations
        while self.state.next_block <= last:
            stop = min(last, self.state.next_block + self.batch_blocks - 1)
            events = self._events(self.state.next_block, stop)
            for event in events:
                self._on_event(event)
            report.events += len(events)
            self.state.next_block = stop + 1
            self.state.save(self.state_path)
        self._inspect_results(report)
        self._apply(report)
        self.state.save(self.state_path)
        return report

    def missing(self) -> dict[str, str]:
        """CIDs that could not be pinned yet, with the reason."""
        return {cid: self.state.errors[cid] for cid in self.state.pins if cid in self.state.errors}

    def close(self) -> None:
        for target in self.targets:
            target.close()


def _chain_head() -> int:
    from ape import chain

    return int(chain.blocks.height)


def state_file(home: Path, chain_id: int, tasks_address: str) -> Path:
    """Where the follower of one deployment keeps its cursor."""
    return home / "pin-follower" / f"{chain_id}-{tasks_address.lower()}.json"


__all__ = ["FollowerState", "PassReport", "PinFollower", "RetentionPolicy", "state_file"]

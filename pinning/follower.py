"""The pin follower: keep every file the contracts reference pinned on one or more targets.

It reads TaskManager events (``TaskCreated`` -> initial model and validation set, ``UpdateRevealed`` ->
trainer updates, ``RoundFinalized`` -> the new global model and the aggregator state it names,
``RoundFailed`` -> that round's updates are dropped, ``TaskCompleted``) in block order and turns them into
*references* (a name such as ``t1/r2/update/0xab..`` pointing at a CID).  Which references are kept is decided by
each task's retention policy as TaskRetention holds it (``fedchain.retention``), read at the last block followed
and read again when a ``TaskRetentionSet``/``TaskRetentionCleared``/``DefaultRetentionChanged`` event arrives; an
operator's override can only keep more.  Every target holds a pin for each kept CID and for no other.  The cursor
and pending work live in a JSON file under ``$FEDCHAIN_HOME/pin-follower/``: a cache, not protocol state.  A
restart resumes at the saved block; work that failed (target down, content not found) is retried next pass.
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

from fedchain.chainview import ChainEvent, ChainReader
from fedchain.cid import normalize_cid
from fedchain.config import settings
from fedchain.deployment import Deployment
from fedchain.manifests import aggregate_details, fetch_manifest
from fedchain.retention import RetentionPolicy, task_retention
from fedchain.store.base import ContentError, ContentNotFound, ContentStore, StoreUnavailable
from pinning.targets import ABSENT, FAILED, PINNED, PinTarget

log = logging.getLogger(__name__)
EVENTS = ("TaskCreated", "UpdateRevealed", "RoundFinalized", "RoundFailed", "TaskCompleted")
RETENTION_EVENTS = ("TaskRetentionSet", "TaskRetentionCleared", "DefaultRetentionChanged")
MISSING = "missing"


@dataclass
class FollowerState:
    """The follower's cursor and work, saved as JSON after every pass."""

    next_block: int = 0
    refs: dict[str, str] = field(default_factory=dict)  # reference name -> CID
    pins: dict[str, dict[str, str]] = field(default_factory=dict)  # CID -> target name -> status
    errors: dict[str, str] = field(default_factory=dict)  # CID -> last problem (content not found, ...)
    inspect: list[list[Any]] = field(default_factory=list)  # finalized results still to read: [task, round, cid, sha]
    finalized: dict[str, list[int]] = field(default_factory=dict)  # task -> finalized rounds (0: initial model)
    completed: list[int] = field(default_factory=list)  # completed tasks
    rejected: list[str] = field(default_factory=list)  # update references the round's result rejected
    policies: dict[str, list[Any]] = field(default_factory=dict)  # task -> on-chain policy, as TaskRetention's tuple
    stale: list[int] = field(default_factory=list)  # tasks whose policy must be read again

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
    """Follow one deployment's TaskManager and keep ``targets`` pinned to what its events reference.

    ``chain``: the deployment (deployments without a TaskRetention contract: every task follows
    ``RetentionPolicy()``).  ``override``: the operator's policy; the follower keeps what either keeps.
    """

    def __init__(self, chain: ChainReader, targets: Sequence[PinTarget], state_path: Path, *,
                 reader: ContentStore, override: RetentionPolicy | None = None,
                 confirmations: int = 0, max_result_bytes: int | None = None, batch_blocks: int = 2000,
                 from_block: int = 0, head: Callable[[], int] | None = None) -> None:
        if not targets:
            raise ValueError("the pin follower needs at least one target")
        self.chain = chain
        self.has_retention = "retention" in chain.deployment.addresses
        self.targets = list(targets)
        self.state_path = state_path
        self.state = FollowerState.load(state_path)
        if not state_path.exists():
            self.state.next_block = from_block
        self.reader = reader
        self.override = override
        self.confirmations = confirmations
        self.max_result_bytes = settings().max_model_bytes if max_result_bytes is None else max_result_bytes
        self.batch_blocks = batch_blocks
        self._head = head or chain.head

    # --- events -> references ----------------------------------------------------------------
    def _events(self, start: int, stop: int) -> list[ChainEvent]:
        logs = [entry for name in EVENTS for entry in self.chain.events("tasks", name, start, stop)]
        if self.has_retention:
            logs += [e for name in RETENTION_EVENTS for e in self.chain.events("retention", name, start, stop)]
        return sorted(logs, key=lambda e: (e.block_number, e.log_index))

    def _ref(self, name: str, cid: str) -> None:
        try:
            cid = normalize_cid(cid)
        except ValueError:
            self.state.errors[name] = f"not a CID: {cid!r}"
            return
        self.state.refs[name] = cid
        self.state.pins.setdefault(cid, {})

    def _stale(self, task: int) -> None:
        if task not in self.state.stale:
            self.state.stale.append(task)

    def _on_event(self, event: ChainEvent) -> None:
        name, args = event.name, event.args
        if name == "DefaultRetentionChanged":
            for task in self.state.finalized:
                self._stale(int(task))
            return
        task = int(args["taskId"])
        if name in ("TaskRetentionSet", "TaskRetentionCleared"):
            self._stale(task)
        elif name == "TaskCreated":
            spec = self.chain.task(task, block=event.block_number).spec
            self._ref(f"t{task}/model/r0", args["initialModelCid"])
            self._ref(f"t{task}/validation", spec.validation_cid)
            self.state.finalized.setdefault(str(task), [0])
            self._stale(task)
        elif name == "UpdateRevealed":
            self._ref(f"t{task}/r{int(args['round'])}/update/{str(args['trainer']).lower()}", args["cid"])
        elif name == "RoundFinalized":
            round_ = int(args["round"])
            self._ref(f"t{task}/model/r{round_}", args["resultCid"])
            try:
                cid = normalize_cid(args["resultCid"])
            except ValueError:
                cid = None
            if cid is not None:
                self.state.inspect.append([task, round_, cid, bytes(args["resultDigest"]).hex()])
            rounds = self.state.finalized.setdefault(str(task), [0])
            if round_ not in rounds:
                rounds.append(round_)
        elif name == "RoundFailed":  # a failed round's updates are of no use to anyone
            prefix = f"t{task}/r{int(args['round'])}/update/"
            for ref in [n for n in self.state.refs if n.startswith(prefix)]:
                del self.state.refs[ref]
        elif name == "TaskCompleted" and task not in self.state.completed:
            self.state.completed.append(task)

    def _inspect_results(self, report: PassReport) -> None:
        """Read finalized results: pin the aggregator state they name, note the updates they rejected."""
        pending = []
        for task, round_, cid, sha in self.state.inspect:
            try:
                details = aggregate_details(fetch_manifest(self.reader, cid, bytes.fromhex(sha),
                                                           self.max_result_bytes))
            except StoreUnavailable as exc:
                report.unavailable.append(f"reader: {exc}")
                pending.append([task, round_, cid, sha])
                continue
            except (ContentError, ValueError) as exc:
                self.state.errors[cid] = f"round {round_} result unreadable: {exc}"
                report.missing[cid] = self.state.errors[cid]
                continue
            if details.server_state is not None:
                self._ref(f"t{task}/r{round_}/state", details.server_state.cid)
            for trainer in details.rejected:
                name = f"t{task}/r{round_}/update/{trainer}"
                if name not in self.state.rejected:
                    self.state.rejected.append(name)
        self.state.inspect = pending

    # --- retention ---------------------------------------------------------------------------
    def _read_policies(self, block: int) -> None:
        """Read the policy in force at ``block`` for every task whose policy is unknown or changed."""
        for task in self.state.finalized:
            if task not in self.state.policies:
                self._stale(int(task))
        for task in list(self.state.stale):
            if self.has_retention:
                policy, _ = task_retention(self.chain, int(task), block)
                self.state.policies[str(task)] = list(policy.to_chain())
            self.state.stale.remove(task)

    def policy(self, task: int) -> RetentionPolicy:
        """The policy this follower applies to ``task``: the chain's (as last read), widened by the override."""
        raw = self.state.policies.get(str(task))
        chain_policy = RetentionPolicy.from_chain(raw) if raw else RetentionPolicy()
        return chain_policy.at_least(self.override)

    def _keeps(self, name: str, policies: dict[int, RetentionPolicy]) -> bool:
        task_part, _, rest = name.partition("/")
        task = int(task_part[1:])
        policy = policies.setdefault(task, self.policy(task))
        finalized = self.state.finalized.get(str(task), [0])
        completed = task in self.state.completed
        if rest == "validation":
            return not completed or policy.keep_validation
        kind, _, tail = rest.partition("/")
        if kind == "model" or tail == "state":
            round_ = int((tail if kind == "model" else kind)[1:])
            kept = finalized if policy.model_rounds is None else finalized[-policy.model_rounds:]
            if kind == "model":
                return round_ in kept
            return round_ in kept and (not completed or policy.model_rounds is None)  # aggregator state
        round_ = int(kind[1:])  # an update: t{task}/r{round}/update/{trainer}
        if round_ not in finalized:
            return True  # its round is still running (a failed round's updates were dropped)
        if name in self.state.rejected and not policy.keep_rejected:
            return False
        if policy.update_rounds is None:
            return True
        rounds = [r for r in finalized if r > 0]
        return policy.update_rounds > 0 and round_ in rounds[-policy.update_rounds:]

    def wanted(self) -> set[str]:
        """Every CID some kept reference names."""
        policies: dict[int, RetentionPolicy] = {}
        return {cid for name, cid in self.state.refs.items() if self._keeps(name, policies)}

    # --- references -> pins ------------------------------------------------------------------
    def _apply(self, report: PassReport) -> None:
        wanted = self.wanted()
        for cid in wanted:
            self.state.pins.setdefault(cid, {})  # wanted again after a policy change
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
            self._read_policies(stop)
            self.state.save(self.state_path)
        self._read_policies(max(0, self.state.next_block - 1))
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


def state_file(home: Path, deployment: Deployment) -> Path:
    """Where the follower of one deployment keeps its cursor (``Deployment.instance``: a restarted local chain's
    new deployment at the same addresses starts afresh)."""
    return home / "pin-follower" / f"{deployment.instance}.json"


__all__ = ["FollowerState", "PassReport", "PinFollower", "RetentionPolicy", "state_file"]

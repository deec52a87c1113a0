"""The trainer's privacy ledger: every round it trained in a task and what that cost, and the next round's plan.

History comes from the journal (written before each commit). Only for a round the journal lost does the ledger
fall back to the revealed update's manifest in the content store; a committed round with neither is an error,
since its privacy cost is unknown.
"""

from __future__ import annotations

import math

from client.journal import Journal
from client.privacy import BudgetExceeded, budget_limit, check_budget, epsilon_spent, history_epsilon
from client.privacy import plan_noise_multiplier as plan_noise
from client.trainer import TrainConfig, dp_schedule
from fedchain.chainview import ChainReader, TaskView
from fedchain.codec import CodecError
from fedchain.errors import FedchainError
from fedchain.manifests import PrivacyRecord, fetch_manifest
from fedchain.protocol import TrainerStatus
from fedchain.store import ContentError, ContentStore


class PrivacyLedger:
    """Privacy accounting of one trainer across the rounds of a task."""

    def __init__(self, reader: ChainReader, journal: Journal, store: ContentStore, address: str, accountant: str,
                 delta: float, max_bytes: int) -> None:
        self.reader = reader
        self.journal = journal
        self.store = store
        self.address = address
        self.accountant = accountant
        self.delta = delta
        self.max_bytes = max_bytes

    def delta_for(self, task: TaskView) -> float:
        return task.spec.dp_delta or self.delta

    def record(self, task_id: int, round_: int) -> PrivacyRecord | None:
        """A committed round's privacy record: the journal's, else (recovery) the revealed update's manifest.

        A round trained without DP has no record and counts as ``PrivacyRecord.non_private`` (infinite epsilon).
        """
        pending = self.journal.load(task_id, round_)
        if pending is not None:
            return pending.privacy_record or PrivacyRecord.non_private(self.accountant, self.delta)
        entry = self.reader.trainer_entry(task_id, round_, self.address)
        if not entry.cid:
            raise FedchainError(f"round {round_} of task {task_id} was committed but its journal entry "
                                f"{self.journal.path(task_id, round_)} is lost and nothing was revealed: its "
                                "privacy cost is unknown, so no further round is trained")
        try:
            manifest = fetch_manifest(self.store, entry.cid, entry.update_digest, self.max_bytes)
        except (ContentError, CodecError, ValueError) as exc:
            raise FedchainError(f"round {round_} of task {task_id}: journal entry lost and the revealed update "
                                f"cannot be read ({exc}); its privacy cost is unknown") from exc
        return PrivacyRecord.of_update(manifest) or PrivacyRecord.non_private(
            self.accountant, self.delta)

    def history(self, task_id: int, before_round: int) -> list[PrivacyRecord]:
        """The records of every earlier round of the task in which we committed (or journaled) an update."""
        out = []
        for r in range(1, before_round):
            entry = self.reader.trainer_entry(task_id, r, self.address, with_reveal=False)
            committed = entry.status != TrainerStatus.NONE
            pending = self.journal.load(task_id, r)
            if committed or (self.journal.has(task_id, r) and not (pending is not None and pending.withheld)):
                record = self.record(task_id, r)
                if record is not None:
                    out.append(record)
        return out

    def plan(self, task: TaskView, round_: int, num_samples: int, config: TrainConfig,
             target_epsilon: float | None) -> PrivacyRecord:
        """This round's noise, so that every round so far plus every round still to come stays inside the smaller
        of ``target_epsilon`` and the task's on-chain bound; ``BudgetExceeded`` if that is impossible."""
        rate, steps = dp_schedule(num_samples, config)
        delta = self.delta_for(task)
        bound = task.spec.dp_epsilon
        limit = budget_limit(target_epsilon, bound)
        history = self.history(task.task_id, round_)
        if math.isfinite(limit) and any(math.isinf(p.epsilon_total) for p in history):
            raise BudgetExceeded(f"an earlier round of task {task.task_id} was trained without DP: epsilon inf "
                                 f"already spent, over the budget of {limit:g}; no further rounds can be trained")
        past = [p.history_entry() for p in history]
        rounds_left = task.spec.num_rounds - round_ + 1
        if math.isfinite(limit):
            noise = plan_noise(limit, delta, rate, steps, rounds_left, self.accountant, past)
        else:
            noise = config.noise_multiplier
        total = history_epsilon([*past, (noise, rate, steps)], delta, self.accountant)
        check_budget(total, target_epsilon, bound)
        return PrivacyRecord(
            accountant=self.accountant, delta=delta, noise_multiplier=noise, sample_rate=rate, steps=steps,
            max_grad_norm=config.max_grad_norm, grad_sample_mode=config.grad_sample_mode,
            epsilon_round=epsilon_spent(noise, rate, steps, delta, self.accountant), epsilon_total=total,
            epsilon_budget=limit if math.isfinite(limit) else None,
        )

    def report(self, task_id: int, up_to_round: int) -> dict[int, tuple[float | None, float | None]]:
        """Round -> (epsilon of that round, total after it) for every round we committed in (``(None, None)`` for
        a round trained without DP)."""
        out: dict[int, tuple[float | None, float | None]] = {}
        for r in range(1, up_to_round + 1):
            if self.reader.trainer_entry(task_id, r, self.address, with_reveal=False).status == TrainerStatus.NONE:
                continue
            pending = self.journal.load(task_id, r)
            try:
                record = pending.privacy_record if pending is not None else self.record(task_id, r)
            except FedchainError:
                continue
            if record is None or record.grad_sample_mode == "none":
                out[r] = (None, None)
            else:
                out[r] = (record.epsilon_round, record.epsilon_total)
        return out

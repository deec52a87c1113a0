"""Keeper duties after a round ends: slash dissenting / silent aggregators and trainers whose update was rejected.

Anyone may do these; aggregators do them as they go. Every action is checked against the chain first (already
slashed, nothing to do), and a lost race with another keeper only costs a logged revert.
"""

from __future__ import annotations

import logging
from typing import Any

from ape import chain
from ape.exceptions import ContractLogicError

from fedchain.chain import AggregatorStatus, Fedchain, Phase, TrainerStatus, explain_revert
from fedchain.codec import decode_model
from fedchain.commitments import ScoreTree
from fedchain.store import ContentStore

log = logging.getLogger(__name__)

ZERO_KEY = b"\0" * 32


class Keeper:
    """Settles finished rounds of tasks on behalf of one account."""

    def __init__(self, fed: Fedchain, account: Any, store: ContentStore, max_bytes: int) -> None:
        self.fed = fed
        self.account = account
        self.store = store
        self.max_bytes = max_bytes
        self._settled: set[tuple[int, int]] = set()

    def round_aggregators(self, task_id: int, round_: int) -> list[str]:
        """Aggregators that committed in the round (from `AggregateCommitted` events), in commit order."""
        logs = self.fed.tasks.AggregateCommitted.range(
            self.fed.deployment.block, chain.blocks.height + 1, search_topics={"taskId": task_id, "round": round_})
        seen: list[str] = []
        for event in logs:
            if event.aggregator not in seen:
                seen.append(event.aggregator)
        return seen

    def _try(self, description: str, fn: Any, *args: Any) -> bool:
        try:
            fn(*args, sender=self.account)
            return True
        except ContractLogicError as exc:
            log.info("%s not done: %s", description, explain_revert(exc))
            return False

    def slash_aggregators(self, task_id: int, round_: int, rnd: Any) -> int:
        """Slash committee members that did not reveal or revealed a result other than the accepted one."""
        phase = Phase(rnd.phase)
        if not (phase == Phase.FINALIZED or (phase == Phase.FAILED and Phase(rnd.failedPhase) ==
                                             Phase.AGGREGATOR_REVEAL)):
            return 0
        accepted = bytes(rnd.acceptedKey)
        count = 0
        for aggregator in self.round_aggregators(task_id, round_):
            entry = self.fed.tasks.getAggregatorEntry(task_id, round_, aggregator)
            status = AggregatorStatus(entry.status)
            revealed_other = status == AggregatorStatus.REVEALED and bytes(entry.resultKey) != accepted
            dissent = revealed_other and accepted != ZERO_KEY
            if status == AggregatorStatus.COMMITTED or dissent:
                count += self._try(f"slashing aggregator {aggregator}", self.fed.tasks.slashAggregator,
                                   task_id, round_, aggregator)
        return count

    def slash_rejected_trainers(self, task_id: int, round_: int, rnd: Any) -> int:
        """Prove each rejected trainer's `(trainer, 0)` leaf to the RejectionSlasher."""
        slasher = self.fed.rejection_slasher
        if slasher is None or Phase(rnd.phase) != Phase.FINALIZED:
            return 0
        blob = self.store.get(rnd.resultCid, sha256=bytes(rnd.resultDigest), max_bytes=self.max_bytes)
        scores = decode_model(blob, self.max_bytes)[1].details.get("scores", {})
        tree = ScoreTree(scores)
        if tree.root != bytes(rnd.scoresRoot):
            log.warning("round %s: the accepted result's scores do not match scoresRoot", round_)
            return 0
        count = 0
        for trainer, score in sorted(scores.items()):
            if score != 0 or slasher.isSlashed(task_id, round_, trainer):
                continue
            status = TrainerStatus(self.fed.tasks.getTrainerEntry(task_id, round_, trainer).status)
            if status in (TrainerStatus.REVEALED, TrainerStatus.CLAIMED):
                count += self._try(f"slashing rejected trainer {trainer}", slasher.slashRejectedTrainer,
                                   task_id, round_, trainer, tree.proof(trainer))
        return count

    def settle(self, task_id: int, round_: int) -> int:
        """Do the duties of a finished round once (per process); returns the number of slashes sent."""
        if (task_id, round_) in self._settled:
            return 0
        rnd = self.fed.round(task_id, round_)
        if Phase(rnd.phase) not in (Phase.FINALIZED, Phase.FAILED):
            return 0
        count = self.slash_aggregators(task_id, round_, rnd) + self.slash_rejected_trainers(task_id, round_, rnd)
        self._settled.add((task_id, round_))
        return count

    def settle_recent(self, task_id: int, lookback: int = 2) -> int:
        """Settle the task's current round and the ``lookback`` rounds before it."""
        current = int(self.fed.task(task_id).currentRound)
        return sum(self.settle(task_id, r) for r in range(max(1, current - lookback), current + 1))

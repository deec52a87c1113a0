"""Keeper duties after a round ends: slash dissenting / silent aggregators and trainers whose update was rejected,
and collect this aggregator's own dues (its share of a round it helped finalize, or its bond back).

Anyone may do the slashes; aggregators do them as they go. Every action is checked against the chain first
(already slashed, nothing to do), and a lost race with another keeper only costs a logged revert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ape.exceptions import ContractLogicError

from fedchain.ape.chain import Fedchain
from fedchain.chainview import RoundView
from fedchain.codec import CodecError
from fedchain.manifests import fetch_manifest, verified_scores
from fedchain.protocol import AggregatorStatus, Phase
from fedchain.store import ContentError, ContentStore, StoreUnavailable

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

    def attempt(self, description: str, method: Callable[..., Any], *args: Any) -> int:
        """Send one keeper transaction; 1 if it went through, 0 if it reverted (e.g. another keeper was first)."""
        try:
            _, why = self.fed.try_send(method, *args, sender=self.account)
        except ContractLogicError as exc:
            why = self.fed.explain_revert(exc)
        if why is not None:
            log.info("%s not done: %s", description, why)
            return 0
        return 1

    def slash_aggregators(self, task_id: int, round_: int, rnd: RoundView) -> int:
        """Slash committee members that did not reveal or revealed a result other than the accepted one."""
        if not (rnd.phase == Phase.FINALIZED or (rnd.phase == Phase.FAILED
                                                 and rnd.failed_phase == Phase.AGGREGATOR_REVEAL)):
            return 0
        count = 0
        for aggregator in self.fed.committee_members(task_id, round_):
            entry = self.fed.aggregator_entry(task_id, round_, aggregator)
            revealed_other = entry.status == AggregatorStatus.REVEALED and entry.result_key != rnd.accepted_key
            dissent = revealed_other and rnd.accepted_key != ZERO_KEY
            if entry.status == AggregatorStatus.COMMITTED or dissent:
                count += self.attempt(f"slashing aggregator {aggregator}", self.fed.committee.slashAggregator,
                                      task_id, round_, aggregator)
        return count

    def collect_own(self, task_id: int, round_: int, rnd: RoundView) -> bool:
        """This account's dues as a committee member of a finished round: its share when its reveal matched the
        accepted result (which also releases its bond), its bond back when the round failed. True when nothing
        is left to collect."""
        entry = self.fed.aggregator_entry(task_id, round_, self.account.address)
        never_asked = entry.status == AggregatorStatus.COMMITTED and rnd.phase == Phase.FAILED \
            and rnd.failed_phase == Phase.AGGREGATOR_COMMIT
        if entry.bond == 0 or (entry.status != AggregatorStatus.REVEALED and not never_asked):
            return True
        if never_asked:
            return bool(self.attempt("releasing the aggregator bond", self.fed.committee.releaseBond,
                                     task_id, round_, self.account.address))
        if rnd.phase == Phase.FINALIZED and entry.result_key == rnd.accepted_key:
            return bool(self.attempt("claiming the aggregator reward", self.fed.vault.claimAggregatorReward,
                                     task_id, round_))
        if rnd.phase == Phase.FAILED or self.fed.pending_timestamp() > rnd.settled_at:
            return bool(self.attempt("releasing the aggregator bond", self.fed.committee.releaseBond,
                                     task_id, round_, self.account.address))
        return False

    def slash_rejected_trainers(self, task_id: int, round_: int, rnd: RoundView) -> int | None:
        """Prove each rejected trainer's ``(trainer, 0, 0)`` leaf to the RejectionSlasher; None when the accepted
        result cannot be read now (tried again later)."""
        slasher = self.fed.rejection_slasher
        if slasher is None or rnd.phase != Phase.FINALIZED:
            return 0
        try:
            details, tree = verified_scores(fetch_manifest(self.store, rnd.result_cid, rnd.result_digest,
                                                           self.max_bytes), rnd.scores_root)
        except StoreUnavailable:
            raise
        except (ContentError, CodecError) as exc:
            log.warning("round %s: cannot settle rejections from the accepted result: %s", round_, exc)
            return None
        count = 0
        for trainer, score in sorted(details.scores.items()):
            if score != 0 or slasher.isSlashed(task_id, round_, trainer):
                continue
            if self.fed.trainer_entry(task_id, round_, trainer, with_reveal=False).revealed:
                count += self.attempt(f"slashing rejected trainer {trainer}", slasher.slashRejectedTrainer,
                                      task_id, round_, trainer, tree.proof(trainer))
        return count

    def settle(self, task_id: int, round_: int) -> int:
        """Do the duties of a finished round once (per process); returns the number of slashes sent."""
        if (task_id, round_) in self._settled:
            return 0
        rnd = self.fed.round(task_id, round_)
        if not rnd.phase.is_final:
            return 0
        count = self.slash_aggregators(task_id, round_, rnd)
        rejected = self.slash_rejected_trainers(task_id, round_, rnd)
        collected = self.collect_own(task_id, round_, rnd)
        if rejected is not None and collected:
            self._settled.add((task_id, round_))
        return count + (rejected or 0)

    def settle_recent(self, task_id: int, lookback: int = 2) -> int:
        """Settle the task's current round and the ``lookback`` rounds before it."""
        current = self.fed.task(task_id).current_round
        return sum(self.settle(task_id, r) for r in range(max(1, current - lookback), current + 1))

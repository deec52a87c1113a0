"""The stateless aggregator: everything it submits is recomputed from the chain and the content store.

``AggregatorNode.step`` does what is due for a task's current round: in the aggregator commit phase, draw the
round's committee if nobody has yet and, when drawn, commit to the round's result; reveal it (the same result,
reused from memory) in the reveal phase; advance phases; and the keeper's duties (slashes, its own reward and
bonds). A restart at any point recomputes the same result and salt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aggregator.compute import RoundComputation, RoundComputer, UnservableTask, ValidationPending
from aggregator.keeper import Keeper
from fedchain.ape.chain import Fedchain
from fedchain.ape.rounds import try_advance
from fedchain.commitments import aggregator_commitment, ape_signer, derive_salt, result_key
from fedchain.config import settings
from fedchain.protocol import AggregatorStatus, Phase, TaskStatus, TrainerStatus
from fedchain.rounds import open_for
from fedchain.store import ContentError, ContentStore, StoreUnavailable

log = logging.getLogger(__name__)


class AggregatorNode:
    """An approved, staked aggregator serving one or more tasks."""

    def __init__(self, fed: Fedchain, account: Any, store: ContentStore, max_update_bytes: int | None = None,
                 central_dp_secret: bytes | None = None):
        self.fed = fed
        self.account = account
        self.store = store
        self.max_bytes = max_update_bytes or settings().max_model_bytes
        self.computer = RoundComputer(fed, store, self.max_bytes, central_dp_secret)
        self.keeper = Keeper(fed, account, store, self.max_bytes)
        self._waiting: dict[int, str] = {}  # task -> what it waits for, logged once

    @property
    def address(self) -> str:
        return self.account.address

    def compute(self, task_id: int, round_: int) -> RoundComputation:
        """The round's result (see ``aggregator.compute``)."""
        return self.computer.compute(task_id, round_)

    def _salt(self, task_id: int, round_: int) -> bytes:
        d = self.fed.deployment
        return derive_salt(ape_signer(self.account), "aggregator", d.chain_id, d.tasks, task_id, round_)

    def step(self, task_id: int) -> str | None:
        """Do whatever is due now for the task's current round; returns what was done, if anything."""
        slashed = self.keeper.settle_recent(task_id)
        task, rnd = self.fed.current_round(task_id)
        if task.status != TaskStatus.ACTIVE:
            return "slashed" if slashed else None
        round_ = task.current_round
        status = self.fed.aggregator_entry(task_id, round_, self.address).status
        now = self.fed.pending_timestamp()
        if open_for(Phase.AGGREGATOR_COMMIT, rnd, now) and status == AggregatorStatus.NONE:
            self.slash_non_revealers(task_id, round_)
            if self.in_committee(task_id, round_):
                comp = self.compute(task_id, round_)
                commitment = aggregator_commitment(self.address, task_id, round_, result_key(comp.result),
                                                   self._salt(task_id, round_))
                self.fed.send("aggregate commit", self.fed.committee.commitAggregate, task_id, commitment,
                              sender=self.account)
                return "committed"
        if open_for(Phase.AGGREGATOR_REVEAL, rnd, now) and status == AggregatorStatus.COMMITTED:
            comp = self.compute(task_id, round_)
            self.fed.send("aggregate reveal", self.fed.committee.revealAggregate, task_id, comp.result.as_tuple(),
                          self._salt(task_id, round_), sender=self.account)
            return "revealed"
        if try_advance(self.fed, task_id, self.account) is not None:
            return "advanced"
        return "slashed" if slashed else None

    def in_committee(self, task_id: int, round_: int) -> bool:
        """Whether this aggregator sits on the round's committee, drawing it first when nobody has (the draw
        needs the block after the one that opened the phase: until then, and when not drawn, False)."""
        if not self.fed.tally(task_id, round_).drawn:
            self.keeper.attempt("drawing the committee", self.fed.committee.draw, task_id, round_)
            if not self.fed.tally(task_id, round_).drawn:
                return False
        return self.fed.is_committee_member(task_id, round_, self.address)

    def slash_non_revealers(self, task_id: int, round_: int) -> int:
        """Keeper duty: slash trainers who committed but never revealed (anyone may do this)."""
        count = 0
        for trainer in self.fed.round_trainers(task_id, round_):
            if self.fed.trainer_entry(task_id, round_, trainer, with_reveal=False).status == TrainerStatus.COMMITTED:
                count += self.keeper.attempt(f"slashing non-revealing trainer {trainer}",
                                             self.fed.tasks.slashNonRevealingTrainer, task_id, round_, trainer)
        return count

    def run(self, task_ids: Sequence[int], *, poll_seconds: float | None = None,
            on_action: Callable[[int, str], None] | None = None, timeout: float | None = None) -> None:
        """Serve the tasks until all are completed (or timeout seconds pass)."""
        poll = settings().poll_seconds if poll_seconds is None else poll_seconds
        started = time.monotonic()
        left: set[int] = set()
        while True:
            active = [t for t in task_ids if t not in left and self.fed.task(t).status == TaskStatus.ACTIVE]
            if not active:
                for task_id in task_ids:  # the last round's keeper duties
                    self.keeper.settle_recent(task_id)
                return
            acted = False
            for task_id in active:
                try:
                    action = self.step(task_id)
                except UnservableTask as exc:  # the sponsor's inputs are broken: nothing to compute, ever
                    log.error("leaving task %s: %s", task_id, exc)
                    left.add(task_id)
                    action = f"left the task: {exc}"
                except (StoreUnavailable, ContentError) as exc:  # the node is down or lacks a file: try again
                    log.warning("task %s: content store unavailable, retrying: %s", task_id, exc)
                    action = None
                except ValidationPending as exc:  # a sealed validation set's key is not on chain (yet)
                    if self._waiting.get(task_id) != str(exc):
                        log.warning("%s", exc)
                    self._waiting[task_id] = str(exc)
                    action = try_advance(self.fed, task_id, self.account) and "advanced"
                if action:
                    acted = True
                    if on_action:
                        on_action(task_id, action)
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"aggregator gave up after {timeout:.0f}s")
            if not acted:
                time.sleep(poll)

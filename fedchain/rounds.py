"""The round state machine as the contracts run it: when a phase may close early, when ``advance`` would succeed.

Pure logic over the typed views; the ape adapter (``fedchain.ape.rounds``) drives it with transactions.
"""

from __future__ import annotations

from collections.abc import Callable

from fedchain.chainview import CommitteeTally, RoundView, TaskView
from fedchain.protocol import Phase, TaskStatus

RoundCondition = Callable[[TaskView, RoundView], bool]
AGGREGATOR_PHASES = (Phase.AGGREGATOR_COMMIT, Phase.AGGREGATOR_REVEAL)


def phase_complete(task: TaskView, rnd: RoundView, tally: CommitteeTally | None = None) -> bool:
    """The early-close conditions of PROTOCOL.md (phase done before its deadline); the aggregator phases need the
    committee's ``tally`` (without it they are never complete early)."""
    spec = task.spec
    if rnd.phase == Phase.TRAINER_COMMIT:
        return rnd.committed >= spec.max_trainers
    if rnd.phase == Phase.TRAINER_REVEAL:
        return rnd.revealed >= rnd.committed
    if tally is None:
        return False
    if rnd.phase == Phase.AGGREGATOR_COMMIT:
        return tally.drawn and tally.committed >= tally.size
    if rnd.phase == Phase.AGGREGATOR_REVEAL:
        return tally.revealed >= tally.committed
    return False


def can_advance(task: TaskView, rnd: RoundView, now: int, tally: CommitteeTally | None = None) -> bool:
    """Whether ``advance`` would succeed at chain time ``now`` for this task's current round (``rnd`` as
    ``ChainReader.current_round`` reads it: its deadline extended by any pause)."""
    if task.status != TaskStatus.ACTIVE or not rnd.phase.is_open:
        return False
    return now > rnd.phase_deadline or phase_complete(task, rnd, tally)


def open_for(phase: Phase, rnd: RoundView, now: int) -> bool:
    """The round is in ``phase`` and its deadline has not passed at chain time ``now``."""
    return rnd.phase == phase and now <= rnd.phase_deadline


def in_phase(round_: int, phase: Phase) -> RoundCondition:
    """Condition: the task's current round is ``round_`` and in ``phase``, or the round has moved past it."""

    def condition(task: TaskView, rnd: RoundView) -> bool:
        if task.current_round > round_:
            return True
        return task.current_round == round_ and rnd.phase >= phase

    return condition

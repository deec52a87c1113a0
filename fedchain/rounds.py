"""The round state machine as the contracts run it: when a phase may close early, when ``advance`` would succeed.

Pure logic over the typed views; the ape adapter (``fedchain.ape.rounds``) drives it with transactions.
"""

from __future__ import annotations

from collections.abc import Callable

from fedchain.chainview import RoundView, TaskView
from fedchain.protocol import Phase, TaskStatus

RoundCondition = Callable[[TaskView, RoundView], bool]


def phase_complete(task: TaskView, rnd: RoundView) -> bool:
    """The early-close conditions of PROTOCOL.md (phase done before its deadline)."""
    spec = task.spec
    if rnd.phase == Phase.TRAINER_COMMIT:
        return rnd.committed >= spec.max_trainers
    if rnd.phase == Phase.TRAINER_REVEAL:
        return rnd.revealed >= rnd.committed
    if rnd.phase == Phase.AGGREGATOR_COMMIT:
        return rnd.agg_committed >= spec.max_aggregators
    if rnd.phase == Phase.AGGREGATOR_REVEAL:
        return rnd.agg_revealed >= rnd.agg_committed
    return False


def can_advance(task: TaskView, rnd: RoundView, now: int) -> bool:
    """Whether ``advance`` would succeed at chain time ``now`` for this task's current round."""
    if task.status != TaskStatus.ACTIVE or not rnd.phase.is_open:
        return False
    return now > rnd.phase_deadline or phase_complete(task, rnd)


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

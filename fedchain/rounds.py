"""Reading and driving the on-chain round state machine (shared by trainers, aggregators and the demo)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ape import chain
from ape.exceptions import ContractLogicError

from fedchain.chain import Fedchain, Phase, TaskStatus

log = logging.getLogger(__name__)


def chain_now() -> int:
    """The timestamp the next block will carry, which is what the contracts compare deadlines with.

    Asks the node for its pending block (dev chains whose clock was moved or restored from a snapshot differ from
    the wall clock); nodes without a pending block fall back to the later of the wall clock and the head block.
    """
    try:
        return int(chain.pending_timestamp)
    except Exception:  # noqa: BLE001 - any RPC without "pending" support
        return max(int(time.time()), int(chain.blocks.head.timestamp))


def phase_complete(task: Any, rnd: Any) -> bool:
    """The early-close conditions of PROTOCOL.md (phase done before its deadline)."""
    params = task.params
    phase = Phase(rnd.phase)
    if phase == Phase.TRAINER_COMMIT:
        return rnd.committed >= params.maxTrainers
    if phase == Phase.TRAINER_REVEAL:
        return rnd.revealed >= rnd.committed
    if phase == Phase.AGGREGATOR_COMMIT:
        return rnd.aggCommitted >= params.maxAggregators
    if phase == Phase.AGGREGATOR_REVEAL:
        return rnd.aggRevealed >= rnd.aggCommitted
    return False


def can_advance(task: Any, rnd: Any, now: int | None = None) -> bool:
    """Whether `advance` would succeed now for this task's current round."""
    if TaskStatus(task.status) != TaskStatus.ACTIVE:
        return False
    if Phase(rnd.phase) not in (
        Phase.TRAINER_COMMIT,
        Phase.TRAINER_REVEAL,
        Phase.AGGREGATOR_COMMIT,
        Phase.AGGREGATOR_REVEAL,
    ):
        return False
    now = chain_now() if now is None else now
    return now > rnd.phaseDeadline or phase_complete(task, rnd)


def try_advance(fed: Fedchain, task_id: int, sender: Any) -> Any | None:
    """Advance the task's current round if it is due; returns the receipt, or None if not due or raced."""
    task = fed.task(task_id)
    rnd = fed.round(task_id, task.currentRound)
    if not can_advance(task, rnd):
        return None
    try:
        return fed.tasks.advance(task_id, sender=sender)
    except ContractLogicError as exc:  # another participant advanced first
        log.debug("advance of task %s raced: %s", task_id, exc)
        return None


def wait_for(
    fed: Fedchain,
    task_id: int,
    condition: Callable[[Any, Any], bool],
    *,
    sender: Any,
    poll_seconds: float = 1.0,
    timeout: float | None = None,
    on_wait: Callable[[Any, Any], None] | None = None,
) -> tuple[Any, Any]:
    """Poll until condition(task, current_round) holds, advancing phases whenever they are due."""
    started = time.monotonic()
    while True:
        task = fed.task(task_id)
        rnd = fed.round(task_id, task.currentRound)
        if condition(task, rnd):
            return task, rnd
        if TaskStatus(task.status) == TaskStatus.COMPLETED:
            return task, rnd
        if try_advance(fed, task_id, sender) is not None:
            continue
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"task {task_id}: gave up waiting after {timeout:.0f}s")
        if on_wait:
            on_wait(task, rnd)
        time.sleep(poll_seconds)


def in_phase(round_: int, phase: Phase) -> Callable[[Any, Any], bool]:
    """Condition: the task's current round is `round_` and in `phase`, or the round has moved past it."""

    def condition(task: Any, rnd: Any) -> bool:
        if task.currentRound > round_:
            return True
        return task.currentRound == round_ and Phase(rnd.phase) >= phase

    return condition

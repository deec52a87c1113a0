"""Driving the round state machine over ape: advance when due, wait for a condition (trainers, aggregators, demos)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fedchain.ape.chain import Fedchain
from fedchain.chainview import RoundView, TaskView
from fedchain.protocol import TaskStatus
from fedchain.rounds import AGGREGATOR_PHASES, RoundCondition, can_advance

log = logging.getLogger(__name__)


def try_advance(fed: Fedchain, task_id: int, sender: Any) -> Any | None:
    """Advance the task's current round if it is due; the receipt, or None if not due or another participant won
    the race (a lost race is not an error: it is logged at debug level only)."""
    task, rnd = fed.current_round(task_id)
    tally = fed.tally(task_id, task.current_round) if rnd.phase in AGGREGATOR_PHASES else None
    if not can_advance(task, rnd, fed.pending_timestamp(), tally):
        return None
    # another keeper may advance first, before our estimate or between it and our block: quietly either way
    receipt, raced = fed.try_send(fed.tasks.advance, task_id, sender=sender)
    if raced is not None:
        log.debug("advance of task %s raced: %s", task_id, raced)
    return receipt


def wait_for(
    fed: Fedchain,
    task_id: int,
    condition: RoundCondition,
    *,
    sender: Any,
    poll_seconds: float = 1.0,
    timeout: float | None = None,
    on_wait: Callable[[TaskView, RoundView], None] | None = None,
) -> tuple[TaskView, RoundView]:
    """Poll until ``condition(task, current_round)`` holds (or the task completed), advancing phases when due."""
    started = time.monotonic()
    while True:
        task, rnd = fed.current_round(task_id)
        if condition(task, rnd) or task.status == TaskStatus.COMPLETED:
            return task, rnd
        if try_advance(fed, task_id, sender) is not None:
            continue
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"task {task_id}: gave up waiting after {timeout:.0f}s")
        if on_wait:
            on_wait(task, rnd)
        time.sleep(poll_seconds)

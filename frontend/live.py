"""Live state straight from the chain (the truth): the current task, round, phase and its deadline, chain time.

The backend is for history; what is happening now is read with view calls so it is never behind an indexer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fedchain.protocol import Phase, TaskStatus
from fedchain.web3chain import Web3Chain


@dataclass(frozen=True)
class LiveRound:
    """What the chain says now about the most recent active task (or the latest task when none is active)."""

    task_count: int
    task_id: int | None
    task_status: str | None
    round: int | None
    phase: str | None
    phase_deadline: int | None  # unix seconds, chain clock
    trainers_committed: int | None
    trainers_revealed: int | None
    chain_now: int  # the timestamp the next block will carry
    read_at: float  # time.monotonic() when read

    def seconds_left(self, monotonic_now: float | None = None) -> int | None:
        """Seconds until the phase deadline on the chain's clock, counting down locally since the read."""
        if self.phase_deadline is None or self.phase not in [p.label for p in Phase if p.is_open]:
            return None
        elapsed = (time.monotonic() if monotonic_now is None else monotonic_now) - self.read_at
        return int(self.phase_deadline - self.chain_now - elapsed)


def read_live_round(chain: Web3Chain) -> LiveRound:
    """One consistent-enough snapshot of the live round (a few view calls)."""
    count = chain.task_count()
    now = chain.pending_timestamp()
    chosen = None
    for task_id in range(count, 0, -1):  # newest first; stop at the first active task
        task = chain.task(task_id)
        if chosen is None:
            chosen = task
        if task.status == TaskStatus.ACTIVE:
            chosen = task
            break
        if count - task_id >= 50:  # bounded scan on long-lived deployments
            break
    if chosen is None:
        return LiveRound(count, None, None, None, None, None, None, None, now, time.monotonic())
    rnd = chain.round(chosen.task_id, chosen.current_round) if chosen.current_round else None
    return LiveRound(
        task_count=count, task_id=chosen.task_id, task_status=chosen.status.label, round=chosen.current_round,
        phase=rnd.phase.label if rnd else None, phase_deadline=rnd.phase_deadline if rnd else None,
        trainers_committed=rnd.committed if rnd else None, trainers_revealed=rnd.revealed if rnd else None,
        chain_now=now, read_at=time.monotonic(),
    )


async def read_live_round_async(chain: Web3Chain) -> LiveRound:
    """`read_live_round` off the event loop (web3 calls block)."""
    return await asyncio.to_thread(read_live_round, chain)


def format_countdown(seconds: int | None) -> str:
    if seconds is None:
        return "no open phase"
    if seconds <= 0:
        return "deadline passed: the next action advances the round"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def quorum_at(chain: Web3Chain, timepoint: int) -> int | None:
    """The governor's quorum at `timepoint` (a past timepoint; the latest past one when it is in the future)."""
    if "governor" not in chain.contracts:
        return None
    try:
        clock = int(chain.call("token", "clock"))
        return int(chain.call("governor", "quorum", min(int(timepoint), clock - 1)))
    except Exception:  # noqa: BLE001 - a governor without quorum() or an RPC error: the page says "unknown"
        return None

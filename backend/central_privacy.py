"""Cumulative central DP epsilon of a task, as the aggregator accounts it.

DP-FedAvg (``aggregator/central_dp.py``) counts one Gaussian mechanism per *released* round: every round that
reached the aggregator commit phase, finalized or failed later, because aggregators may have published a noisy
result in it. It composes them with ``fedchain.privacy.central_epsilon`` (the RDP accountant, sampling rate 1).
The indexer applies the same rule to its read model: a round was released when ``PhaseAdvanced`` gave it an
aggregator commit deadline, and the mechanism (noise multiplier, delta) is the one the round's result manifest
reports in ``details.central_dp``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Round, Task
from fedchain.manifests import AggregateDetails
from fedchain.privacy import central_epsilon
from fedchain.protocol import Phase


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def central_mechanism(details: AggregateDetails) -> tuple[float, float] | None:
    """(noise multiplier, delta) of the round's central DP report, if the result manifest has one."""
    report = details.central_dp
    if report is None:
        return None
    z, delta = _number(report.get("noise_multiplier")), _number(report.get("delta"))
    if z is None or delta is None or z < 0 or not 0 < delta < 1:
        return None
    return z, delta


def composed_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float | None:
    """The aggregator's accountant over ``rounds`` released rounds; None where it is unbounded (no noise)."""
    eps = central_epsilon(noise_multiplier, rounds, delta)
    return eps if math.isfinite(eps) else None


def released(rnd: Round) -> bool:
    """The round reached the aggregator commit phase (``RoundView.aggregation_reached``, from the indexed deadline)."""
    return rnd.aggregator_commit_deadline is not None


def refresh_central_privacy(session: Session, task_id: int) -> None:
    """Recompute the cumulative central epsilon of every ended round of the task and of the task itself.

    The mechanism is a task parameter (its strategy spec), so the latest round that reported one stands for all:
    a round that failed after aggregation has no result manifest but still counts, with the same mechanism.
    """
    rounds = list(session.scalars(select(Round).where(Round.task_id == task_id).order_by(Round.round)))
    reported = [r for r in rounds if r.central_noise_multiplier is not None and r.central_delta is not None]
    if not reported:
        return
    z, delta = reported[-1].central_noise_multiplier, reported[-1].central_delta
    count = 0
    for rnd in rounds:
        count += released(rnd)
        ended = rnd.phase in (Phase.FINALIZED.key, Phase.FAILED.key)
        rnd.central_epsilon_total = composed_epsilon(z, count, delta) if ended else None
    task = session.get(Task, task_id)
    if task is not None:
        task.central_dp_rounds, task.central_delta = count, delta
        task.central_epsilon_total = composed_epsilon(z, count, delta)

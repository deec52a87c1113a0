"""Differential-privacy budgeting across rounds with Opacus accountants (RDP by default, PRV on request).

A trainer runs ``steps`` DP-SGD steps at Poisson ``sample_rate`` with ``noise_multiplier`` in every round it
joins. The whole task is one composition of every step of every round, recorded as a *history* of
``(noise_multiplier, sample_rate, steps)`` entries exactly as Opacus' accountants keep it. Before a round the
noise multiplier is planned so that the history plus the rounds still to come stays inside the budget; after
the round the spent epsilon is recomputed from the history. The RDP analysis is the core's
(``fedchain.privacy``, shared with central DP); PRV and GDP use Opacus' accountants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from opacus.accountants import create_accountant

from fedchain.privacy import HistoryEntry, merge_history, rdp_epsilon

ACCOUNTANTS = ("rdp", "prv", "gdp")
MAX_SIGMA = 1e6  # as in Opacus
PLAN_TOLERANCE = 0.01  # epsilon; the same search tolerance as Opacus' get_noise_multiplier


class BudgetExceeded(Exception):
    """Training another round would spend more privacy than the trainer or the task allows."""


def _check(sample_rate: float, delta: float, accountant: str) -> None:
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; choose one of {ACCOUNTANTS}")


def history_epsilon(history: Sequence[HistoryEntry], delta: float, accountant: str = "rdp") -> float:
    """Epsilon of the composition of every entry in ``history`` at ``delta`` (0 for an empty history)."""
    entries = merge_history(history)
    for _, rate, _ in entries:
        _check(rate, delta, accountant)
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; choose one of {ACCOUNTANTS}")
    if not entries:
        return 0.0
    if any(noise == 0 for noise, _, _ in entries):
        return math.inf
    if accountant == "rdp":
        return rdp_epsilon(entries, delta)
    acct = create_accountant(mechanism=accountant)
    acct.history = list(entries)
    return float(acct.get_epsilon(delta=delta))


def epsilon_spent(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp"
) -> float:
    """Epsilon after ``steps`` DP-SGD steps in total at one ``noise_multiplier`` and ``sample_rate``."""
    _check(sample_rate, delta, accountant)
    if steps < 0 or noise_multiplier < 0:
        raise ValueError("steps and noise_multiplier must be non-negative")
    return history_epsilon([(noise_multiplier, sample_rate, steps)], delta, accountant)


def plan_noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps_per_round: int,
    num_rounds: int,
    accountant: str = "rdp",
    history: Sequence[HistoryEntry] = (),
) -> float:
    """Smallest noise multiplier (to a tolerance of 0.01 epsilon) such that ``history`` followed by
    ``num_rounds`` rounds of ``steps_per_round`` steps at ``sample_rate`` spends at most ``target_epsilon``.

    Without history this equals Opacus' ``get_noise_multiplier`` for ``steps_per_round * num_rounds`` steps.
    ``BudgetExceeded`` if no noise multiplier up to ``MAX_SIGMA`` fits (e.g. the history already spent it).
    """
    _check(sample_rate, delta, accountant)
    if steps_per_round < 1 or num_rounds < 1:
        raise ValueError("steps_per_round and num_rounds must be at least 1")
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise ValueError(f"target_epsilon must be positive and finite, got {target_epsilon}")
    steps = steps_per_round * num_rounds
    past = merge_history(history)
    already = history_epsilon(past, delta, accountant)
    if already >= target_epsilon:
        raise BudgetExceeded(
            f"epsilon {already:.4f} already spent on this task reaches the budget {target_epsilon}; "
            "no further rounds can be trained"
        )
    try:
        return _bisect_noise(target_epsilon, delta, sample_rate, steps, accountant, past)
    except ValueError as exc:  # Opacus: "The privacy budget is too low."
        raise BudgetExceeded(
            f"epsilon {target_epsilon} at delta {delta} is unreachable for {num_rounds} more rounds of "
            f"{steps_per_round} steps at sample rate {sample_rate} after epsilon {already:.4f} already spent: {exc}"
        ) from exc


def _bisect_noise(target: float, delta: float, rate: float, steps: int, accountant: str,
                  past: list[HistoryEntry]) -> float:
    """Opacus' ``get_noise_multiplier`` search (double the upper bound, then bisect from 0), step for step,
    over the history plus the planned steps; without history it returns exactly what Opacus returns."""

    def spent(sigma: float) -> float:
        return history_epsilon([*past, (sigma, rate, steps)], delta, accountant)

    low, high, eps_high = 0.0, 10.0, math.inf
    while eps_high > target:
        high = 2 * high
        eps_high = spent(high)
        if high > MAX_SIGMA:
            raise ValueError("The privacy budget is too low.")
    while target - eps_high > PLAN_TOLERANCE:
        sigma = (low + high) / 2
        eps = spent(sigma)
        if eps < target:
            high, eps_high = sigma, eps
        else:
            low = sigma
    return high


def check_budget(
    spent_after_round: float, target_epsilon: float | None, task_bound_epsilon: float | None = None
) -> float:
    """Raise ``BudgetExceeded`` if ``spent_after_round`` exceeds the smaller of the trainer's target and the
    task's on-chain bound (``None`` or 0 means no bound). Returns the limit that applied."""
    limit = budget_limit(target_epsilon, task_bound_epsilon)
    if math.isnan(spent_after_round) or spent_after_round > limit:
        which = "the task's on-chain bound" if limit == task_bound_epsilon else "the trainer's target"
        raise BudgetExceeded(
            f"the next round would bring epsilon to {spent_after_round:.4f}, over {which} of {limit:.4f} "
            f"(target {target_epsilon}, task bound {task_bound_epsilon}); not training this round"
        )
    return limit


def budget_limit(target_epsilon: float | None, task_bound_epsilon: float | None) -> float:
    """The epsilon budget that applies: the smaller of the trainer's target and the task bound (inf if neither)."""
    limits = [e for e in (target_epsilon, task_bound_epsilon) if e is not None and e > 0]
    return min(limits) if limits else math.inf

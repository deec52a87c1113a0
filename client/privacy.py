"""Differential-privacy budgeting across rounds with Opacus accountants (RDP by default).

A trainer runs ``steps_per_round`` DP-SGD steps at Poisson ``sample_rate`` in every round it joins. The
whole task is one composition of ``num_rounds * steps_per_round`` steps, so the noise multiplier is
planned once for the total and the spent epsilon is recomputed from the total steps done so far.
"""

from __future__ import annotations

import math

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

ACCOUNTANTS = ("rdp", "prv", "gdp")


class BudgetExceeded(Exception):
    """Training another round would spend more privacy than the trainer or the task allows."""


def _check(sample_rate: float, delta: float, accountant: str) -> None:
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; choose one of {ACCOUNTANTS}")


def plan_noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps_per_round: int,
    num_rounds: int,
    accountant: str = "rdp",
) -> float:
    """Smallest noise multiplier (to Opacus' search tolerance of 0.01 epsilon) such that ``num_rounds``
    rounds of ``steps_per_round`` steps at ``sample_rate`` spend at most ``target_epsilon``."""
    _check(sample_rate, delta, accountant)
    if steps_per_round < 1 or num_rounds < 1:
        raise ValueError("steps_per_round and num_rounds must be at least 1")
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise ValueError(f"target_epsilon must be positive and finite, got {target_epsilon}")
    try:
        return float(
            get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps_per_round * num_rounds,
                accountant=accountant,
            )
        )
    except ValueError as exc:  # Opacus: "The privacy budget is too low."
        raise BudgetExceeded(
            f"epsilon {target_epsilon} at delta {delta} is unreachable for {num_rounds} rounds of "
            f"{steps_per_round} steps at sample rate {sample_rate}: {exc}"
        ) from exc


def epsilon_spent(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp"
) -> float:
    """Epsilon after ``steps`` DP-SGD steps in total (all rounds so far) at ``noise_multiplier``."""
    _check(sample_rate, delta, accountant)
    if steps < 0 or noise_multiplier < 0:
        raise ValueError("steps and noise_multiplier must be non-negative")
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    acct = create_accountant(mechanism=accountant)
    acct.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acct.get_epsilon(delta=delta))


def check_budget(
    spent_after_round: float, target_epsilon: float | None, task_bound_epsilon: float | None = None
) -> float:
    """Raise ``BudgetExceeded`` if ``spent_after_round`` exceeds the smaller of the trainer's target and the
    task's on-chain bound (``None`` or 0 means no bound). Returns the limit that applied."""
    limits = [e for e in (target_epsilon, task_bound_epsilon) if e is not None and e > 0]
    limit = min(limits) if limits else math.inf
    if math.isnan(spent_after_round) or spent_after_round > limit:
        which = "the task's on-chain bound" if limit == task_bound_epsilon else "the trainer's target"
        raise BudgetExceeded(
            f"the next round would bring epsilon to {spent_after_round:.4f}, over {which} of {limit:.4f} "
            f"(target {target_epsilon}, task bound {task_bound_epsilon}); not training this round"
        )
    return limit

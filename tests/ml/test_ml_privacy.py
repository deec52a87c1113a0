"""Privacy budgeting: planning, spending over rounds, agreement with Opacus, budget refusal."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from client.privacy import BudgetExceeded, check_budget, epsilon_spent, plan_noise_multiplier

RATE, STEPS, ROUNDS, DELTA = 0.125, 40, 10, 1e-5


@pytest.mark.parametrize("target", [1.0, 8.0])
def test_plan_stays_within_target(target: float) -> None:
    sigma = plan_noise_multiplier(target, DELTA, RATE, STEPS, ROUNDS)
    spent = epsilon_spent(sigma, RATE, STEPS * ROUNDS, DELTA)
    assert target - 0.05 < spent <= target
    assert epsilon_spent(sigma * 0.95, RATE, STEPS * ROUNDS, DELTA) > target  # not wastefully noisy


def test_spent_grows_with_rounds() -> None:
    sigma = plan_noise_multiplier(8.0, DELTA, RATE, STEPS, ROUNDS)
    spent = [epsilon_spent(sigma, RATE, STEPS * r, DELTA) for r in range(ROUNDS + 1)]
    assert spent[0] == 0.0
    assert all(b > a for a, b in zip(spent, spent[1:], strict=False))
    assert spent[-1] <= 8.0


def test_matches_opacus_accountant_stepped_step_by_step() -> None:
    rdp = RDPAccountant()
    for _ in range(250):
        rdp.step(noise_multiplier=1.1, sample_rate=0.05)
    assert epsilon_spent(1.1, 0.05, 250, DELTA) == rdp.get_epsilon(delta=DELTA)
    prv = PRVAccountant()
    for _ in range(250):
        prv.step(noise_multiplier=1.1, sample_rate=0.05)
    assert epsilon_spent(1.1, 0.05, 250, DELTA, accountant="prv") == pytest.approx(
        prv.get_epsilon(delta=DELTA), rel=1e-9
    )


def test_more_noise_spends_less() -> None:
    spent = [epsilon_spent(sigma, 0.01, 1000, DELTA) for sigma in (0.7, 1.1, 2.0, 4.0)]
    assert all(b < a for a, b in zip(spent, spent[1:], strict=False))
    assert epsilon_spent(0.0, 0.01, 10, DELTA) == math.inf


def test_check_budget() -> None:
    assert check_budget(3.0, target_epsilon=4.0, task_bound_epsilon=5.0) == 4.0
    assert check_budget(3.0, target_epsilon=4.0, task_bound_epsilon=None) == 4.0
    assert check_budget(3.0, target_epsilon=4.0, task_bound_epsilon=0) == 4.0
    with pytest.raises(BudgetExceeded, match="trainer's target"):
        check_budget(4.5, target_epsilon=4.0, task_bound_epsilon=5.0)
    with pytest.raises(BudgetExceeded, match="on-chain bound"):
        check_budget(4.5, target_epsilon=8.0, task_bound_epsilon=4.2)
    with pytest.raises(BudgetExceeded):
        check_budget(math.inf, target_epsilon=8.0)


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")
def test_plan_refuses_impossible_budget_and_bad_args() -> None:
    with pytest.raises(BudgetExceeded):
        plan_noise_multiplier(1e-4, DELTA, 1.0, 1000, 10)
    with pytest.raises(ValueError):
        plan_noise_multiplier(8.0, DELTA, 0.0, STEPS, ROUNDS)
    with pytest.raises(ValueError):
        plan_noise_multiplier(8.0, DELTA, RATE, 0, ROUNDS)
    with pytest.raises(ValueError):
        epsilon_spent(1.0, RATE, 10, DELTA, accountant="moments")

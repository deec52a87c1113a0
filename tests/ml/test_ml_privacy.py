"""Privacy budgeting: planning, spending over rounds, agreement with Opacus, budget refusal."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from client.privacy import (
    BudgetExceeded,
    budget_limit,
    check_budget,
    epsilon_spent,
    history_epsilon,
    merge_history,
    plan_noise_multiplier,
)

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


# --- accounting against Opacus' own, composition over rounds, and the budget the client enforces ------------

def test_plan_equals_opacus_get_noise_multiplier_rdp() -> None:
    for target, rate, steps, rounds in ((3.0, 0.125, 40, 10), (1.0, 0.05, 20, 5), (8.0, 0.2, 10, 3)):
        ours = plan_noise_multiplier(target, DELTA, rate, steps, rounds)
        theirs = get_noise_multiplier(target_epsilon=target, target_delta=DELTA, sample_rate=rate,
                                      steps=steps * rounds, accountant="rdp")
        assert ours == theirs


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")
def test_plan_and_spend_with_prv_accountant_match_opacus() -> None:
    ours = plan_noise_multiplier(3.0, DELTA, 0.1, 10, 3, accountant="prv")
    theirs = get_noise_multiplier(target_epsilon=3.0, target_delta=DELTA, sample_rate=0.1, steps=30, accountant="prv")
    assert ours == pytest.approx(theirs, rel=1e-9)
    prv = PRVAccountant()
    for _ in range(30):
        prv.step(noise_multiplier=ours, sample_rate=0.1)
    spent = epsilon_spent(ours, 0.1, 30, DELTA, accountant="prv")
    assert spent == pytest.approx(prv.get_epsilon(delta=DELTA), rel=1e-9)
    assert 3.0 - 0.05 < spent <= 3.0


def test_history_epsilon_equals_opacus_rdp_accountant_over_mixed_rounds() -> None:
    rounds = [(1.3, 0.1, 30), (1.3, 0.1, 30), (0.9, 0.05, 60), (2.0, 0.2, 10)]
    rdp = RDPAccountant()
    for noise, rate, steps in rounds:
        for _ in range(steps):
            rdp.step(noise_multiplier=noise, sample_rate=rate)
    assert rdp.history == merge_history(rounds)  # Opacus merges repeated steps the same way
    assert history_epsilon(rounds, DELTA) == rdp.get_epsilon(delta=DELTA)
    assert history_epsilon([], DELTA) == 0.0
    assert history_epsilon([(0.0, 0.1, 1)], DELTA) == math.inf


def test_plan_with_history_fills_exactly_the_remaining_budget() -> None:
    first = plan_noise_multiplier(4.0, DELTA, RATE, STEPS, ROUNDS)
    past = [(first, RATE, STEPS)] * 3  # three rounds done as planned
    # the data grew: more steps per round from now on; the plan for the 7 rounds left still lands on 4.0
    again = plan_noise_multiplier(4.0, DELTA, RATE / 2, STEPS * 2, ROUNDS - 3, history=past)
    total = history_epsilon([*past, *[(again, RATE / 2, STEPS * 2)] * (ROUNDS - 3)], DELTA)
    assert 4.0 - 0.05 < total <= 4.0
    # with no change the plan is the same noise as before (up to the search tolerance)
    same = plan_noise_multiplier(4.0, DELTA, RATE, STEPS, ROUNDS - 3, history=past)
    assert history_epsilon([*past, *[(same, RATE, STEPS)] * (ROUNDS - 3)], DELTA) <= 4.0
    assert same == pytest.approx(first, abs=0.02)


def test_plan_refuses_once_the_history_spent_the_budget() -> None:
    past = [(0.8, RATE, STEPS)] * 4
    spent = history_epsilon(past, DELTA)
    with pytest.raises(BudgetExceeded, match="already spent"):
        plan_noise_multiplier(spent, DELTA, RATE, STEPS, 1, history=past)
    with pytest.raises(BudgetExceeded, match="already spent"):
        plan_noise_multiplier(spent * 0.9, DELTA, RATE, STEPS, 1, history=past)
    assert plan_noise_multiplier(spent * 1.5, DELTA, RATE, STEPS, 1, history=past) > 0


def test_budget_limit_task_bound_lower_than_target_wins() -> None:
    assert budget_limit(8.0, 3.0) == 3.0
    assert budget_limit(2.0, 3.0) == 2.0
    assert budget_limit(None, 3.0) == 3.0
    assert budget_limit(None, None) == math.inf
    with pytest.raises(BudgetExceeded, match="on-chain bound of 3.0"):
        check_budget(3.2, target_epsilon=8.0, task_bound_epsilon=3.0)

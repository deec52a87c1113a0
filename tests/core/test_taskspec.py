"""The typed task spec encodes to the Solidity tuple and decodes from every shape the chain readers return."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from fedchain.ape.deploy import deploy_protocol
from fedchain.taskspec import SOLIDITY_NAMES, TaskSpec, decode_strategy_params, encode_strategy_params
from tests.support.specs import BASE, spec


def test_round_trip_through_tuple_and_dict() -> None:
    task = spec(strategy="fedprox", strategy_params={"proximal_mu": 0.2}, dp_epsilon_milli=3000,
                dp_delta_e18=10**13)
    assert len(task.to_chain()) == len(SOLIDITY_NAMES) == len(fields(TaskSpec))
    assert TaskSpec.from_chain(task.to_chain()) == task
    assert TaskSpec.from_chain(dict(zip(SOLIDITY_NAMES, task.to_chain(), strict=True))) == task
    assert task.dp_epsilon == 3.0 and task.dp_delta == 1e-5 and task.proximal_mu() == 0.2
    assert BASE.dp_epsilon is None and BASE.proximal_mu() is None
    assert task.describe()["strategy_params"] == {"proximal_mu": 0.2}


def test_round_trip_through_the_contract(project, accounts) -> None:
    """What createTask stores is what getTask returns, field by field (an ape struct)."""
    admin, sponsor = accounts[0], accounts[1]
    fed = deploy_protocol(admin, save=False)
    token, tasks = fed.token, fed.tasks
    task = spec(strategy="median", strategy_params={"central_dp": {"noise_multiplier": 1.0}}, max_samples=12345)
    token.mint(sponsor, task.reward_budget, sender=admin)
    token.approve(tasks, task.reward_budget, sender=sponsor)
    tasks.createTask(task.to_chain(), sender=sponsor)
    assert TaskSpec.from_chain(tasks.getTask(1).params) == task


def test_strategy_parameters_are_a_bounded_json_object() -> None:
    assert encode_strategy_params({}) == b"" and decode_strategy_params(b"") == {}
    assert encode_strategy_params({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    for bad in (b"[1]", b"not json", b"{" * 100 + b"}" * 100, b'{"a": 1e999}', b'{"a": NaN}', b"{" + b" " * 5000):
        with pytest.raises(ValueError):
            decode_strategy_params(bad)
    with pytest.raises(ValueError, match="proximal_mu"):
        spec(strategy="fedprox", strategy_params={"proximal_mu": -1}).proximal_mu()
    with pytest.raises(ValueError):
        replace(BASE, strategy_params=b"garbage").strategy_config()

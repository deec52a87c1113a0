"""The retention rules the pin follower applies to its references (no chain, no node: the rules alone)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fedchain.retention import KEEP_ALL, RetentionPolicy, parse_count
from pinning.follower import PinFollower


class NoTarget:
    name = "none"

    def close(self) -> None:
        pass


def follower(tmp_path, policy: RetentionPolicy, override: RetentionPolicy | None = None) -> PinFollower:
    """A follower whose state says: task 1 finalized rounds 1, 2, 4 (3 failed, 5 running); two trainers a, b;
    b's round-2 update was rejected; rounds 2 and 4 named an aggregator state."""
    no_chain = SimpleNamespace(deployment=SimpleNamespace(addresses={}), head=lambda: 0)  # the rules read no chain
    pf = PinFollower(no_chain, [NoTarget()], tmp_path / "state.json", reader=None, override=override)
    refs = {"t1/validation": "val", "t1/model/r0": "m0", "t1/model/r1": "m1", "t1/model/r2": "m2",
            "t1/model/r4": "m4", "t1/r2/state": "s2", "t1/r4/state": "s4"}
    for r in (1, 2, 4, 5):
        refs |= {f"t1/r{r}/update/0xa": f"a{r}", f"t1/r{r}/update/0xb": f"b{r}"}
    pf.state.refs = refs
    pf.state.finalized = {"1": [0, 1, 2, 4]}
    pf.state.rejected = ["t1/r2/update/0xb"]
    pf.state.policies = {"1": list(policy.to_chain())}
    return pf


def test_default_keeps_everything_but_rejected_updates(tmp_path):
    wanted = follower(tmp_path, RetentionPolicy()).wanted()
    assert wanted == {"val", "m0", "m1", "m2", "m4", "s2", "s4", "a1", "b1", "a2", "a4", "b4", "a5", "b5"}


def test_last_model_and_no_updates_while_running(tmp_path):
    pf = follower(tmp_path, RetentionPolicy.minimal())
    # the current model and its state, the running round's updates, the open task's validation set
    assert pf.wanted() == {"val", "m4", "s4", "a5", "b5"}
    pf.state.completed = [1]
    assert pf.wanted() == {"m4", "a5", "b5"}  # completed: no validation set, no aggregator state


def test_update_rounds_count_finalized_rounds_not_round_numbers(tmp_path):
    pf = follower(tmp_path, RetentionPolicy(model_rounds=2, update_rounds=2, keep_rejected=True))
    # finalized rounds 2 and 4 are the last two (3 failed); b's rejected update is kept on request
    assert pf.wanted() == {"val", "m2", "m4", "s2", "s4", "a2", "b2", "a4", "b4", "a5", "b5"}


def test_override_keeps_more_never_less(tmp_path):
    chain = RetentionPolicy(model_rounds=2, update_rounds=1, keep_rejected=False, keep_validation=False)
    pf = follower(tmp_path, chain, override=RetentionPolicy.minimal())
    assert pf.policy(1) == chain  # the minimal override changes nothing
    pf = follower(tmp_path, chain, override=RetentionPolicy(model_rounds=1, update_rounds=None, keep_validation=True))
    assert pf.policy(1) == RetentionPolicy(model_rounds=2, update_rounds=None, keep_rejected=False,
                                           keep_validation=True)
    pf.state.completed = [1]
    assert {"val", "m2", "m4", "a1", "a2"} <= pf.wanted() and "b2" not in pf.wanted()


def test_policy_struct_round_trip_and_bounds():
    policy = RetentionPolicy(model_rounds=3, update_rounds=0, keep_rejected=True, keep_validation=False)
    assert policy.to_chain() == (3, 0, True, False)
    assert RetentionPolicy.from_chain(policy.to_chain()) == policy
    assert RetentionPolicy().to_chain() == (KEEP_ALL, KEEP_ALL, False, True)
    assert RetentionPolicy.from_chain((KEEP_ALL, KEEP_ALL, False, True)) == RetentionPolicy()
    for bad in ({"model_rounds": 0}, {"model_rounds": 100_001}, {"update_rounds": -1}, {"update_rounds": 100_001}):
        with pytest.raises(ValueError):
            RetentionPolicy(**bad)
    assert parse_count("all") is None and parse_count("ALL") is None and parse_count("4") == 4

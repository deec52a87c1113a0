"""Aggregator committees (quorum 2 of 3): three independent `fedchain aggregator run` processes agree byte for
byte; a dishonest member is outvoted and slashed; without a quorum the round fails and its budget rolls over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ape import accounts, networks

from aggregator.service import AggregatorNode
from fedchain.commitments import result_key
from fedchain.protocol import AggregatorStatus, Phase, TaskStatus
from tests.support.byzantine import (
    DishonestAggregator,
    add_aggregators,
    commit_tensors,
    create_task,
    federation,
    reveal_all,
    train_shard,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXTRA_AGGREGATORS = (17, 18)  # test accounts beyond the demo's deployer/treasury/sponsor/aggregator/trainers


def committee_round(fedchain_home, rounds: int = 1):
    """3 trainers, a 2-of-3 committee task with the trainers' updates revealed; returns (f, task_id, members)."""
    f = federation(fedchain_home, trainers=3)
    extra = [accounts.test_accounts[i] for i in EXTRA_AGGREGATORS]
    add_aggregators(f, extra)
    task_id = create_task(f, strategy="trimmed_mean", params={"beta": 0.2}, rounds=rounds, quorum=2, committee=3)
    reveals = {}
    for i, account in enumerate(f.people.trainers):
        tensors, n = train_shard(f, task_id, i)
        reveals[account] = commit_tensors(f, task_id, account, tensors, n)
    reveal_all(f, task_id, 1, reveals)
    return f, task_id, [f.people.aggregator, *extra]


def test_three_aggregator_processes_agree_and_finalize(fedchain_home):
    f, task_id, members = committee_round(fedchain_home)
    expected = result_key(AggregatorNode(f.fed, f.people.deployer, f.store).compute(task_id, 1).result)
    env = dict(__import__("os").environ)
    env.update(FEDCHAIN_HOME=str(fedchain_home), APE_FOUNDRY_HOST=networks.provider.uri, FEDCHAIN_POLL_SECONDS="0.2")
    indices = [3, *EXTRA_AGGREGATORS]
    procs = [subprocess.Popen([str(BIN / "fedchain"), "aggregator", "run", "--task", str(task_id), "--account",
                               f"TEST::{i}", "--network", "ethereum:local:foundry", "--timeout", "400"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in indices]
    for proc in procs:
        output, _ = proc.communicate(timeout=480)
        assert proc.returncode == 0, output
        assert "committed" in output and "revealed" in output
    assert TaskStatus(f.fed.task(task_id).status) == TaskStatus.COMPLETED
    rnd = f.fed.round(task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED
    assert sorted(f.fed.committee_members(task_id, 1)) == sorted(m.address for m in members)  # all three drawn
    keys = {f.fed.aggregator_entry(task_id, 1, m.address).result_key for m in members}
    assert keys == {bytes(rnd.accepted_key)}  # all three revealed the identical result
    assert f.fed.committee.resultVotes(task_id, 1, bytes(rnd.accepted_key)) == 3
    # each collected its share of the round (a third of the committee's part) and got its bond back
    share = f.fed.round_split(task_id, 1)[1]
    for m in members:
        assert f.fed.aggregator_entry(task_id, 1, m.address).status == AggregatorStatus.CLAIMED
        assert f.fed.reserved_stake(m.address) == 0
    assert f.fed.call("vault", "paidOf", task_id, 1)[1] == 3 * (share // 3)
    assert bytes(rnd.accepted_key) == expected  # and equal to an in-process computation before the run


def run_committee(f, task_id: int, nodes: list[AggregatorNode]) -> None:
    while f.fed.task(task_id).current_round == 1 and f.fed.task(task_id).status == 1:
        assert any([node.step(task_id) for node in nodes])
    for node in nodes:
        node.keeper.settle(task_id, 1)


def test_dishonest_aggregator_is_outvoted_and_slashed(fedchain_home):
    f, task_id, members = committee_round(fedchain_home)
    honest = [AggregatorNode(f.fed, m, f.store) for m in members[:2]]
    liar = DishonestAggregator(f.fed, members[2], f.store)
    stakes = {m.address: f.fed.staking.stakeOf(m.address) for m in members}
    balances = {m.address: f.fed.token.balanceOf(m.address) for m in members}
    expected = result_key(honest[0].compute(task_id, 1).result)
    run_committee(f, task_id, [*honest, liar])
    rnd = f.fed.round(task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED
    assert bytes(rnd.accepted_key) == expected
    assert f.fed.aggregator_entry(task_id, 1, liar.address).status == AggregatorStatus.SLASHED
    cut = f.fed.aggregator_bond(task_id) * f.fed.tasks.aggregatorSlashBps() // 10_000
    assert cut > 0 and f.fed.staking.stakeOf(liar.address) == stakes[liar.address] - cut
    assert f.fed.token.balanceOf(liar.address) == balances[liar.address]  # and no share of the round
    share = f.fed.round_split(task_id, 1)[1]
    for node in honest:  # the two matching members split the committee's share
        assert f.fed.aggregator_entry(task_id, 1, node.address).status == AggregatorStatus.CLAIMED
        assert f.fed.staking.stakeOf(node.address) == stakes[node.address]
        assert f.fed.token.balanceOf(node.address) == balances[node.address] + share // 2
    assert all(f.fed.reserved_stake(m.address) == 0 for m in members)


def test_no_quorum_fails_the_round_and_rolls_the_budget_over(fedchain_home):
    f, task_id, members = committee_round(fedchain_home, rounds=2)
    budget = f.fed.task(task_id).remaining_budget
    nodes = [AggregatorNode(f.fed, members[0], f.store), DishonestAggregator(f.fed, members[1], f.store, favour=1),
             DishonestAggregator(f.fed, members[2], f.store, favour=2)]  # three different results
    stakes = {m.address: f.fed.staking.stakeOf(m.address) for m in members}
    run_committee(f, task_id, nodes)
    rnd = f.fed.round(task_id, 1)
    assert Phase(rnd.phase) == Phase.FAILED and rnd.failure_reason.rstrip(b"\0") == b"NoQuorum"
    assert Phase(rnd.failed_phase) == Phase.AGGREGATOR_REVEAL and rnd.round_budget == 0
    task = f.fed.task(task_id)
    assert task.current_round == 2 and task.remaining_budget == budget  # nothing allocated: it rolls over
    assert all(f.fed.staking.stakeOf(m.address) == stakes[m.address] for m in members)  # all revealed: no slash
    assert all(f.fed.reserved_stake(m.address) == 0 for m in members)  # a failed round frees the bonds at once

"""A complete federated run on anvil: 3 trainers, 2 rounds, rewards claimed exactly as the formula says."""

from __future__ import annotations

from rich.console import Console

from aggregator.service import AggregatorNode
from fedchain.cli.demo import run_round
from fedchain.codec import decode_model
from fedchain.commitments import result_key
from fedchain.protocol import Phase, TaskStatus
from fedchain.store.local import LocalContentStore
from tests.support.chain import warp
from tests.support.federation import advance_to


def leaves_of(store, rnd) -> tuple[dict[str, int], dict[str, int]]:
    """The accepted result's (scores, attested weights)."""
    blob = store.get(rnd.result_cid, sha256=bytes(rnd.result_digest), max_bytes=1 << 26)
    details = decode_model(blob)[1].details
    return details["scores"], details["weights"]


def test_three_trainers_two_rounds_rewards_follow_formula(federation):
    f = federation
    token, tasks = f.fed.token, f.fed.tasks
    supply = token.totalSupply()
    remaining = f.fed.task(f.task_id).remaining_budget
    assert remaining == f.cfg.budget_tokens * 10**18
    test = f.data["test"]
    for round_ in (1, 2):
        before = {t.address: token.balanceOf(t.address) for t in f.trainers}
        row = run_round(f.fed, f.task_id, round_, f.trainers, f.aggregators, Console(quiet=True), test)
        rnd = f.fed.round(f.task_id, round_)
        assert Phase(rnd.phase) == Phase.FINALIZED
        assert row["accepted"] == 3 and row["rejected"] == 0
        # the round budget: remaining / rounds left, at finalization
        expected_budget = remaining // (f.cfg.rounds - round_ + 1)
        assert rnd.round_budget == expected_budget
        remaining -= expected_budget
        scores, weights = leaves_of(f.store, rnd)
        samples = {t.address.lower(): tasks.getTrainerEntry(f.task_id, round_, t.address).numSamples
                   for t in f.trainers}
        # attested weights: every accepted update weighs the round's smallest claim (aggregator.weights)
        assert weights == dict.fromkeys(samples, min(samples.values()))
        assert rnd.total_weight == sum(scores[a] * weights[a] for a in samples)
        trainers_part = f.fed.round_split(f.task_id, round_)[0]
        for t in f.trainers:
            a = t.address.lower()
            expected = trainers_part * scores[a] * weights[a] // rnd.total_weight
            assert expected > 0
            assert token.balanceOf(t.address) - before[t.address] == expected
        paid = f.fed.call("vault", "paidOf", f.task_id, round_)[0]
        assert paid == sum(token.balanceOf(t.address) - before[t.address] for t in f.trainers)
        # the committee member whose reveal matched was paid its share; every bond is back
        assert f.fed.call("vault", "paidOf", f.task_id, round_)[1] == f.fed.round_split(f.task_id, round_)[1]
        assert all(f.fed.reserved_stake(a) == 0 for a in [*samples, f.people.aggregator.address])
        # the task's global model is the round's result
        task = f.fed.task(f.task_id)
        assert task.global_model_cid == rnd.result_cid
    task = f.fed.task(f.task_id)
    assert TaskStatus(task.status) == TaskStatus.COMPLETED
    assert task.remaining_budget == remaining
    assert token.totalSupply() == supply
    assert row["test_accuracy"] > 0.6
    # nothing left to claim, and claiming again fails
    assert all(t.claimable(f.task_id) == [] for t in f.trainers)


def train_and_reveal(f, round_: int, trainers=None) -> None:
    trainers = f.trainers if trainers is None else trainers
    for t in trainers:
        t.train_and_commit(f.task_id)
    warp(f.cfg.phase_seconds + 1)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in trainers:
        t.reveal(f.task_id, round_)
    advance_to(f, round_, Phase.AGGREGATOR_COMMIT)


def test_two_aggregators_compute_identical_results(federation, tmp_path):
    f = federation
    train_and_reveal(f, 1)
    first = f.aggregator.compute(f.task_id, 1)
    other_store = LocalContentStore(tmp_path / "other-store")
    for t in f.trainers:  # a second aggregator with its own copy of the content
        entry = f.fed.trainer_entry(f.task_id, 1, t.address)
        other_store.put(f.store.get(entry.cid, max_bytes=1 << 26))
    task = f.fed.task(f.task_id)
    for cid in (task.global_model_cid, task.spec.validation_cid):
        other_store.put(f.store.get(cid, max_bytes=1 << 26))
    second = AggregatorNode(f.fed, f.people.deployer, other_store).compute(f.task_id, 1)
    assert first.blob == second.blob
    assert result_key(first.result) == result_key(second.result)


def test_aggregator_restarted_between_commit_and_reveal_still_reveals(federation):
    f = federation
    train_and_reveal(f, 1)
    assert f.aggregator.step(f.task_id) == "committed"
    restarted = AggregatorNode(f.fed, f.people.aggregator, f.store)  # no memory of the commit
    actions = []
    while f.fed.task(f.task_id).current_round == 1:
        actions.append(restarted.step(f.task_id))
    assert "revealed" in actions
    assert Phase(f.fed.round(f.task_id, 1).phase) == Phase.FINALIZED

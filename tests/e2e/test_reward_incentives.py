"""Lying about sample counts and splitting one training run across identities gain nothing, on a real chain
(issue 14). Each comparison runs two tasks of the same deployment from the same initial model with the same
trained updates: once honestly, once with the lie, and compares what the liar claims from the RewardVault."""

from __future__ import annotations

import numpy as np

from fedchain.protocol import Phase, TrainerStatus
from tests.support.byzantine import (
    PHASE_SECONDS,
    commit_tensors,
    create_task,
    federation,
    global_model,
    reveal_all,
    train_shard,
)
from tests.support.chain import warp
from tests.support.federation import Federation


def _run_and_claim(f: Federation, task_id: int, sends: list[tuple[int, dict, int]]) -> dict[int, int]:
    """Trainer index -> what it claimed, after each sends (tensors, claimed samples) and the round finalizes."""
    reveals = {f.people.trainers[i]: commit_tensors(f, task_id, f.people.trainers[i], t, n) for i, t, n in sends}
    if len(sends) < len(f.people.trainers):
        warp(PHASE_SECONDS + 1)  # seats left: the commit phase runs to its deadline
    reveal_all(f, task_id, 1, reveals)
    while f.fed.round(task_id, 1).phase not in (Phase.FINALIZED, Phase.FAILED):
        assert f.aggregator.step(task_id) is not None
    assert f.fed.round(task_id, 1).phase == Phase.FINALIZED
    f.aggregator.keeper.settle(task_id, 1)
    return {i: f.trainers[i].claim(task_id) for i, _, _ in sends}


def test_an_inflated_sample_count_earns_no_more_than_the_real_one(fedchain_home):
    f = federation(fedchain_home, trainers=4)
    honest_task = create_task(f, strategy="fedavg", min_trainers=2)
    trained = [train_shard(f, honest_task, i) for i in range(4)]  # same initial model: valid for both tasks
    liar = max(range(4), key=lambda i: trained[i][1])  # the largest real count: every lie is an inflation
    honest = _run_and_claim(f, honest_task, [(i, t, n) for i, (t, n) in enumerate(trained)])
    inflated = [(i, t, n * 1_000_000 if i == liar else n) for i, (t, n) in enumerate(trained)]
    lying = _run_and_claim(f, create_task(f, strategy="fedavg", min_trainers=2), inflated)
    assert honest[liar] > 0
    assert lying[liar] <= honest[liar], (lying, honest)
    assert all(lying[i] >= honest[i] for i in range(4) if i != liar)  # nobody honest loses to the lie


def test_k_jittered_identities_earn_no_more_than_one(fedchain_home):
    f = federation(fedchain_home, trainers=6)
    once_task = create_task(f, strategy="fedavg", min_trainers=2)
    trained = [train_shard(f, once_task, i) for i in range(4)]  # trainers 0-2 honest, 3 the sybil's own run
    tensors, n = trained[3]
    once = _run_and_claim(f, once_task, [(i, t, m) for i, (t, m) in enumerate(trained)])
    split_task = create_task(f, strategy="fedavg", min_trainers=2)  # the same initial model
    # the same run sent by identity 3 as it is and by identities 4 and 5 with their own 1% jitter (of its change)
    g = global_model(f, split_task)
    rng = np.random.default_rng(7)
    change = float(np.sqrt(sum(np.sum((tensors[k].astype(np.float64) - g[k]) ** 2) for k in g)))
    size = sum(v.size for v in g.values())

    def jittered() -> dict[str, np.ndarray]:
        return {k: (v + rng.normal(scale=0.01 * change / np.sqrt(size), size=v.shape)).astype(np.float32)
                for k, v in tensors.items()}

    sends = [(i, t, m) for i, (t, m) in enumerate(trained)] + [(i, jittered(), n) for i in (4, 5)]
    split = _run_and_claim(f, split_task, sends)
    assert once[3] > 0
    assert split[3] + split[4] + split[5] <= once[3], (split, once)
    # the copies were rejected and their bonds slashed: splitting cost the sybil two bonds
    assert all(f.fed.trainer_entry(split_task, 1, f.people.trainers[i].address).status == TrainerStatus.SLASHED
               for i in (4, 5))

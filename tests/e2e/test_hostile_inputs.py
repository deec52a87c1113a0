"""Hostile trainer inputs on a real chain (issue 15): whatever a trainer reveals is data. Each is a rejection with
a reason code, slashed through the RejectionSlasher, and the round finalizes for the honest trainers with a
result everyone can decode; the next round runs on it."""

from __future__ import annotations

import math

import numpy as np

from aggregator.scoring import evaluate
from aggregator.strategies import ClientUpdate, FedAvg, RoundContext
from aggregator.weights import attested_weights
from fedchain.codec import decode_model
from fedchain.manifests import MAX_REASON_MESSAGE, aggregate_details
from fedchain.protocol import Phase, TaskStatus
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


def _finish(f: Federation, task_id: int, round_: int) -> None:
    while f.fed.task(task_id).current_round == round_ and f.fed.task(task_id).status == TaskStatus.ACTIVE:
        assert f.aggregator.step(task_id) is not None
    f.aggregator.keeper.settle(task_id, round_)


def test_hostile_reveals_are_rejections_and_the_task_goes_on(fedchain_home):
    f = federation(fedchain_home, trainers=5)
    task_id = create_task(f, strategy="fedavg", rounds=2, min_trainers=2)
    honest, (not_a_cid, long_name, huge) = f.people.trainers[:2], f.people.trainers[2:]
    reveals, trained = {}, {}
    for i, account in enumerate(honest):
        trained[i] = train_shard(f, task_id, i)
        reveals[account] = commit_tensors(f, task_id, account, *trained[i])
    glob = global_model(f, task_id)
    # one extra tensor under a 0.9 MB name (just under the header limit, so it decodes): rejected, and the name
    # must not be copied into the result (a 1 MB rejection record made the result's header undecodable)
    bloated = {**trained[0][0], "x" * 900_000: np.zeros(1, np.float32)}
    reveals[long_name] = commit_tensors(f, task_id, long_name, bloated, 50)
    # every weight 1e38: finite, passes the dtype/shape checks, and under fedavg would destroy the model
    reveals[huge] = commit_tensors(f, task_id, huge, {k: np.full_like(v, 1e38) for k, v in glob.items()}, 50)
    _, digest, n = commit_tensors(f, task_id, not_a_cid, trained[1][0], 50)
    reveals[not_a_cid] = ("not-a-cid", digest, n)  # a revealed CID that is not a CID
    reveal_all(f, task_id, 1, reveals)
    _finish(f, task_id, 1)

    rnd = f.fed.round(task_id, 1)
    assert rnd.phase == Phase.FINALIZED and (rnd.accepted, rnd.rejected) == (2, 3)
    blob = f.store.get(rnd.result_cid, sha256=rnd.result_digest, max_bytes=1 << 26)
    assert int.from_bytes(blob[:8], "little") < 1 << 20  # the result's header stays far below the codec's limit
    tensors, manifest = decode_model(blob, 1 << 26)
    details = aggregate_details(manifest)
    codes = {who: details.rejected[who.address.lower()].code for who in (not_a_cid, long_name, huge)}
    assert codes == {not_a_cid: "bad_cid", long_name: "wrong_keys", huge: "absurd_update"}
    assert all(len(r.message) <= MAX_REASON_MESSAGE for r in details.rejected.values())
    slasher = f.fed.rejection_slasher
    assert all(slasher.isSlashed(task_id, 1, who.address) for who in codes)
    # the model is exactly the honest trainers' average: the huge update never reached it
    weights = attested_weights({a.address.lower(): trained[i][1] for i, a in enumerate(honest)})
    updates = [ClientUpdate(a.address.lower(), trained[i][0], weights[a.address.lower()]) for i, a in enumerate(honest)]
    expected = FedAvg().aggregate(glob, updates, RoundContext()).tensors
    assert all(np.array_equal(tensors[k], expected[k]) for k in expected)
    x, y = f.data["validation"] if "validation" in f.data else f.data["test"]
    assert math.isfinite(evaluate(f.fed.task(task_id).spec.architecture, tensors, x, y).loss)
    assert 0 < rnd.loss_micro < 10**7  # a real, finite loss (not the 0 that log-sum-exp cancellation gave)

    # the next round trains from that result and finalizes
    reveals = {a: commit_tensors(f, task_id, a, *train_shard(f, task_id, i)) for i, a in enumerate(honest)}
    warp(PHASE_SECONDS + 1)  # two of five seats taken: the commit phase runs to its deadline
    reveal_all(f, task_id, 2, reveals)
    _finish(f, task_id, 2)
    assert f.fed.round(task_id, 2).phase == Phase.FINALIZED, f.fed.round(task_id, 2)
    assert f.fed.task(task_id).status == TaskStatus.COMPLETED

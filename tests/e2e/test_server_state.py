"""Server optimizers on anvil: the momentum state travels by CID in the aggregate manifest from round to round."""

from __future__ import annotations

from aggregator.strategies import ClientUpdate, FedAvgM, RoundContext
from aggregator.weights import attested_weights
from fedchain.codec import decode_model
from fedchain.protocol import Phase
from tests.support.byzantine import commit_tensors, create_task, federation, global_model, reveal_all, train_shard


def play_round(f, task_id: int, round_: int) -> list[ClientUpdate]:
    """Every trainer's update, weighted as the committee attests it (the round's smallest claim for everyone)."""
    trained, reveals = {}, {}
    for i, account in enumerate(f.people.trainers):
        tensors, n = train_shard(f, task_id, i)
        reveals[account] = commit_tensors(f, task_id, account, tensors, n)
        trained[account.address.lower()] = (tensors, n)
    weights = attested_weights({t: n for t, (_, n) in trained.items()})
    updates = [ClientUpdate(t, tensors, weights[t]) for t, (tensors, _) in trained.items()]
    reveal_all(f, task_id, round_, reveals)
    while f.fed.task(task_id).current_round == round_ and f.fed.task(task_id).status == 1:
        assert f.aggregator.step(task_id) is not None
    assert Phase(f.fed.round(task_id, round_).phase) == Phase.FINALIZED
    return updates


def _step(strategy: FedAvgM, g: dict, updates: list, state: dict | None) -> tuple[dict, dict]:
    result = strategy.aggregate(g, updates, RoundContext(server_state=state))
    return result.tensors, result.server_state


def test_fedavgm_momentum_is_carried_between_rounds_by_cid(fedchain_home):
    f = federation(fedchain_home, trainers=3)
    strategy = FedAvgM(lr=1.0, momentum=0.5)
    task_id = create_task(f, strategy="fedavgm", params={"lr": 1.0, "momentum": 0.5}, rounds=2)
    g1 = global_model(f, task_id)
    updates1 = play_round(f, task_id, 1)
    expected1, state1 = _step(strategy, g1, updates1, None)
    g2 = global_model(f, task_id)
    assert all((g2[k] == expected1[k]).all() for k in g2)
    details = decode_model(f.store.get(f.fed.task(task_id).global_model_cid, max_bytes=1 << 26))[1].details
    ref = details["server_state"]
    assert ref["strategy"] == "fedavgm"
    stored, _ = decode_model(f.store.get(ref["cid"], sha256=bytes.fromhex(ref["sha256"]), max_bytes=1 << 26))
    assert stored.keys() == state1.keys() and all((stored[k] == state1[k]).all() for k in stored)
    updates2 = play_round(f, task_id, 2)
    with_state, _ = _step(strategy, g2, updates2, state1)
    without_state, _ = _step(strategy, g2, updates2, None)
    g3 = global_model(f, task_id)
    assert all((g3[k] == with_state[k]).all() for k in g3)  # round 2 used round 1's momentum
    assert any((g3[k] != without_state[k]).any() for k in g3)

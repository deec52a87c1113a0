"""Every attack type on anvil: free riders are rejected with a reason and slashed, model poisoning is neutralised
by the default robust rule (``robust``: norm bound + validation filter) and earns (almost) nothing."""

from __future__ import annotations

import numpy as np

from aggregator.contribution import contributions
from aggregator.scoring import evaluate
from aggregator.strategies import ClientUpdate, FedAvg, RobustAverage
from fedchain.codec import decode_model
from fedchain.commitments import ScoreTree
from fedchain.protocol import Phase
from tests.support.attacks import attack_update
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

HONEST = 9  # 13 accepted, at most 4 hostile: the filter may drop 4 and keep an honest majority
ATTACKS = ["sign_flip", "scaling", "noise", "label_flip", "zero_update", "global_replay", "replay"]
REJECTED = {"zero_update": "zero_update", "global_replay": "global_replay", "replay": "replayed_update"}


def finish_round(f, task_id: int, round_: int) -> None:
    while f.fed.task(task_id).current_round == round_ and f.fed.task(task_id).status == 1:
        assert f.aggregator.step(task_id) is not None
    f.aggregator.keeper.settle(task_id, round_)


def test_every_attack_is_rejected_or_neutralised(fedchain_home):
    f = federation(fedchain_home, trainers=HONEST + len(ATTACKS), alpha=5.0)
    # a loose update bound: the boosted update (g + 20 d) must reach the robust rule, which neutralises it (under
    # the default bound of 10 this one is rejected as absurd_update before any strategy sees it)
    task_id = create_task(f, strategy="robust", params={"byzantine": 7, "max_update_ratio": 1000}, rounds=2,
                          min_trainers=2)
    accounts = f.people.trainers
    rng = np.random.default_rng(0)
    glob = global_model(f, task_id)
    roles = ["honest"] * HONEST + ATTACKS
    trained: dict[int, tuple[dict, int]] = {}
    reveals = {}
    sent: dict[int, dict] = {}
    for i, role in enumerate(roles):
        if role == "replay":  # copies honest trainer 0's update (colluding / leaked), re-encoded as its own
            tensors, n = trained[0]
        else:
            tensors, n = train_shard(f, task_id, i, flip=role == "label_flip")
            trained[i] = (tensors, n)
        sent[i] = attack_update(role, tensors, glob, rng)
        reveals[accounts[i]] = commit_tensors(f, task_id, accounts[i], sent[i], n)
    slasher = f.fed.rejection_slasher
    stakes = {a.address: f.fed.staking.stakeOf(a.address) for a in accounts}
    reveal_all(f, task_id, 1, reveals)
    finish_round(f, task_id, 1)

    rnd = f.fed.round(task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED
    blob = f.store.get(rnd.result_cid, sha256=bytes(rnd.result_digest), max_bytes=1 << 26)
    new_model, manifest = decode_model(blob)
    details = manifest.details
    assert ScoreTree(details["scores"], details["weights"]).root == bytes(rnd.scores_root)
    address = {role: accounts[i].address.lower() for i, role in enumerate(roles) if role != "honest"}
    honest = [accounts[i].address.lower() for i in range(HONEST)]
    # free riders: rejected with the reason, score 0, slashed by the RejectionSlasher
    for role, code in REJECTED.items():
        assert details["rejected"][address[role]]["code"] == code, details["rejected"]
        assert details["scores"][address[role]] == 0
        who = accounts[roles.index(role)].address
        assert slasher.isSlashed(task_id, 1, who)
        cut = f.fed.trainer_bond(task_id) * slasher.slashBps() // 10_000  # of the round's bond
        assert cut > 0 and f.fed.staking.stakeOf(who) == stakes[who] - cut
    assert (rnd.accepted, rnd.rejected) == (HONEST + 4, 3), {a: r["code"] for a, r in details["rejected"].items()}
    # the validation filter may drop 7 - 3 = 4 updates (f counts the free riders already rejected; 13 - 4 - 4 > 4)
    guard = details["robust"]
    assert guard["exclusion_budget"] == 4, guard
    assert {address["sign_flip"], address["noise"], address["label_flip"]} <= set(guard["excluded"]), guard
    assert not set(guard["excluded"]) & set(honest), guard
    # poisoned updates: accepted but worth (almost) nothing; honest ones earn the rewards
    scores = details["scores"]
    for role in ("sign_flip", "noise", "label_flip"):
        assert scores[address[role]] < min(scores[h] for h in honest) / 4, (role, details["contributions"])
    # a boosted honest update is scored by its direction alone: its share of the round is what the same trainer's
    # unboosted update would have earned (up to the median's shift when its length crosses it), never more
    assert details["contributions"][address["scaling"]]["clipped"]
    booster, weights = roles.index("scaling"), details["weights"]
    validation = f.aggregator.computer.validation_set(f.fed.task(task_id), 1)
    accepted = [(i, a.address.lower()) for i, a in enumerate(accounts) if a.address.lower() not in details["rejected"]]
    unboosted = contributions(f.fed.task(task_id).spec.architecture, glob, [
        ClientUpdate(a, trained[i][0] if i == booster else sent[i], weights[a]) for i, a in accepted],
        validation.x, validation.y)

    def share(score_of: dict[str, int], who: str) -> float:
        return score_of[who] * weights[who] / sum(score_of[a] * weights[a] for _, a in accepted)

    boosted_share = share(scores, address["scaling"])
    honest_share = share({a: c.score for a, c in unboosted.items()}, address["scaling"])
    assert boosted_share <= honest_share * 1.05, (boosted_share, honest_share)
    assert all(f.fed.staking.stakeOf(accounts[i].address) == stakes[accounts[i].address] for i in range(HONEST))
    # the updates that carry no useful training earn under 5% of the round together (attested weights)
    weights = details["weights"]
    poisoners = [address[r] for r in address if r != "scaling"]
    assert sum(scores[a] * weights[a] for a in poisoners) / rnd.total_weight < 0.05
    # the model survived: as good as the same rule on the honest updates alone (evaluated on the validation set)
    x_val, y_val = validation.x, validation.y
    honest_updates = [ClientUpdate(honest[i], trained[i][0], trained[i][1]) for i in range(HONEST)]
    arch = f.fed.task(task_id).spec.architecture
    reference = evaluate(arch, FedAvg().aggregate(glob, honest_updates).tensors, x_val, y_val).accuracy
    same_rule_honest = evaluate(arch, RobustAverage().aggregate(glob, honest_updates).tensors, x_val, y_val).accuracy
    poisoned_fedavg = FedAvg().aggregate(glob, [
        ClientUpdate(accounts[i].address.lower(), attack_update(r, trained[i][0], glob, np.random.default_rng(0)),
                     trained[i][1]) for i, r in enumerate(roles[:HONEST + 4])]).tensors
    assert evaluate(arch, new_model, x_val, y_val).accuracy >= same_rule_honest - 0.03
    assert evaluate(arch, poisoned_fedavg, x_val, y_val).accuracy < reference - 0.05  # the attacks are real

    # round 2: an earlier round's update replayed (re-encoded for this round) is rejected too
    glob2 = global_model(f, task_id)
    reveals = {}
    for i in range(HONEST):
        tensors, n = train_shard(f, task_id, i)
        reveals[accounts[i]] = commit_tensors(f, task_id, accounts[i], tensors, n)
    replayer = accounts[HONEST]  # the sign flipper (not slashed, still staked enough)
    reveals[replayer] = commit_tensors(f, task_id, replayer, trained[1][0], trained[1][1])
    assert glob2.keys() == trained[1][0].keys()
    warp(PHASE_SECONDS + 1)
    reveal_all(f, task_id, 2, reveals)
    finish_round(f, task_id, 2)
    rnd2 = f.fed.round(task_id, 2)
    details2 = decode_model(f.store.get(rnd2.result_cid, max_bytes=1 << 26))[1].details
    rejected = details2["rejected"][replayer.address.lower()]
    assert rejected["code"] == "replayed_update" and "round 1" in rejected["message"]
    assert f.fed.rejection_slasher.isSlashed(task_id, 2, replayer.address)

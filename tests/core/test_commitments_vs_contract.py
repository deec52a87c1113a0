"""Python commitments, result keys, score leaves and Merkle proofs against the deployed TaskManager.

Run with ``ape test tests/core/test_commitments_vs_contract.py`` (needs anvil and the compiled contracts).
"""

from __future__ import annotations

import hashlib
import random

import ape
import pytest

from fedchain.ape.deploy import deploy_protocol
from fedchain.cid import cid_for_bytes
from fedchain.commitments import (
    AggregateResult,
    ScoreTree,
    aggregator_commitment,
    ape_signer,
    derive_salt,
    result_key,
    score_leaf,
    total_weight,
    trainer_commitment,
)
from tests.support.specs import spec

FED = 10**18
UINT32, UINT64, UINT256 = 2**32 - 1, 2**64 - 1, 2**256 - 1


@pytest.fixture(scope="module")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def token(project, admin):
    return project.FedToken.deploy(admin, admin, sender=admin)


@pytest.fixture(scope="module")
def staking(project, admin, token, accounts):
    return project.Staking.deploy(token, accounts[1], 3600, admin, sender=admin)


@pytest.fixture(scope="module")
def tm(project, admin, token, staking):
    """A bare TaskManager: its pure helpers need no connected committee or vault."""
    return project.TaskManager.deploy(token, staking, admin, sender=admin)


def _b32(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def _address(rng: random.Random) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(rng.randbytes(20))


def _cases(n: int, seed: int) -> list[random.Random]:
    return [random.Random(seed * 1000 + i) for i in range(n)]


@pytest.mark.parametrize("rng", _cases(8, 1))
def test_trainer_commitment_matches_contract(tm, rng: random.Random) -> None:
    args = (
        _address(rng),
        rng.choice([1, rng.randrange(UINT256), UINT256]),
        rng.choice([1, rng.randrange(1000), UINT256]),
        _b32(rng),
        rng.choice([1, rng.randrange(UINT64), UINT64]),
        _b32(rng),
    )
    assert bytes(tm.computeTrainerCommitment(*args)) == trainer_commitment(*args)


def _result(rng: random.Random) -> AggregateResult:
    cid = rng.choice(
        [
            cid_for_bytes(rng.randbytes(40)),
            "x" * 128,
            "Qm" + "z" * 44,
            "é",  # multi-byte UTF-8: keccak is over the UTF-8 bytes
        ]
    )
    return AggregateResult(
        result_cid=cid,
        result_digest=_b32(rng),
        scores_root=_b32(rng),
        total_weight=rng.choice([0, rng.randrange(10**30), UINT256]),
        accepted=rng.choice([0, rng.randrange(100), UINT32]),
        rejected=rng.choice([0, rng.randrange(100), UINT32]),
        accuracy_ppm=rng.choice([0, rng.randrange(1_000_001), UINT32]),
        loss_micro=rng.choice([0, rng.randrange(10**9), UINT64]),
    )


@pytest.mark.parametrize("rng", _cases(8, 2))
def test_result_key_and_aggregator_commitment_match_contract(tm, rng: random.Random) -> None:
    result = _result(rng)
    key = result_key(result)
    assert bytes(tm.computeResultKey(result.as_tuple())) == key
    args = (_address(rng), rng.randrange(1, 50), rng.randrange(1, 50), key, _b32(rng))
    assert bytes(tm.computeAggregatorCommitment(*args)) == aggregator_commitment(*args)


@pytest.mark.parametrize("rng", _cases(6, 3))
def test_score_leaf_matches_contract(tm, rng: random.Random) -> None:
    trainer = _address(rng)
    for score in (0, 1, rng.randrange(1_000_001), 1_000_000, UINT32):
        weight = rng.choice([0, 1, rng.randrange(UINT64), UINT64])
        assert bytes(tm.computeScoreLeaf(trainer, score, weight)) == score_leaf(trainer, score, weight)


def test_ape_signer_salt_is_deterministic(accounts, tm) -> None:
    signer = ape_signer(accounts[5])
    salt = derive_salt(signer, "trainer", 31337, tm.address, 1, 1)
    assert len(salt) == 32
    assert salt == derive_salt(ape_signer(accounts[5]), "trainer", 31337, tm.address, 1, 1)
    assert salt != derive_salt(ape_signer(accounts[6]), "trainer", 31337, tm.address, 1, 1)
    assert salt != derive_salt(signer, "trainer", 31337, tm.address, 1, 2)


def _task_params(budget: int, n_trainers: int) -> tuple:
    return spec(architecture="mlp:4-8-3", initial_model_cid=cid_for_bytes(b"initial"),
                initial_model_digest=hashlib.sha256(b"initial").digest(), validation_cid=cid_for_bytes(b"validation"),
                validation_digest=hashlib.sha256(b"validation").digest(), reward_budget=budget, num_rounds=1,
                min_trainers=n_trainers, max_trainers=n_trainers, commit_duration=3600, reveal_duration=3600,
                aggregator_commit_duration=3600, aggregator_reveal_duration=3600, min_trainer_stake=FED,
                min_aggregator_stake=FED, dp_epsilon_milli=0, dp_delta_e18=0).to_chain()


@pytest.mark.parametrize("n_trainers", [1, 2, 3, 5, 7])
def test_python_merkle_proofs_are_accepted_by_claim_reward(accounts, chain, n_trainers):
    """A full round whose scoresRoot is a Python ScoreTree of (trainer, score, weight) leaves; every trainer
    claims from the RewardVault with a Python proof, and only its own attested weight is accepted."""
    admin, sponsor, aggregator = accounts[0], accounts[2], accounts[3]
    fed = deploy_protocol(admin, aggregators=[aggregator.address], save=False)
    tm, token = fed.tasks, fed.token
    trainers = list(accounts[4 : 4 + n_trainers])
    for who in (*trainers, aggregator):
        token.mint(who, 10 * FED, sender=admin)
        token.approve(fed.staking, 10 * FED, sender=who)
        fed.staking.stake(10 * FED, sender=who)
    rng = random.Random(n_trainers)
    budget = 1_000_000 * FED + 7
    token.mint(sponsor, budget, sender=admin)
    token.approve(tm, budget, sender=sponsor)
    tm.createTask(_task_params(budget, n_trainers), sender=sponsor)
    task_id = tm.taskCount()
    chain_id = chain.chain_id

    samples = {t.address: rng.randrange(1, 5000) for t in trainers}
    for t in trainers:
        digest = hashlib.sha256(t.address.encode()).digest()
        salt = derive_salt(ape_signer(t), "trainer", chain_id, tm.address, task_id, 1)
        commitment = trainer_commitment(t, task_id, 1, digest, samples[t.address], salt)
        tm.commitUpdate(task_id, 1, commitment, sender=t)
    tm.advance(task_id, sender=sponsor)
    for t in trainers:
        digest = hashlib.sha256(t.address.encode()).digest()
        salt = derive_salt(ape_signer(t), "trainer", chain_id, tm.address, task_id, 1)
        tm.revealUpdate(task_id, cid_for_bytes(digest), digest, samples[t.address], salt, sender=t)
    tm.advance(task_id, sender=sponsor)

    scores = {t.address: rng.choice([0, 1, rng.randrange(1_000_001), 1_000_000]) for t in trainers}
    scores[trainers[-1].address] = 1_000_000  # at least one positive weight, so the round has a budget
    weights = {t: (samples[t] if s else 0) for t, s in scores.items()}
    tree = ScoreTree(scores, weights)
    weight = total_weight(scores, weights)
    result = AggregateResult(
        result_cid=cid_for_bytes(b"aggregate"),
        result_digest=hashlib.sha256(b"aggregate").digest(),
        scores_root=tree.root,
        total_weight=weight,
        accepted=sum(1 for s in scores.values() if s),
        rejected=sum(1 for s in scores.values() if not s),
        accuracy_ppm=900_000,
        loss_micro=250_000,
    )
    agg_salt = derive_salt(ape_signer(aggregator), "aggregator", chain_id, tm.address, task_id, 1)
    commitment = aggregator_commitment(aggregator, task_id, 1, result_key(result), agg_salt)
    fed.committee.commitAggregate(task_id, commitment, sender=aggregator)  # the only approved one: drawn
    tm.advance(task_id, sender=sponsor)
    fed.committee.revealAggregate(task_id, result.as_tuple(), agg_salt, sender=aggregator)
    tm.advance(task_id, sender=sponsor)

    rnd = tm.getRound(task_id, 1)
    assert bytes(rnd.scoresRoot) == tree.root
    assert rnd.roundBudget == budget  # a single round gets the whole budget
    trainers_part = fed.vault.splitOf(task_id, 1)[0]

    paid = 0
    for t in trainers:
        score, w, proof = scores[t.address], weights[t.address], tree.proof(t)
        with ape.reverts(fed.vault.InvalidProof):
            fed.vault.claimReward(task_id, 1, (score + 1) % 1_000_001 or 2, w, proof, sender=t)
        with ape.reverts(fed.vault.InvalidProof):  # an inflated weight is not the attested one
            fed.vault.claimReward(task_id, 1, score or 1, w + 1, proof, sender=t)
        other = next((o for o in trainers if o != t and scores[o.address]), None)
        if other is not None:  # someone else's leaf
            with ape.reverts(fed.vault.InvalidProof):
                fed.vault.claimReward(task_id, 1, scores[other.address], weights[other.address], tree.proof(other),
                                      sender=t)
        if score == 0:
            with ape.reverts(fed.vault.NothingToClaim):
                fed.vault.claimReward(task_id, 1, score, w, proof, sender=t)
            continue
        before = token.balanceOf(t)
        fed.vault.claimReward(task_id, 1, score, w, proof, sender=t)
        expected = trainers_part * score * w // weight
        assert token.balanceOf(t) - before == expected
        paid += expected
    assert paid <= trainers_part

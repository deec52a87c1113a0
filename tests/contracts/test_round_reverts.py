"""TaskManager: every revert path of trainer and aggregator commits and reveals."""

from eth_utils import keccak

from tests.support.contracts import (
    FED,
    PH_AGG_COMMIT,
    PH_AGG_REVEAL,
    PH_TRAINER_COMMIT,
    PH_TRAINER_REVEAL,
    ZERO32,
    aggregator_commitment,
    result_key,
    reverts_with,
    salt_for,
    trainer_commitment,
)


def test_commit_update_reverts(fed, accounts):
    tm = fed.tm
    t0, t1, t2, t3 = fed.trainers[:4]
    tid = fed.create_task()
    with reverts_with("ZeroCommitment"):
        tm.commitUpdate(tid, ZERO32, sender=t0)
    with reverts_with("InsufficientStake", available=0, required=100 * FED):
        tm.commitUpdate(tid, keccak(text="c"), sender=fed.outsider)
    # stake just below the minimum
    fed.staking.requestUnstake(901 * FED, sender=t3)
    with reverts_with("InsufficientStake", available=99 * FED, required=100 * FED):
        fed.commit(tid, t3)
    fed.commit(tid, t0)
    with reverts_with("AlreadyCommitted"):
        fed.commit(tid, t0)
    fed.commit(tid, t1)
    fed.commit(tid, t2)
    with reverts_with("TrainerLimitReached"):
        fed.commit(tid, fed.trainers[4])
    assert fed.round_of(tid).committed == 3
    tm.advance(tid, sender=fed.outsider)
    with reverts_with("WrongPhase", expected=PH_TRAINER_COMMIT, actual=PH_TRAINER_REVEAL):
        fed.commit(tid, fed.trainers[4])


def test_reveal_update_reverts(fed):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    with reverts_with("WrongPhase", expected=PH_TRAINER_REVEAL, actual=PH_TRAINER_COMMIT):
        fed.reveal(tid, t0)
    fed.commit(tid, t0, 10)
    fed.commit(tid, t1, 20)
    # t2 commits to zero samples: its reveal can never succeed
    u2 = fed.update_of(t2, tid, 1, 0)
    tm.commitUpdate(tid, trainer_commitment(t2, tid, 1, u2["digest"], 0, u2["salt"]), sender=t2)
    tm.advance(tid, sender=fed.outsider)

    with reverts_with("NotCommitted"):
        fed.reveal(tid, fed.trainers[3])
    u = fed.update_of(t0, tid, 1, 10)
    with reverts_with("CommitmentMismatch"):
        tm.revealUpdate(tid, u["cid"], u["digest"], 11, u["salt"], sender=t0)
    with reverts_with("CommitmentMismatch"):
        tm.revealUpdate(tid, u["cid"], u["digest"], 10, keccak(u["salt"]), sender=t0)
    with reverts_with("CommitmentMismatch"):
        tm.revealUpdate(tid, u["cid"], keccak(u["digest"]), 10, u["salt"], sender=t0)
    # another trainer cannot reveal t0's values: the commitment binds the address
    with reverts_with("CommitmentMismatch"):
        tm.revealUpdate(tid, u["cid"], u["digest"], 10, u["salt"], sender=t1)
    with reverts_with("InvalidCid"):
        tm.revealUpdate(tid, "", u["digest"], 10, u["salt"], sender=t0)
    with reverts_with("InvalidCid"):
        tm.revealUpdate(tid, "b" * 129, u["digest"], 10, u["salt"], sender=t0)
    with reverts_with("ZeroSamples"):
        tm.revealUpdate(tid, u2["cid"], u2["digest"], 0, u2["salt"], sender=t2)
    tm.revealUpdate(tid, "b" * 128, u["digest"], 10, u["salt"], sender=t0)  # the cid is not committed to
    assert tm.getTrainerEntry(tid, 1, t0).cid == "b" * 128
    with reverts_with("AlreadyRevealed"):
        fed.reveal(tid, t0, 10)
    assert fed.round_of(tid).revealed == 1


def _to_aggregator_commit(fed, **overrides):
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(**overrides)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    assert fed.round_of(tid).phase == PH_AGG_COMMIT
    result, _ = fed.make_result(tid, 1, {t0: 700_000, t1: 300_000}, samples)
    return tid, result


def test_commit_aggregate_reverts(fed):
    tm = fed.tm
    a0, a1, a2 = fed.aggregators
    tid = fed.create_task()
    result, _ = fed.make_result(tid, 1, {fed.trainers[0]: 1}, {fed.trainers[0]: 1})
    with reverts_with("WrongPhase", expected=PH_AGG_COMMIT, actual=PH_TRAINER_COMMIT):
        fed.agg_commit(tid, a0, result)

    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3, minAggregatorStake=5_000 * FED)
    with reverts_with(
        "AccessControlUnauthorizedAccount", account=fed.trainers[0].address, neededRole=tm.AGGREGATOR_ROLE()
    ):
        tm.commitAggregate(tid, keccak(text="c"), sender=fed.trainers[0])
    with reverts_with("ZeroCommitment"):
        tm.commitAggregate(tid, ZERO32, sender=a0)
    fed.staking.requestUnstake(1, sender=a2)
    with reverts_with("InsufficientStake", available=5_000 * FED - 1, required=5_000 * FED):
        fed.agg_commit(tid, a2, result)
    fed.agg_commit(tid, a0, result)
    with reverts_with("AlreadyCommitted"):
        fed.agg_commit(tid, a0, result)
    # the committee is full
    fed.tm.grantRole(tm.AGGREGATOR_ROLE(), fed.outsider, sender=fed.admin)
    fed.token.mint(fed.outsider, 5_000 * FED, sender=fed.admin)
    fed.token.approve(fed.staking, 5_000 * FED, sender=fed.outsider)
    fed.staking.stake(5_000 * FED, sender=fed.outsider)
    fed.agg_commit(tid, a1, result)
    fed.agg_commit(tid, fed.outsider, result)
    with reverts_with("AggregatorLimitReached"):
        tm.commitAggregate(tid, keccak(text="c"), sender=a2)
    assert fed.round_of(tid).aggCommitted == 3


def test_reveal_aggregate_reverts(fed):
    tm = fed.tm
    a0, a1, a2 = fed.aggregators
    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3)
    with reverts_with("WrongPhase", expected=PH_AGG_REVEAL, actual=PH_AGG_COMMIT):
        fed.agg_reveal(tid, a0, result)
    fed.agg_commit(tid, a0, result)
    fed.agg_commit(tid, a1, result)
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid).phase == PH_AGG_REVEAL

    with reverts_with("AccessControlUnauthorizedAccount", account=fed.outsider.address):
        tm.revealAggregate(tid, result.as_tuple(), ZERO32, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        fed.agg_reveal(tid, a2, result)
    salt = salt_for("aggregator", a0.address, tid, 1)
    with reverts_with("CommitmentMismatch"):
        tm.revealAggregate(tid, result.as_tuple(), keccak(salt), sender=a0)
    for field, value in [
        ("totalWeight", result.totalWeight + 1),
        ("resultCid", result.resultCid + "x"),
        ("accuracyPpm", 1),
        ("lossMicro", 1),
        ("rejected", 9),
    ]:
        tampered = type(result)(*result.as_tuple())
        setattr(tampered, field, value)
        with reverts_with("CommitmentMismatch"):
            tm.revealAggregate(tid, tampered.as_tuple(), salt, sender=a0)
    # an empty / oversized cid is refused before the commitment check
    for cid in ("", "b" * 129):
        bad = type(result)(*result.as_tuple())
        bad.resultCid = cid
        with reverts_with("InvalidCid"):
            tm.revealAggregate(tid, bad.as_tuple(), salt, sender=a0)
    fed.agg_reveal(tid, a0, result)
    with reverts_with("AlreadyRevealed"):
        fed.agg_reveal(tid, a0, result)
    assert tm.resultVotes(tid, 1, result_key(result)) == 1
    assert fed.round_of(tid).acceptedKey == ZERO32  # 1 of 2 needed
    # a revoked aggregator can no longer reveal
    tm.revokeRole(tm.AGGREGATOR_ROLE(), a1, sender=fed.admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=a1.address):
        fed.agg_reveal(tid, a1, result)


def test_aggregator_commitment_binds_address_and_round(fed):
    tm = fed.tm
    a0, a1, _ = fed.aggregators
    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3)
    salt = salt_for("aggregator", a0.address, tid, 1)
    key = result_key(result)
    # a1 copies a0's commitment: it cannot reveal it as its own
    tm.commitAggregate(tid, aggregator_commitment(a0, tid, 1, key, salt), sender=a1)
    fed.agg_commit(tid, a0, result)
    fed.advance_after_deadline(tid)
    with reverts_with("CommitmentMismatch"):
        tm.revealAggregate(tid, result.as_tuple(), salt, sender=a1)
    fed.agg_reveal(tid, a0, result)

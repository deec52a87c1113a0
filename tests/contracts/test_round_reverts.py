"""TaskManager: every revert path of trainer and aggregator commits and reveals."""

from eth_utils import keccak

from tests.support.contracts import (
    FED,
    PH_AGG_COMMIT,
    PH_AGG_REVEAL,
    PH_TRAINER_COMMIT,
    PH_TRAINER_REVEAL,
    TR_COMMITTED,
    TR_SLASHED,
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
        tm.commitUpdate(tid, 1, ZERO32, sender=t0)
    for stale in (0, 2):  # a commitment names its round: never one that is not current
        with reverts_with("StaleRound", current=1, committedFor=stale):
            tm.commitUpdate(tid, stale, keccak(text="c"), sender=t0)
    with reverts_with("InsufficientStake", available=0, required=100 * FED):
        tm.commitUpdate(tid, 1, keccak(text="c"), sender=fed.outsider)
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
    # the stake backing a commitment is reserved: the same stake cannot back seats in other tasks too
    fed.staking.requestUnstake(850 * FED, sender=t1)  # 150 left, 100 of it reserved
    other = fed.create_task()
    with reverts_with("InsufficientStake", available=50 * FED, required=100 * FED):
        fed.commit(other, t1)
    with reverts_with("InsufficientStake"):  # nor can it be unstaked
        fed.staking.requestUnstake(51 * FED, sender=t1)
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
    tm.commitUpdate(tid, 1, trainer_commitment(t2, tid, 1, u2["digest"], 0, u2["salt"]), sender=t2)
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
    assert fed.round_of(tid).revealed == 0
    rcpt = tm.revealUpdate(tid, "b" * 128, u["digest"], 10, u["salt"], sender=t0)  # the cid is not committed to
    assert [log.cid for log in rcpt.decode_logs(tm.UpdateRevealed)] == ["b" * 128]
    assert tm.getTrainerEntry(tid, 1, t0).numSamples == 10
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
    committee = fed.committee
    a0, a1, a2 = fed.aggregators
    tid = fed.create_task()
    result, _ = fed.make_result(tid, 1, {fed.trainers[0]: 1}, {fed.trainers[0]: 1})
    with reverts_with("WrongPhase", expected=PH_AGG_COMMIT, actual=PH_TRAINER_COMMIT):
        fed.agg_commit(tid, a0, result)
    with reverts_with("WrongPhase", expected=PH_AGG_COMMIT, actual=PH_TRAINER_COMMIT):
        committee.draw(tid, 1, sender=fed.outsider)

    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3, minAggregatorStake=5_000 * FED)
    with reverts_with("ZeroCommitment"):
        committee.commitAggregate(tid, ZERO32, sender=a0)
    with reverts_with("NotInCommittee"):  # not an approved aggregator: never drawn
        committee.commitAggregate(tid, keccak(text="c"), sender=fed.trainers[0])
    # an approved aggregator whose free stake does not cover the bond is not eligible for the draw
    fed.staking.requestUnstake(1, sender=a2)
    members = fed.draw(tid)
    assert sorted(m.address for m in members) == sorted([a0.address, a1.address])
    with reverts_with("NotInCommittee"):
        fed.agg_commit(tid, a2, result)
    fed.agg_commit(tid, a0, result)
    with reverts_with("AlreadyCommitted"):
        fed.agg_commit(tid, a0, result)
    # a drawn member whose stake moved after the draw cannot reserve its bond
    fed.staking.requestUnstake(1, sender=a1)
    with reverts_with("InsufficientStake", available=5_000 * FED - 1, required=5_000 * FED):
        fed.agg_commit(tid, a1, result)
    assert committee.tally(tid, 1)[:4] == (True, 2, 1, 0)
    assert committee.getAggregatorEntry(tid, 1, a0).bond == 5_000 * FED
    assert fed.staking.reservedOf(a0) == 5_000 * FED


def test_reveal_aggregate_reverts(fed):
    committee = fed.committee
    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3)
    a0, a1, a2 = fed.draw(tid)
    with reverts_with("WrongPhase", expected=PH_AGG_REVEAL, actual=PH_AGG_COMMIT):
        fed.agg_reveal(tid, a0, result)
    fed.agg_commit(tid, a0, result)
    fed.agg_commit(tid, a1, result)
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid).phase == PH_AGG_REVEAL

    with reverts_with("NotCommitted"):
        committee.revealAggregate(tid, result.as_tuple(), ZERO32, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        fed.agg_reveal(tid, a2, result)
    salt = salt_for("aggregator", a0.address, tid, 1)
    with reverts_with("CommitmentMismatch"):
        committee.revealAggregate(tid, result.as_tuple(), keccak(salt), sender=a0)
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
            committee.revealAggregate(tid, tampered.as_tuple(), salt, sender=a0)
    # an empty / oversized cid is refused before the commitment check
    for cid in ("", "b" * 129):
        bad = type(result)(*result.as_tuple())
        bad.resultCid = cid
        with reverts_with("InvalidCid"):
            committee.revealAggregate(tid, bad.as_tuple(), salt, sender=a0)
    fed.agg_reveal(tid, a0, result)
    with reverts_with("AlreadyRevealed"):
        fed.agg_reveal(tid, a0, result)
    assert committee.resultVotes(tid, 1, result_key(result)) == 1
    assert committee.tally(tid, 1)[4] == ZERO32  # 1 of 2 needed


def test_revoking_an_aggregator_between_commit_and_reveal_does_not_get_it_slashed(fed):
    """Issue 15: the approval gates the draw only; a drawn member keeps its seat (and its duty to reveal)."""
    committee = fed.committee
    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3)
    a0, a1, a2 = fed.draw(tid)
    for member in (a0, a1, a2):
        fed.agg_commit(tid, member, result)
    fed.tm.advance(tid, sender=fed.outsider)  # every seat committed: the phase closes early
    committee.revokeRole(committee.AGGREGATOR_ROLE(), a1, sender=fed.admin)
    for member in (a0, a1, a2):
        fed.agg_reveal(tid, member, result)
    fed.finish_round(tid)
    with reverts_with("NotSlashable"):
        committee.slashAggregator(tid, 1, a1, sender=fed.outsider)
    fed.vault.claimAggregatorReward(tid, 1, sender=a1)
    assert fed.staking.reservedOf(a1) == 0
    # and it is no longer drawn afterwards
    tid2, _ = _to_aggregator_commit(fed, aggregatorQuorum=1, maxAggregators=1)
    assert a1 not in fed.draw(tid2) and committee.approvedCount() == 2
    committee.grantRole(committee.AGGREGATOR_ROLE(), a1, sender=fed.admin)


def test_aggregator_commitment_binds_address_and_round(fed):
    committee = fed.committee
    tid, result = _to_aggregator_commit(fed, aggregatorQuorum=2, maxAggregators=3)
    a0, a1, _ = fed.draw(tid)
    salt = salt_for("aggregator", a0.address, tid, 1)
    key = result_key(result)
    # a1 copies a0's commitment: it cannot reveal it as its own
    committee.commitAggregate(tid, aggregator_commitment(a0, tid, 1, key, salt), sender=a1)
    fed.agg_commit(tid, a0, result)
    fed.advance_after_deadline(tid)
    with reverts_with("CommitmentMismatch"):
        committee.revealAggregate(tid, result.as_tuple(), salt, sender=a1)
    fed.agg_reveal(tid, a0, result)


def test_reveal_refuses_more_samples_than_the_task_allows(fed):
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(maxSamples=500)
    fed.commit(tid, t0, 500)
    fed.commit(tid, t1, 501)
    fed.advance_after_deadline(tid)
    fed.reveal(tid, t0, 500)
    with reverts_with("TooManySamples", maxSamples=500, numSamples=501):
        fed.reveal(tid, t1, 501)


def test_a_commitment_cannot_pose_as_a_revealed_word(fed):
    """Storage packs status, sample count and commitment into one word: a trainer choosing a commitment whose
    low bits spell "Revealed, 5 samples" is still only committed, and cannot claim, skip the reveal or escape
    the non-reveal slash."""
    tm = fed.tm
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(minTrainers=1, maxTrainers=2)
    forged = ((0xAB << 240) | (5 << 16) | 2).to_bytes(32, "big")  # numSamples 5, status Revealed in the low bits
    tm.commitUpdate(tid, 1, forged, sender=t0)
    fed.commit(tid, t1)
    e = tm.getTrainerEntry(tid, 1, t0)
    kept = (int.from_bytes(forged, "big") & ~0xFFFF).to_bytes(32, "big")  # the status byte is the contract's
    assert (e.status, e.numSamples, bytes(e.commitment)) == (TR_COMMITTED, 0, kept)
    assert fed.round_of(tid).revealed == 0
    with reverts_with("AlreadyCommitted"):
        tm.commitUpdate(tid, 1, forged, sender=t0)
    tm.advance(tid, sender=fed.outsider)
    with reverts_with("CommitmentMismatch"):  # nothing it can reveal hashes to the forged word
        tm.revealUpdate(tid, "bafyforged", forged, 5, forged, sender=t0)
    fed.reveal(tid, t1)
    fed.advance_after_deadline(tid)
    tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    e = tm.getTrainerEntry(tid, 1, t0)
    assert (e.status, e.numSamples, e.bond) == (TR_SLASHED, 0, 0)

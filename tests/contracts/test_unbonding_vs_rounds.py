"""Unbonding cannot outrun a round: a commit locks the committer's stake (Staking.extendLock) until
`unbondingDelay` after the round's scheduled end, so a trainer or aggregator that commits and unstakes at once
is still slashed in full (docs/PROTOCOL.md, "Stake locks")."""

import pytest

from tests.support.contracts import (
    AGGREGATOR_STAKE,
    FED,
    HOUR,
    PH_AGG_COMMIT,
    PH_FINALIZED,
    TRAINER_STAKE,
    assert_event,
    events,
    label,
    reverts_with,
)

SHORT_DELAY = 60  # far shorter than a round of four one-hour phases: the window the old contracts left open


@pytest.fixture
def short(fed):
    fed.staking.setUnbondingDelay(SHORT_DELAY, sender=fed.admin)
    return fed


def _at(fed, timestamp):
    """The next transaction runs at ``timestamp``."""
    fed.chain.pending_timestamp = timestamp


def _aggregate(fed, tid, samples, to_deadline: bool):
    """One aggregator commits and reveals the honest result; AggregatorReveal ends at its deadline or early."""
    rnd = fed.tm.getTask(tid).currentRound
    honest, _ = fed.make_result(tid, rnd, {t: 1 for t in samples}, samples)
    fed.aggregator_phases(tid, {fed.aggregators[0]: honest})
    rcpt = fed.advance_after_deadline(tid) if to_deadline else fed.finish_round(tid)
    assert fed.round_of(tid, rnd).phase == PH_FINALIZED
    return rcpt


def test_committed_trainer_cannot_unbond_out_of_a_slash(short):
    fed, staking, tm = short, short.staking, short.tm
    t0, t1, cheat = fed.trainers[:3]
    tid = fed.create_task()
    round_end = fed.round_of(tid).phaseDeadline + 3 * HOUR  # commit deadline + reveal + agg commit + agg reveal
    rcpt = fed.commit(tid, cheat)
    assert_event(rcpt, staking.LockExtended, account=cheat.address, until=round_end + SHORT_DELAY)
    assert staking.lockedUntil(cheat) == round_end + SHORT_DELAY
    fed.commit(tid, t0)
    fed.commit(tid, t1)

    # the escape: unstake everything right after committing and withdraw once the (short) delay passed
    rcpt = staking.requestUnstake(TRAINER_STAKE, sender=cheat)
    release = staking.unbondingOf(cheat)[1]
    assert release == rcpt.timestamp + SHORT_DELAY < round_end
    _at(fed, release)
    with reverts_with("StakeLocked", lockedUntil=round_end + SHORT_DELAY):
        staking.withdraw(sender=cheat)

    # the round goes on; the cheat never reveals and is slashed in full from its unbonding bucket
    tm.advance(tid, sender=fed.outsider)  # every trainer committed: the commit phase ends early
    fed.reveal(tid, t0)
    fed.reveal(tid, t1)
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid).phase == PH_AGG_COMMIT
    penalty = TRAINER_STAKE * tm.trainerSlashBps() // 10_000
    before = fed.token.balanceOf(fed.treasury)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, cheat, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=cheat, amount=penalty)
    assert fed.token.balanceOf(fed.treasury) == before + penalty
    assert staking.unbondingOf(cheat)[0] == TRAINER_STAKE - penalty

    # the rest comes out once the lock expired, not a second earlier
    _at(fed, round_end + SHORT_DELAY - 1)
    with reverts_with("StakeLocked", lockedUntil=round_end + SHORT_DELAY):
        staking.withdraw(sender=cheat)
    _at(fed, round_end + SHORT_DELAY)
    rcpt = staking.withdraw(sender=cheat)
    assert_event(rcpt, staking.Withdrawn, account=cheat.address, amount=TRAINER_STAKE - penalty)
    fed.assert_conserved()


def test_rejected_trainer_cannot_unbond_out_of_a_slash(short, project):
    """The slash that comes latest: RejectionSlasher needs the round Finalized (all four phases)."""
    fed, staking = short, short.staking
    slasher = fed.admin.deploy(project.RejectionSlasher, fed.tm, staking, fed.admin, 10_000)  # takes it all
    staking.grantRole(staking.SLASHER_ROLE(), slasher, sender=fed.admin)
    cheat, t1 = fed.trainers[:2]
    samples = {cheat: 10, t1: 20}
    tid = fed.create_task()
    round_end = fed.round_of(tid).phaseDeadline + 3 * HOUR
    fed.commit(tid, cheat, 10)
    staking.requestUnstake(TRAINER_STAKE, sender=cheat)  # everything, right after committing
    fed.commit(tid, t1, 20)
    fed.advance_after_deadline(tid)
    fed.reveal(tid, cheat, 10)
    fed.reveal(tid, t1, 20)
    assert staking.unbondingOf(cheat)[1] < fed.chain.blocks.head.timestamp  # released an hour ago
    with reverts_with("StakeLocked", lockedUntil=round_end + SHORT_DELAY):
        staking.withdraw(sender=cheat)
    fed.advance_after_deadline(tid)
    result, tree = fed.make_result(tid, 1, {cheat: 0, t1: 1}, samples)
    fed.aggregator_phases(tid, {fed.aggregators[0]: result})
    fed.advance_after_deadline(tid)  # AggregatorReveal runs to its deadline: the round ends on schedule
    assert fed.round_of(tid, 1).phase == PH_FINALIZED

    rcpt = slasher.slashRejectedTrainer(tid, 1, cheat, tree.proof(cheat.address), sender=fed.outsider)
    assert_event(rcpt, staking.Slashed, account=cheat.address, amount=TRAINER_STAKE, reason=label("RejectedTrainer"),
                 slasher=slasher.address)
    assert staking.unbondingOf(cheat) == (0, 0)
    _at(fed, round_end + SHORT_DELAY)
    with reverts_with("NothingToWithdraw"):
        staking.withdraw(sender=cheat)
    fed.assert_conserved()


def test_outvoted_aggregator_cannot_unbond_out_of_a_slash(short):
    fed, staking, tm = short, short.staking, short.tm
    a0, a1, cheat = fed.aggregators
    samples = {t: 10 for t in fed.trainers[:2]}
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    fed.trainer_phases(tid, samples)
    round_end = fed.round_of(tid).phaseDeadline + HOUR  # agg commit deadline + agg reveal
    rnd = 1
    dissent, _ = fed.make_result(tid, rnd, {t: 1 for t in samples}, samples, tag="dissent")
    rcpt = fed.agg_commit(tid, cheat, dissent)
    assert_event(rcpt, staking.LockExtended, account=cheat.address, until=round_end + SHORT_DELAY)
    staking.requestUnstake(AGGREGATOR_STAKE, sender=cheat)
    _at(fed, staking.unbondingOf(cheat)[1])
    with reverts_with("StakeLocked", lockedUntil=round_end + SHORT_DELAY):
        staking.withdraw(sender=cheat)

    honest, _ = fed.make_result(tid, rnd, {t: 1 for t in samples}, samples)
    for agg in (a0, a1):
        fed.agg_commit(tid, agg, honest)
    tm.advance(tid, sender=fed.outsider)  # the committee is full: AggregatorCommit ends early
    for agg, result in ((a0, honest), (a1, honest), (cheat, dissent)):
        fed.agg_reveal(tid, agg, result)
    fed.finish_round(tid)
    assert fed.round_of(tid, rnd).phase == PH_FINALIZED

    penalty = AGGREGATOR_STAKE * tm.aggregatorSlashBps() // 10_000
    rcpt = tm.slashAggregator(tid, rnd, cheat, sender=fed.outsider)
    assert_event(rcpt, tm.AggregatorSlashed, taskId=tid, round=rnd, aggregator=cheat, amount=penalty)
    assert_event(rcpt, staking.Slashed, account=cheat.address, amount=penalty, reason=label("DissentingAggregator"),
                 slasher=tm.address)
    _at(fed, round_end + SHORT_DELAY)
    rcpt = staking.withdraw(sender=cheat)
    assert_event(rcpt, staking.Withdrawn, account=cheat.address, amount=AGGREGATOR_STAKE - penalty)
    fed.assert_conserved()


def test_honest_unstaking_after_the_round_still_works(short):
    fed, staking = short, short.staking
    t0, t1 = fed.trainers[:2]
    bystander = fed.trainers[4]
    samples = {t0: 10, t1: 20}
    tid = fed.create_task(numRounds=2)
    round_end = fed.round_of(tid).phaseDeadline + 3 * HOUR
    fed.trainer_phases(tid, samples)
    finalized = _aggregate(fed, tid, samples, to_deadline=True)
    assert finalized.timestamp > round_end
    assert staking.lockedUntil(t0) == round_end + SHORT_DELAY

    # every phase ran to its deadline: unstaking after the round is withdrawable after the delay, as before
    rcpt = staking.requestUnstake(400 * FED, sender=t0)
    _at(fed, rcpt.timestamp + SHORT_DELAY)
    assert_event(staking.withdraw(sender=t0), staking.Withdrawn, account=t0.address, amount=400 * FED)

    # a round that ends before its schedule (everyone revealed early) holds the stake until its scheduled end
    round_end = fed.round_of(tid).phaseDeadline + 3 * HOUR
    fed.trainer_phases(tid, samples)
    finalized = _aggregate(fed, tid, samples, to_deadline=False)
    assert finalized.timestamp < round_end
    rcpt = staking.requestUnstake(100 * FED, sender=t1)
    _at(fed, rcpt.timestamp + SHORT_DELAY)
    with reverts_with("StakeLocked", lockedUntil=round_end + SHORT_DELAY):
        staking.withdraw(sender=t1)
    _at(fed, round_end + SHORT_DELAY)
    assert_event(staking.withdraw(sender=t1), staking.Withdrawn, account=t1.address, amount=100 * FED)

    # an account that never committed is never locked
    assert staking.lockedUntil(bystander) == 0
    rcpt = staking.requestUnstake(TRAINER_STAKE, sender=bystander)
    _at(fed, rcpt.timestamp + SHORT_DELAY)
    staking.withdraw(sender=bystander)
    fed.assert_conserved()


def test_lowering_the_delay_does_not_shorten_an_open_round(short):
    fed, staking, tm = short, short.staking, short.tm
    early, late, t2 = fed.trainers[:3]
    tid = fed.create_task()
    round_end = fed.round_of(tid).phaseDeadline + 3 * HOUR
    fed.commit(tid, early)
    staking.setUnbondingDelay(0, sender=fed.admin)  # the DAO lowers the delay while the round is open
    # locks taken before keep their length; later commits still lock until the round's end
    assert staking.lockedUntil(early) == round_end + SHORT_DELAY
    rcpt = fed.commit(tid, late)
    assert_event(rcpt, staking.LockExtended, account=late.address, until=round_end)
    for who, locked_until in ((early, round_end + SHORT_DELAY), (late, round_end)):
        staking.requestUnstake(TRAINER_STAKE, sender=who)  # delay 0: released at once
        with reverts_with("StakeLocked", lockedUntil=locked_until):
            staking.withdraw(sender=who)
    fed.commit(tid, t2)

    # a lock only grows: committing to a shorter round elsewhere leaves it alone
    staking.setUnbondingDelay(SHORT_DELAY, sender=fed.admin)
    tid2 = fed.create_task(commitDuration=60, revealDuration=60, aggregatorCommitDuration=60,
                           aggregatorRevealDuration=60)
    rcpt = fed.commit(tid2, t2)
    assert events(rcpt, staking.LockExtended) == []
    assert staking.lockedUntil(t2) == round_end  # taken under delay 0 in the longer round
    assert tm.getTrainerEntry(tid2, 1, t2).status == 1


def test_only_a_slasher_extends_locks(fed):
    with reverts_with("AccessControlUnauthorizedAccount", account=fed.outsider.address):
        fed.staking.extendLock(fed.trainers[0], 2**40, sender=fed.outsider)
    assert fed.staking.lockedUntil(fed.trainers[0]) == 0

"""Unbonding cannot outrun a slash: a commitment reserves its bond, reserved stake cannot be unstaked, and the bond
is released only when the round can no longer slash it (docs/PROTOCOL.md, "Bonds"). The shortest unbonding delay
(1 hour) is far shorter than a round: the window the old stake locks were for."""

import pytest

from tests.support.contracts import (
    FED,
    HOUR,
    PH_FINALIZED,
    TRAINER_STAKE,
    reverts_with,
)

MIN_DELAY = HOUR  # Staking's lower bound
TRAINER_BOND, AGGREGATOR_BOND = 100 * FED, 1_000 * FED


@pytest.fixture
def short(fed):
    fed.staking.setUnbondingDelay(MIN_DELAY, sender=fed.admin)
    return fed


@pytest.fixture(scope="module")
def rejection_slasher(project, fed, admin):
    contract = admin.deploy(project.RejectionSlasher, fed.tm, admin, 10_000)
    fed.tm.grantRole(fed.tm.REJECTION_ROLE(), contract, sender=admin)
    return contract


def test_committed_trainer_cannot_unbond_out_of_a_slash(short):
    fed, staking, tm = short, short.staking, short.tm
    t0, t1, cheat = fed.trainers[:3]
    tid = fed.create_task()
    for t in (cheat, t0, t1):
        fed.commit(tid, t)
    # the escape: unstake everything right after committing, withdraw once the (short) delay passed
    with reverts_with("InsufficientStake", available=TRAINER_STAKE - TRAINER_BOND, requested=TRAINER_STAKE):
        staking.requestUnstake(TRAINER_STAKE, sender=cheat)
    rcpt = staking.requestUnstake(TRAINER_STAKE - TRAINER_BOND, sender=cheat)
    fed.chain.pending_timestamp = rcpt.timestamp + MIN_DELAY
    staking.withdraw(sender=cheat)  # the free part leaves; the bond stays
    assert (staking.stakeOf(cheat), staking.reservedOf(cheat)) == (TRAINER_BOND, TRAINER_BOND)
    tm.advance(tid, sender=fed.outsider)  # maxTrainers committed: the commit phase closes early
    fed.reveal(tid, t0)
    fed.reveal(tid, t1)
    fed.advance_after_deadline(tid)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, cheat, sender=fed.outsider)
    assert list(rcpt.decode_logs(tm.TrainerSlashed))[0].amount == TRAINER_BOND  # slashed in full
    assert staking.stakeOf(cheat) == 0
    fed.assert_conserved()


def test_rejected_trainer_cannot_unbond_out_of_a_slash(short, rejection_slasher):
    fed, staking = short, short.staking
    t0, t1, cheat = fed.trainers[:3]
    tid = fed.create_task()
    samples = {t0: 10, t1: 10, cheat: 10}
    _, _, tree = fed.full_round(tid, samples, {t0: 500_000, t1: 500_000, cheat: 0})
    assert fed.round_of(tid, 1).phase == PH_FINALIZED
    with reverts_with("InsufficientStake"):
        staking.requestUnstake(TRAINER_STAKE, sender=cheat)
    with reverts_with("NotSettled"):
        fed.tm.releaseBond(tid, 1, cheat, sender=cheat)
    rejection_slasher.slashRejectedTrainer(tid, 1, cheat, tree.proof(cheat), sender=fed.outsider)
    assert (staking.stakeOf(cheat), staking.reservedOf(cheat)) == (TRAINER_STAKE - TRAINER_BOND, 0)


def test_outvoted_aggregator_cannot_unbond_out_of_a_slash(short):
    fed, staking, committee = short, short.staking, short.committee
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    a0, a1, cheat = fed.draw(tid)
    good, _ = fed.make_result(tid, 1, {t0: 1, t1: 1}, samples)
    bad, _ = fed.make_result(tid, 1, {t0: 1, t1: 0}, samples, tag="forged")
    fed.aggregator_phases(tid, {a0: good, a1: good, cheat: bad})
    free = staking.freeStakeOf(cheat)
    with reverts_with("InsufficientStake", available=free, requested=free + 1):
        staking.requestUnstake(free + 1, sender=cheat)
    fed.finish_round(tid)
    rcpt = committee.slashAggregator(tid, 1, cheat, sender=fed.outsider)
    slashed = list(rcpt.decode_logs(staking.Slashed))[0]
    assert (slashed.amount, bytes(slashed.reason).rstrip(b"\0")) == (AGGREGATOR_BOND // 2, b"DissentingAggregator")


def test_honest_unstaking_after_the_round_still_works(short):
    fed, staking = short, short.staking
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=1)
    _, _, tree = fed.full_round(tid, {t0: 10, t1: 10}, {t0: 1, t1: 1})
    fed.claim(tid, 1, t0, tree)  # the claim releases the bond at once
    assert staking.reservedOf(t0) == 0
    rcpt = staking.requestUnstake(TRAINER_STAKE, sender=t0)
    fed.chain.pending_timestamp = rcpt.timestamp + MIN_DELAY
    staking.withdraw(sender=t0)
    assert staking.stakeOf(t0) == 0
    # t1 does not claim: its bond comes back after the settlement window
    settled = fed.round_of(tid, 1).settledAt
    fed.chain.pending_timestamp = settled + 1
    fed.tm.releaseBond(tid, 1, t1, sender=fed.outsider)
    staking.requestUnstake(TRAINER_STAKE, sender=t1)
    fed.assert_conserved()


def test_a_bond_backs_one_commitment_only(short):
    """Issue 15: the same stake no longer backs seats in every task at once."""
    fed, staking = short, short.staking
    t0 = fed.trainers[0]
    staking.requestUnstake(TRAINER_STAKE - 2 * TRAINER_BOND, sender=t0)  # enough for two bonds
    tasks = [fed.create_task(), fed.create_task(), fed.create_task()]
    fed.commit(tasks[0], t0)
    fed.commit(tasks[1], t0)
    with reverts_with("InsufficientStake", available=0, required=TRAINER_BOND):
        fed.commit(tasks[2], t0)
    assert staking.reservedOf(t0) == 2 * TRAINER_BOND

"""Slashing the bond at risk, once per round: non-revealing trainers (TaskManager), non-revealing and dissenting
committee members (AggregatorCommittee). Never the rest of the stake, never the unbonding bucket."""

from tests.support.contracts import (
    AG_SLASHED,
    FED,
    PH_AGG_COMMIT,
    PH_AGG_REVEAL,
    PH_FAILED,
    PH_FINALIZED,
    PH_NONE,
    PH_TRAINER_COMMIT,
    PH_TRAINER_REVEAL,
    TR_SLASHED,
    TRAINER_STAKE,
    ZERO32,
    assert_event,
    events,
    label,
    result_key,
    reverts_with,
)

TRAINER_BOND = 100 * FED  # default_params' minTrainerStake
AGGREGATOR_BOND = 1_000 * FED  # default_params' minAggregatorStake


def _slashed_log(fed, receipt, slasher, **expected):
    assert_event(receipt, fed.staking.Slashed, slasher=slasher.address, **expected)


def test_non_revealing_trainer_forfeits_its_bond_to_the_treasury(fed):
    tm, staking, token = fed.tm, fed.staking, fed.token
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    samples = {t0: 10, t1: 20, t2: 30}
    for t, n in samples.items():
        fed.commit(tid, t, n)
    # slashing waits until the reveal phase is over
    with reverts_with("SlashingNotOpen", actual=PH_TRAINER_COMMIT):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    tm.advance(tid, sender=fed.outsider)
    fed.reveal(tid, t0, 10)
    fed.reveal(tid, t1, 20)
    with reverts_with("SlashingNotOpen", actual=PH_TRAINER_REVEAL):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    # t2 cannot dodge by unbonding: the bond is reserved, only the free stake can leave
    with reverts_with("InsufficientStake", available=TRAINER_STAKE - TRAINER_BOND, requested=TRAINER_STAKE):
        staking.requestUnstake(TRAINER_STAKE, sender=t2)
    staking.requestUnstake(TRAINER_STAKE - TRAINER_BOND, sender=t2)
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid).phase == PH_AGG_COMMIT

    with reverts_with("NotCommitted"):
        tm.slashNonRevealingTrainer(tid, 2, t2, sender=fed.outsider)
    with reverts_with("NotSlashable"):
        tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        tm.slashNonRevealingTrainer(tid, 1, fed.trainers[3], sender=fed.outsider)

    before = token.balanceOf(fed.treasury)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t2, amount=TRAINER_BOND)  # all of it
    _slashed_log(fed, rcpt, fed.tm, account=t2.address, amount=TRAINER_BOND, reason=label("NonRevealingTrainer"))
    assert token.balanceOf(fed.treasury) == before + TRAINER_BOND
    assert (staking.stakeOf(t2), staking.reservedOf(t2)) == (0, 0)
    assert staking.unbondingOf(t2)[0] == TRAINER_STAKE - TRAINER_BOND  # the unbonding bucket is untouched
    entry = tm.getTrainerEntry(tid, 1, t2)
    assert (entry.status, entry.bond) == (TR_SLASHED, 0)
    with reverts_with("AlreadySlashed"):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    fed.assert_conserved()


def test_the_slash_takes_the_bond_not_the_current_stake(fed):
    """Issue 15: a slash is a fraction of what was at risk, whatever the account staked since."""
    tm, staking = fed.tm, fed.staking
    t0, t1, t2 = fed.trainers[:3]
    tm.setSlashFractions(5_000, 5_000, sender=fed.admin)
    tid = fed.create_task()
    for t in (t0, t1, t2):
        fed.commit(tid, t)
    fed.token.approve(staking, 5_000 * FED, sender=t2)
    staking.stake(5_000 * FED, sender=t2)  # much more stake after the commit
    tm.advance(tid, sender=fed.outsider)
    fed.reveal(tid, t0)
    fed.reveal(tid, t1)
    fed.advance_after_deadline(tid)
    stake = staking.stakeOf(t2)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t2, amount=TRAINER_BOND // 2)
    assert staking.stakeOf(t2) == stake - TRAINER_BOND // 2
    assert staking.reservedOf(t2) == 0  # the other half is released
    fed.assert_conserved()


def test_zero_fraction_marks_but_moves_nothing(fed):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tm.setSlashFractions(0, 0, sender=fed.admin)
    tid = fed.create_task()
    fed.trainer_phases(tid, {t0: 1, t1: 1, t2: 1}, reveal_only=[t0, t1])
    rcpt = tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t2, amount=0)
    assert events(rcpt, fed.staking.Slashed) == []
    assert (fed.staking.stakeOf(t2), fed.staking.reservedOf(t2)) == (TRAINER_STAKE, 0)
    with reverts_with("AlreadySlashed"):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)


def test_a_round_that_failed_before_its_reveal_phase_releases_its_bonds(fed):
    tm = fed.tm
    t0 = fed.trainers[0]
    tid = fed.create_task()
    fed.commit(tid, t0)  # 1 < minTrainers
    rcpt = fed.advance_after_deadline(tid)
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=1, reason=label("TooFewTrainers"))
    r = fed.round_of(tid, 1)
    assert (r.phase, r.failedPhase) == (PH_FAILED, PH_TRAINER_COMMIT)
    with reverts_with("SlashingNotOpen", actual=PH_FAILED):
        tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    rcpt = tm.releaseBond(tid, 1, t0, sender=fed.outsider)
    assert_event(rcpt, tm.BondReleased, taskId=tid, round=1, trainer=t0, amount=TRAINER_BOND)
    assert fed.staking.reservedOf(t0) == 0
    with reverts_with("NoBond"):
        tm.releaseBond(tid, 1, t0, sender=fed.outsider)


def test_trainer_slashing_after_failed_reveal_phase(fed):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    fed.trainer_phases(tid, {t0: 1, t1: 1, t2: 1}, reveal_only=[t0])  # 1 reveal < minTrainers
    r = fed.round_of(tid, 1)
    assert (r.phase, r.failedPhase, bytes(r.failureReason)) == (PH_FAILED, PH_TRAINER_REVEAL, label("TooFewTrainers"))
    for t in (t1, t2):
        rcpt = tm.slashNonRevealingTrainer(tid, 1, t, sender=fed.outsider)
        assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t, amount=TRAINER_BOND)
    with reverts_with("NotSlashable"):
        tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    tm.releaseBond(tid, 1, t0, sender=fed.outsider)  # the honest revealer of a failed round: at once
    assert fed.staking.reservedOf(t0) == 0
    fed.assert_conserved()


def _aggregator_round(fed, honest, dissent=None, reveal_only=None):
    """Quorum 2 of 3 (all three approved aggregators drawn): ``honest`` seats (indices into the drawn committee)
    commit the honest result, ``dissent`` a forged one."""
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    members = fed.draw(tid)
    good, _ = fed.make_result(tid, 1, {t0: 600_000, t1: 400_000}, samples)
    bad, _ = fed.make_result(tid, 1, {t0: 1_000_000, t1: 0}, samples, tag="forged")
    results = {members[i]: good for i in honest}
    if dissent is not None:
        results[members[dissent]] = bad
    fed.aggregator_phases(tid, results, reveal_only=None if reveal_only is None else [members[i] for i in reveal_only])
    return tid, members, good, bad


def test_dissenting_aggregator_is_slashed_quorum_2_of_3(fed):
    committee, staking, token = fed.committee, fed.staking, fed.token
    tid, (a0, a1, a2), good, bad = _aggregator_round(fed, honest=[0, 1], dissent=2)
    assert committee.resultVotes(tid, 1, result_key(good)) == 2
    assert committee.resultVotes(tid, 1, result_key(bad)) == 1
    with reverts_with("SlashingNotOpen", actual=PH_AGG_REVEAL):
        committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    rcpt = fed.tm.advance(tid, sender=fed.outsider)  # all revealed: early close
    assert events(rcpt, fed.tm.RoundFinalized)
    assert bytes(fed.round_of(tid, 1).acceptedKey) == result_key(good)
    assert fed.tm.getTask(tid).globalModelCid == good.resultCid

    stake = staking.stakeOf(a2)
    expected = AGGREGATOR_BOND * 5_000 // 10_000
    rcpt = committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, committee.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=expected)
    _slashed_log(fed, rcpt, committee, account=a2.address, amount=expected, reason=label("DissentingAggregator"))
    assert staking.stakeOf(a2) == stake - expected and staking.reservedOf(a2) == 0
    assert token.balanceOf(fed.treasury) == expected
    assert committee.getAggregatorEntry(tid, 1, a2).status == AG_SLASHED
    with reverts_with("AlreadySlashed"):
        committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    for honest in (a0, a1):
        with reverts_with("NotSlashable"):
            committee.slashAggregator(tid, 1, honest, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        committee.slashAggregator(tid, 1, fed.outsider, sender=fed.outsider)
    fed.assert_conserved()


def test_a_dissent_is_slashable_only_until_settlement(fed):
    committee = fed.committee
    tid, (_, _, a2), _, _ = _aggregator_round(fed, honest=[0, 1], dissent=2)
    fed.tm.advance(tid, sender=fed.outsider)
    settled = fed.round_of(tid, 1).settledAt
    with reverts_with("NotSettled", settledAt=settled):
        committee.releaseBond(tid, 1, a2, sender=fed.outsider)
    fed.chain.pending_timestamp = settled + 1
    with reverts_with("SettlementClosed", settledAt=settled):
        committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    committee.releaseBond(tid, 1, a2, sender=fed.outsider)
    assert fed.staking.reservedOf(a2) == 0


def test_non_revealing_aggregator_is_slashed(fed):
    committee = fed.committee
    tid, (_, _, a2), _, _ = _aggregator_round(fed, honest=[0, 1, 2], reveal_only=[0, 1])
    fed.finish_round(tid)  # after the deadline: a2 never revealed
    assert fed.round_of(tid, 1).phase == PH_FINALIZED
    rcpt = committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, committee.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=AGGREGATOR_BOND // 2)
    _slashed_log(fed, rcpt, committee, account=a2.address, amount=AGGREGATOR_BOND // 2,
                 reason=label("NonRevealingAggregator"))
    fed.assert_conserved()


def test_no_quorum_only_non_revealers_are_slashed(fed):
    committee = fed.committee
    # seat 0 honest, seat 1 forged, seat 2 commits honest but does not reveal: 1 vote each, no quorum
    tid, (a0, a1, a2), _, _ = _aggregator_round(fed, honest=[0, 2], dissent=1, reveal_only=[0, 1])
    rcpt = fed.finish_round(tid)
    assert_event(rcpt, fed.tm.RoundFailed, taskId=tid, round=1, reason=label("NoQuorum"))
    r = fed.round_of(tid, 1)
    assert (r.phase, r.failedPhase, r.acceptedKey, r.roundBudget) == (PH_FAILED, PH_AGG_REVEAL, ZERO32, 0)
    assert fed.tm.getTask(tid).globalModelCid == fed.tm.getTask(tid).params.initialModelCid  # unchanged
    for revealed in (a0, a1):
        with reverts_with("NotSlashable"):
            committee.slashAggregator(tid, 1, revealed, sender=fed.outsider)
        committee.releaseBond(tid, 1, revealed, sender=fed.outsider)  # a failed round: at once
    rcpt = committee.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, committee.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=AGGREGATOR_BOND // 2)


def test_a_round_that_failed_at_aggregator_commit_releases_its_bonds(fed):
    committee = fed.committee
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    a0 = fed.draw(tid)[0]
    good, _ = fed.make_result(tid, 1, {t0: 1, t1: 1}, samples)
    fed.agg_commit(tid, a0, good)
    rcpt = fed.advance_after_deadline(tid)  # 1 commit < quorum 2
    assert_event(rcpt, fed.tm.RoundFailed, taskId=tid, round=1, reason=label("NoQuorum"))
    assert fed.round_of(tid, 1).failedPhase == PH_AGG_COMMIT
    with reverts_with("SlashingNotOpen", actual=PH_FAILED):
        committee.slashAggregator(tid, 1, a0, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        committee.slashAggregator(tid, 2, a0, sender=fed.outsider)
    committee.releaseBond(tid, 1, a0, sender=fed.outsider)  # never asked to reveal: its bond comes back
    assert fed.staking.reservedOf(a0) == 0
    fed.assert_conserved()


def test_first_come_seats_are_gone_the_committee_is_drawn(fed):
    """Issue 15: the fastest approved aggregator no longer takes the seat: the round's committee is drawn from
    the approved, staked aggregators with the hash of the block that closed the reveal phase."""
    seats = {}
    for i in range(10):
        tid = fed.create_task(numRounds=1)
        t0, t1 = fed.trainers[2 * (i % 2): 2 * (i % 2) + 2]  # every commitment reserves a bond: spread them
        fed.trainer_phases(tid, {t0: 1, t1: 1})
        seats.setdefault(fed.draw(tid)[0].address, 0)
        seats[fed.draw(tid)[0].address] += 1
        assert PH_NONE < fed.round_of(tid, 1).phase == PH_AGG_COMMIT
    assert len(seats) >= 2, seats  # 1/3**9 that one aggregator takes every seat

"""TaskManager slashing: non-revealing trainers, non-revealing and dissenting aggregators, once per round."""

from tests.support.contracts import (
    AG_SLASHED,
    AGGREGATOR_STAKE,
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


def _slashed_log(fed, receipt, **expected):
    assert_event(receipt, fed.staking.Slashed, slasher=fed.tm.address, **expected)


def test_non_revealing_trainer_is_slashed_to_treasury(fed):
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
    # t2 tries to dodge by unbonding: the unbonding bucket still counts
    staking.requestUnstake(400 * FED, sender=t2)
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid).phase == PH_AGG_COMMIT

    with reverts_with("SlashingNotOpen", actual=PH_NONE):
        tm.slashNonRevealingTrainer(tid, 2, t2, sender=fed.outsider)
    with reverts_with("NotSlashable"):
        tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        tm.slashNonRevealingTrainer(tid, 1, fed.trainers[3], sender=fed.outsider)

    before = token.balanceOf(fed.treasury)
    expected = TRAINER_STAKE * 500 // 10_000  # 5% of active (600) + unbonding (400)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t2, amount=expected)
    _slashed_log(fed, rcpt, account=t2.address, amount=expected, reason=label("NonRevealingTrainer"))
    assert token.balanceOf(fed.treasury) == before + expected
    assert staking.stakeOf(t2) == 600 * FED - expected  # active first
    assert staking.unbondingOf(t2)[0] == 400 * FED
    assert tm.getTrainerEntry(tid, 1, t2).status == TR_SLASHED
    with reverts_with("AlreadySlashed"):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    fed.assert_conserved()


def test_trainer_slash_reaches_into_unbonding(fed):
    tm, staking = fed.tm, fed.staking
    t0, t1, t2 = fed.trainers[:3]
    tm.setSlashFractions(10_000, 2_000, sender=fed.admin)
    tid = fed.create_task()
    for t in (t0, t1, t2):
        fed.commit(tid, t)
    staking.requestUnstake(700 * FED, sender=t2)
    tm.advance(tid, sender=fed.outsider)
    fed.reveal(tid, t0)
    fed.reveal(tid, t1)
    fed.advance_after_deadline(tid)
    rcpt = tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t2, amount=TRAINER_STAKE)
    assert staking.stakeOf(t2) == 0
    assert staking.unbondingOf(t2) == (0, 0)
    assert fed.token.balanceOf(fed.treasury) == TRAINER_STAKE
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
    assert fed.staking.stakeOf(t2) == TRAINER_STAKE
    with reverts_with("AlreadySlashed"):
        tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)


def test_no_trainer_slashing_when_the_round_failed_before_reveal(fed):
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


def test_trainer_slashing_after_failed_reveal_phase(fed):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    fed.trainer_phases(tid, {t0: 1, t1: 1, t2: 1}, reveal_only=[t0])  # 1 reveal < minTrainers
    r = fed.round_of(tid, 1)
    assert (r.phase, r.failedPhase, bytes(r.failureReason)) == (PH_FAILED, PH_TRAINER_REVEAL, label("TooFewTrainers"))
    for t in (t1, t2):
        rcpt = tm.slashNonRevealingTrainer(tid, 1, t, sender=fed.outsider)
        assert_event(rcpt, tm.TrainerSlashed, taskId=tid, round=1, trainer=t, amount=TRAINER_STAKE // 20)
    with reverts_with("NotSlashable"):
        tm.slashNonRevealingTrainer(tid, 1, t0, sender=fed.outsider)
    fed.assert_conserved()


def _aggregator_round(fed, honest, dissent=None, reveal_only=None):
    """Quorum 2 of 3: ``honest`` aggregators commit the honest result, ``dissent`` a forged one."""
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    good, _ = fed.make_result(tid, 1, {t0: 600_000, t1: 400_000}, samples)
    bad, _ = fed.make_result(tid, 1, {t0: 1_000_000, t1: 0}, samples, tag="forged")
    results = {a: good for a in honest}
    if dissent is not None:
        results[dissent] = bad
    fed.aggregator_phases(tid, results, reveal_only=reveal_only)
    return tid, good, bad


def test_dissenting_aggregator_is_slashed_quorum_2_of_3(fed):
    tm, staking, token = fed.tm, fed.staking, fed.token
    a0, a1, a2 = fed.aggregators
    tid, good, bad = _aggregator_round(fed, honest=[a0, a1], dissent=a2)
    assert tm.resultVotes(tid, 1, result_key(good)) == 2
    assert tm.resultVotes(tid, 1, result_key(bad)) == 1
    with reverts_with("SlashingNotOpen", actual=PH_AGG_REVEAL):
        tm.slashAggregator(tid, 1, a2, sender=fed.outsider)
    rcpt = tm.advance(tid, sender=fed.outsider)  # all revealed: early close
    assert events(rcpt, tm.RoundFinalized)
    assert bytes(fed.round_of(tid, 1).acceptedKey) == result_key(good)
    assert fed.tm.getTask(tid).globalModelCid == good.resultCid

    expected = AGGREGATOR_STAKE * 2_000 // 10_000
    rcpt = tm.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, tm.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=expected)
    _slashed_log(fed, rcpt, account=a2.address, amount=expected, reason=label("DissentingAggregator"))
    assert staking.stakeOf(a2) == AGGREGATOR_STAKE - expected
    assert token.balanceOf(fed.treasury) == expected
    assert tm.getAggregatorEntry(tid, 1, a2).status == AG_SLASHED
    with reverts_with("AlreadySlashed"):
        tm.slashAggregator(tid, 1, a2, sender=fed.outsider)
    for honest in (a0, a1):
        with reverts_with("NotSlashable"):
            tm.slashAggregator(tid, 1, honest, sender=fed.outsider)
    with reverts_with("NotCommitted"):
        tm.slashAggregator(tid, 1, fed.outsider, sender=fed.outsider)
    fed.assert_conserved()


def test_non_revealing_aggregator_is_slashed(fed):
    tm = fed.tm
    a0, a1, a2 = fed.aggregators
    tid, good, _ = _aggregator_round(fed, honest=[a0, a1, a2], reveal_only=[a0, a1])
    fed.finish_round(tid)  # after the deadline: a2 never revealed
    assert fed.round_of(tid, 1).phase == PH_FINALIZED
    rcpt = tm.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, tm.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=AGGREGATOR_STAKE // 5)
    _slashed_log(fed, rcpt, account=a2.address, amount=AGGREGATOR_STAKE // 5, reason=label("NonRevealingAggregator"))
    fed.assert_conserved()


def test_no_quorum_only_non_revealers_are_slashed(fed):
    tm = fed.tm
    a0, a1, a2 = fed.aggregators
    # a0 honest, a1 forged, a2 commits honest but does not reveal: 1 vote each, no quorum
    tid, good, bad = _aggregator_round(fed, honest=[a0, a2], dissent=a1, reveal_only=[a0, a1])
    rcpt = fed.finish_round(tid)
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=1, reason=label("NoQuorum"))
    r = fed.round_of(tid, 1)
    assert (r.phase, r.failedPhase, r.acceptedKey, r.roundBudget) == (PH_FAILED, PH_AGG_REVEAL, ZERO32, 0)
    assert tm.getTask(tid).globalModelCid == tm.getTask(tid).params.initialModelCid  # unchanged
    for revealed in (a0, a1):
        with reverts_with("NotSlashable"):
            tm.slashAggregator(tid, 1, revealed, sender=fed.outsider)
    rcpt = tm.slashAggregator(tid, 1, a2, sender=fed.outsider)
    assert_event(rcpt, tm.AggregatorSlashed, taskId=tid, round=1, aggregator=a2, amount=AGGREGATOR_STAKE // 5)


def test_no_aggregator_slashing_when_round_failed_at_aggregator_commit(fed):
    tm = fed.tm
    a0 = fed.aggregators[0]
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    good, _ = fed.make_result(tid, 1, {t0: 1, t1: 1}, samples)
    fed.agg_commit(tid, a0, good)
    rcpt = fed.advance_after_deadline(tid)  # 1 commit < quorum 2
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=1, reason=label("NoQuorum"))
    assert fed.round_of(tid, 1).failedPhase == PH_AGG_COMMIT
    with reverts_with("SlashingNotOpen", actual=PH_FAILED):
        tm.slashAggregator(tid, 1, a0, sender=fed.outsider)
    with reverts_with("SlashingNotOpen", actual=PH_TRAINER_COMMIT):
        tm.slashAggregator(tid, 2, a0, sender=fed.outsider)

"""TaskManager: a full round with three trainers and Merkle-proof rewards, early phase close, deadlines."""

from tests.support.contracts import (
    AG_REVEALED,
    HOUR,
    PH_AGG_COMMIT,
    PH_AGG_REVEAL,
    PH_FINALIZED,
    PH_TRAINER_COMMIT,
    PH_TRAINER_REVEAL,
    TASK_ACTIVE,
    TASK_COMPLETED,
    TR_CLAIMED,
    TR_COMMITTED,
    TR_REVEALED,
    assert_event,
    events,
    one_event,
    result_key,
    reverts_with,
    trainer_commitment,
)


def _ts(chain, receipt):
    return chain.blocks[receipt.block_number].timestamp


def test_full_round_three_trainers_with_merkle_rewards(fed, chain):
    tm, committee, vault, token = fed.tm, fed.committee, fed.vault, fed.token
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    budget = tm.getTask(tid).remainingBudget
    samples = {t0: 100, t1: 250, t2: 37}
    scores = {t0: 800_000, t1: 650_000, t2: 0}  # t2's update was rejected

    # --- TrainerCommit: maxTrainers (3) commits close the phase early
    for trainer, n in samples.items():
        rcpt = fed.commit(tid, trainer, n)
        u = fed.update_of(trainer, tid, 1, n)
        assert_event(
            rcpt,
            tm.UpdateCommitted,
            taskId=tid,
            round=1,
            trainer=trainer,
            commitment=trainer_commitment(trainer, tid, 1, u["digest"], n, u["salt"]),
            bond=100 * 10**18,
        )
    committers = [log.event_arguments["trainer"] for log in tm.UpdateCommitted.query("*", start_block=0).itertuples()
                  if log.event_arguments["taskId"] == tid]
    assert committers == [t.address for t in samples]  # who committed, in order, is in the events
    e = tm.getTrainerEntry(tid, 1, t0)
    u0 = fed.update_of(t0, tid, 1, samples[t0])
    committed = trainer_commitment(t0, tid, 1, u0["digest"], samples[t0], u0["salt"])
    # one word per trainer-round: the commitment's top 240 bits, the status in the low byte
    assert bytes(e.commitment) == committed[:30] + b"\0\0"
    assert e.status == TR_COMMITTED and e.numSamples == 0 and e.bond == 100 * 10**18 == tm.trainerBond(tid)
    assert fed.staking.reservedOf(t0) == 100 * 10**18
    assert fed.round_of(tid).phaseDeadline > chain.pending_timestamp + 60  # the deadline is far away
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert_event(rcpt, tm.PhaseAdvanced, taskId=tid, round=1, phase=PH_TRAINER_REVEAL, deadline=_ts(chain, rcpt) + HOUR)

    # --- TrainerReveal: all reveals close it early
    for trainer, n in samples.items():
        rcpt = fed.reveal(tid, trainer, n)
        u = fed.update_of(trainer, tid, 1, n)
        assert_event(
            rcpt,
            tm.UpdateRevealed,
            taskId=tid,
            round=1,
            trainer=trainer,
            cid=u["cid"],
            updateDigest=u["digest"],
            numSamples=n,
        )
        e = tm.getTrainerEntry(tid, 1, trainer)  # the CID and digest live in the event only
        assert (e.status, bytes(e.commitment), e.numSamples, e.bond) == (TR_REVEALED, b"\0" * 32, n, 100 * 10**18)
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert_event(rcpt, tm.PhaseAdvanced, taskId=tid, round=1, phase=PH_AGG_COMMIT, deadline=_ts(chain, rcpt) + HOUR)
    assert fed.round_of(tid, 1).drawBlock == rcpt.block_number

    # --- AggregatorCommit: the drawn committee (1 seat) commits, which closes the phase early
    result, tree = fed.make_result(tid, 1, scores, samples)
    assert result.totalWeight == 800_000 * 100 + 650_000 * 250
    key = result_key(result)
    (agg,) = fed.draw(tid)
    outsiders = [a for a in fed.aggregators if a != agg]
    with reverts_with("NotInCommittee"):
        fed.agg_commit(tid, outsiders[0], result)
    rcpt = fed.agg_commit(tid, agg, result)
    commitment = bytes(committee.getAggregatorEntry(tid, 1, agg).commitment)
    assert_event(rcpt, committee.AggregateCommitted, taskId=tid, round=1, aggregator=agg, commitment=commitment,
                 bond=1_000 * 10**18)
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert_event(rcpt, tm.PhaseAdvanced, taskId=tid, round=1, phase=PH_AGG_REVEAL, deadline=_ts(chain, rcpt) + HOUR)

    # --- AggregatorReveal: the quorum-reaching reveal stores the result
    rcpt = fed.agg_reveal(tid, agg, result)
    assert_event(
        rcpt, committee.AggregateRevealed, taskId=tid, round=1, aggregator=agg, resultKey=key,
        resultCid=result.resultCid
    )
    assert_event(rcpt, committee.QuorumReached, taskId=tid, round=1, resultKey=key)
    assert committee.resultVotes(tid, 1, key) == 1
    a = committee.getAggregatorEntry(tid, 1, agg)
    assert (a.status, bytes(a.resultKey)) == (AG_REVEALED, key)
    assert tuple(committee.tally(tid, 1)) == (True, 1, 1, 1, key)
    r = fed.round_of(tid, 1)
    assert r.phase == PH_AGG_REVEAL
    assert (r.committed, r.revealed) == (3, 3)
    assert r.roundBudget == 0  # allocated at finalization, when the accepted result is copied in

    # --- finalize: budget allocated, global model set, round 2 starts in the same tx
    rcpt = tm.advance(tid, sender=fed.outsider)
    round_budget = budget // 2  # numRounds - round + 1 = 2
    adv = events(rcpt, tm.PhaseAdvanced)
    assert [(x.phase, x.deadline) for x in adv] == [(PH_FINALIZED, 0)]
    assert_event(
        rcpt,
        tm.RoundFinalized,
        taskId=tid,
        round=1,
        resultCid=result.resultCid,
        resultDigest=result.resultDigest,
        scoresRoot=tree.root,
        totalWeight=result.totalWeight,
        roundBudget=round_budget,
    )
    assert_event(rcpt, tm.RoundStarted, taskId=tid, round=2, commitDeadline=_ts(chain, rcpt) + HOUR)
    assert events(rcpt, tm.TaskCompleted) == []
    info = tm.getTask(tid)
    assert (info.status, info.currentRound) == (TASK_ACTIVE, 2)
    assert (info.globalModelCid, bytes(info.globalModelDigest)) == (result.resultCid, result.resultDigest)
    assert info.remainingBudget == budget - round_budget
    r = fed.round_of(tid, 1)
    assert (r.phase, r.phaseDeadline, r.roundBudget) == (PH_FINALIZED, 0, round_budget)
    assert bytes(r.acceptedKey) == key
    assert (r.resultCid, bytes(r.resultDigest), bytes(r.scoresRoot)) == (result.resultCid, result.resultDigest,
                                                                         tree.root)
    assert (r.totalWeight, r.accepted, r.rejected, r.accuracyPpm, r.lossMicro) == (
        result.totalWeight, 2, 1, result.accuracyPpm, result.lossMicro)
    assert r.settledAt == r.finalizedAt + tm.settlementWindow()
    assert fed.round_of(tid, 2).phase == PH_TRAINER_COMMIT

    # --- claims by Merkle proof, exactly the formula over the trainers' part
    trainers_part = fed.trainer_share(tid, 1)
    paid = 0
    for trainer in (t1, t0):
        expected = trainers_part * scores[trainer] * samples[trainer] // result.totalWeight
        before = token.balanceOf(trainer)
        rcpt = fed.claim(tid, 1, trainer, tree)
        assert_event(rcpt, tm.RewardClaimed, taskId=tid, round=1, trainer=trainer, amount=expected)
        assert token.balanceOf(trainer) == before + expected
        assert tm.getTrainerEntry(tid, 1, trainer).status == TR_CLAIMED
        paid += expected
    assert paid > 0
    assert vault.paidOf(tid, 1)[0] == paid
    assert trainers_part - paid < 3  # rounding dust only
    vault.claimAggregatorReward(tid, 1, sender=agg)
    fed.assert_conserved()

    # --- round 2 (last): takes everything left, completes the task
    rcpt, result2, tree2 = fed.full_round(tid, {t0: 10, t1: 20}, {t0: 1_000_000, t1: 500_000})
    assert_event(rcpt, tm.TaskCompleted, taskId=tid)
    assert events(rcpt, tm.RoundStarted) == []
    info = tm.getTask(tid)
    assert (info.status, info.currentRound, info.remainingBudget) == (TASK_COMPLETED, 2, 0)
    assert info.globalModelCid == result2.resultCid
    assert fed.round_of(tid, 2).roundBudget == budget - round_budget
    with reverts_with("TaskNotActive", taskId=tid):
        tm.advance(tid, sender=fed.outsider)
    with reverts_with("WrongPhase", expected=PH_TRAINER_COMMIT, actual=PH_FINALIZED):
        fed.commit(tid, t2)
    part2 = fed.trainer_share(tid, 2)
    for trainer, s, n in ((t0, 1_000_000, 10), (t1, 500_000, 20)):
        rcpt = fed.claim(tid, 2, trainer, tree2)
        assert one_event(rcpt, tm.RewardClaimed)["amount"] == part2 * s * n // 20_000_000
    fed.assert_conserved()


def test_phases_wait_for_deadline_when_not_complete(fed, chain):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    fed.commit(tid, t0)
    fed.commit(tid, t1)
    deadline = fed.round_of(tid).phaseDeadline
    # two of three commits: not complete, so advance waits for the deadline (inclusive)
    with reverts_with("PhaseNotOver", deadline=deadline):
        tm.advance(tid, sender=fed.outsider)
    chain.pending_timestamp = deadline
    fed.commit(tid, t2, 5)  # committing at the deadline itself is still allowed
    fed.past_deadline(tid)
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert one_event(rcpt, tm.PhaseAdvanced)["phase"] == PH_TRAINER_REVEAL

    fed.reveal(tid, t0)
    fed.reveal(tid, t1)
    deadline = fed.round_of(tid).phaseDeadline
    with reverts_with("PhaseNotOver", deadline=deadline):
        tm.advance(tid, sender=fed.outsider)
    chain.pending_timestamp = deadline
    with reverts_with("PhaseNotOver", deadline=deadline):
        tm.advance(tid, sender=fed.outsider)
    fed.past_deadline(tid)
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert one_event(rcpt, tm.PhaseAdvanced)["phase"] == PH_AGG_COMMIT

    deadline = fed.round_of(tid).phaseDeadline
    with reverts_with("PhaseNotOver", deadline=deadline):
        tm.advance(tid, sender=fed.outsider)  # nobody committed yet


def test_commits_and_reveals_after_deadline_revert_phase_closed(fed, chain):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    fed.commit(tid, t0)
    fed.commit(tid, t1)
    deadline = fed.round_of(tid).phaseDeadline
    fed.past_deadline(tid)
    with reverts_with("PhaseClosed", deadline=deadline):
        fed.commit(tid, t2)
    tm.advance(tid, sender=fed.outsider)

    fed.reveal(tid, t0)
    deadline = fed.round_of(tid).phaseDeadline
    fed.past_deadline(tid)
    with reverts_with("PhaseClosed", deadline=deadline):
        fed.reveal(tid, t1)
    # nobody advanced yet: the phase is still TrainerReveal, but closed; only one reveal < minTrainers
    assert fed.round_of(tid).phase == PH_TRAINER_REVEAL

    tid2 = fed.create_task()
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid2, samples)
    result, _ = fed.make_result(tid2, 1, {t0: 1, t1: 1}, samples)
    (agg,) = fed.draw(tid2)
    deadline = fed.round_of(tid2).phaseDeadline
    fed.past_deadline(tid2)
    with reverts_with("PhaseClosed", deadline=deadline):
        fed.agg_commit(tid2, agg, result)


def test_aggregator_reveal_after_deadline_reverts(fed):
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task()
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    result, _ = fed.make_result(tid, 1, {t0: 1, t1: 1}, samples)
    (agg,) = fed.draw(tid)
    fed.aggregator_phases(tid, {agg: result}, reveal_only=[])
    assert fed.round_of(tid).phase == PH_AGG_REVEAL
    deadline = fed.round_of(tid).phaseDeadline
    fed.past_deadline(tid)
    with reverts_with("PhaseClosed", deadline=deadline):
        fed.agg_reveal(tid, agg, result)


def test_early_close_of_aggregator_reveal_needs_all_reveals(fed, chain):
    """Quorum 2 of 3: quorum alone does not close the reveal phase early, all reveals do."""
    tm, committee = fed.tm, fed.committee
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(aggregatorQuorum=2, maxAggregators=3)
    samples = {t0: 10, t1: 20}
    fed.trainer_phases(tid, samples)
    a0, a1, a2 = fed.draw(tid)
    result, _ = fed.make_result(tid, 1, {t0: 5, t1: 7}, samples)
    fed.aggregator_phases(tid, {a0: result, a1: result, a2: result}, reveal_only=[a0, a1])
    assert bytes(committee.tally(tid, 1)[4]) == result_key(result)
    deadline = fed.round_of(tid).phaseDeadline
    with reverts_with("PhaseNotOver", deadline=deadline):
        tm.advance(tid, sender=fed.outsider)
    rcpt = fed.agg_reveal(tid, a2, result)
    assert events(rcpt, committee.QuorumReached) == []  # only the reveal that reaches the quorum emits it
    assert committee.resultVotes(tid, 1, result_key(result)) == 3
    rcpt = tm.advance(tid, sender=fed.outsider)
    assert bytes(one_event(rcpt, tm.RoundFinalized)["scoresRoot"]) == result.scoresRoot
    assert fed.round_of(tid, 1).phase == PH_FINALIZED

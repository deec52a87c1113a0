"""TaskManager budget: failed-round rollover, rejected rounds, claims and their reverts, reclaiming."""

from tests.support.contracts import (
    PH_AGG_REVEAL,
    PH_FAILED,
    PH_FINALIZED,
    PH_TRAINER_COMMIT,
    TASK_ACTIVE,
    TASK_COMPLETED,
    TR_SLASHED,
    assert_event,
    events,
    label,
    one_event,
    reverts_with,
)


def test_failed_round_rolls_budget_over(fed, chain):
    tm, token = fed.tm, fed.token
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=3)
    budget = tm.getTask(tid).remainingBudget

    # round 1: nobody commits -> Failed(TooFewTrainers), round 2 starts in the same tx
    rcpt = fed.advance_after_deadline(tid)
    ts = chain.blocks[rcpt.block_number].timestamp
    assert [(e.round, e.phase, e.deadline) for e in events(rcpt, tm.PhaseAdvanced)] == [(1, PH_FAILED, 0)]
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=1, reason=label("TooFewTrainers"))
    assert_event(rcpt, tm.RoundStarted, taskId=tid, round=2, commitDeadline=ts + 3600)
    r1 = fed.round_of(tid, 1)
    assert (r1.phase, r1.roundBudget, bytes(r1.failureReason)) == (PH_FAILED, 0, label("TooFewTrainers"))
    assert tm.getTask(tid).remainingBudget == budget
    assert tm.getTask(tid).currentRound == 2

    # round 2 gets remaining / (3 - 2 + 1): the failed round's share rolled over
    rcpt, result, tree = fed.full_round(tid, {t0: 3, t1: 7}, {t0: 123_457, t1: 999_999})
    b2 = budget // 2
    assert one_event(rcpt, tm.RoundFinalized)["roundBudget"] == b2
    assert tm.getTask(tid).remainingBudget == budget - b2

    # round 3 (last) gets everything left
    rcpt, result3, _ = fed.full_round(tid, {t0: 1, t1: 1}, {t0: 1, t1: 1})
    assert one_event(rcpt, tm.RoundFinalized)["roundBudget"] == budget - b2
    assert_event(rcpt, tm.TaskCompleted, taskId=tid)
    assert tm.getTask(tid).remainingBudget == 0
    with reverts_with("NothingToReclaim"):
        tm.reclaimUnallocated(tid, sender=fed.sponsor)

    for t, s, n in ((t0, 123_457, 3), (t1, 999_999, 7)):
        rcpt = tm.claimReward(tid, 2, s, tree.proof(t), sender=t)
        assert one_event(rcpt, tm.RewardClaimed)["amount"] == b2 * s * n // result.totalWeight
    assert token.balanceOf(tm) == budget - fed.round_of(tid, 2).paid
    fed.assert_conserved()


def test_all_rejected_round_allocates_nothing(fed):
    tm = fed.tm
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task()
    budget = tm.getTask(tid).remainingBudget
    rcpt, result, tree = fed.full_round(tid, {t0: 5, t1: 5}, {t0: 0, t1: 0})
    assert result.totalWeight == 0 and result.accepted == 0 and result.rejected == 2
    ev = one_event(rcpt, tm.RoundFinalized)
    assert (ev["totalWeight"], ev["roundBudget"]) == (0, 0)
    r = fed.round_of(tid, 1)
    assert (r.phase, r.roundBudget) == (PH_FINALIZED, 0)
    info = tm.getTask(tid)
    assert info.remainingBudget == budget
    assert info.globalModelCid == result.resultCid  # the model still advances
    with reverts_with("NoRoundBudget"):
        tm.claimReward(tid, 1, 0, tree.proof(t0), sender=t0)
    # the last round then gets the whole budget
    rcpt, _, _ = fed.full_round(tid, {t0: 5, t1: 5}, {t0: 5, t1: 5})
    assert one_event(rcpt, tm.RoundFinalized)["roundBudget"] == budget


def test_reclaim_unallocated(fed):
    tm, token, sponsor = fed.tm, fed.token, fed.sponsor
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=2)
    budget = tm.getTask(tid).remainingBudget
    with reverts_with("TaskNotCompleted", taskId=tid):
        tm.reclaimUnallocated(tid, sender=sponsor)
    _, result, _ = fed.full_round(tid, {t0: 2, t1: 2}, {t0: 10, t1: 30})  # round 1 takes budget // 2
    rcpt = fed.advance_after_deadline(tid)  # round 2: no commits -> fails, task completes
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=2, reason=label("TooFewTrainers"))
    assert_event(rcpt, tm.TaskCompleted, taskId=tid)
    assert events(rcpt, tm.RoundStarted) == []
    info = tm.getTask(tid)
    assert (info.status, info.currentRound) == (TASK_COMPLETED, 2)
    unallocated = budget - budget // 2
    assert info.remainingBudget == unallocated

    with reverts_with("NotSponsor"):
        tm.reclaimUnallocated(tid, sender=fed.outsider)
    before = token.balanceOf(sponsor)
    rcpt = tm.reclaimUnallocated(tid, sender=sponsor)
    assert_event(rcpt, tm.BudgetReclaimed, taskId=tid, sponsor=sponsor, amount=unallocated)
    assert token.balanceOf(sponsor) == before + unallocated
    assert tm.getTask(tid).remainingBudget == 0
    with reverts_with("NothingToReclaim"):
        tm.reclaimUnallocated(tid, sender=sponsor)
    # the allocated round-1 budget stays claimable
    assert token.balanceOf(tm) == budget // 2
    fed.assert_conserved()


def test_reclaim_is_per_task(fed):
    tm = fed.tm
    tid1 = fed.create_task(numRounds=1)
    tid2 = fed.create_task(numRounds=1)
    fed.advance_after_deadline(tid1)
    assert tm.getTask(tid1).status == TASK_COMPLETED
    assert tm.getTask(tid2).status == TASK_ACTIVE
    rcpt = tm.reclaimUnallocated(tid1, sender=fed.sponsor)
    assert one_event(rcpt, tm.BudgetReclaimed)["amount"] == tm.getTask(tid2).remainingBudget
    assert fed.token.balanceOf(tm) == tm.getTask(tid2).remainingBudget
    with reverts_with("TaskNotCompleted", taskId=tid2):
        tm.reclaimUnallocated(tid2, sender=fed.sponsor)


def test_claim_reverts(fed):
    tm = fed.tm
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    samples = {t0: 10, t1: 20, t2: 30}
    fed.trainer_phases(tid, samples, reveal_only=[t0, t1])
    scores = {t0: 500_000, t1: 250_000}
    result, tree = fed.make_result(tid, 1, scores, {t0: 10, t1: 20})
    fed.aggregator_phases(tid, {fed.aggregators[0]: result})
    assert fed.round_of(tid, 1).phase == PH_AGG_REVEAL
    with reverts_with("WrongPhase", expected=PH_FINALIZED, actual=PH_AGG_REVEAL):
        tm.claimReward(tid, 1, scores[t0], tree.proof(t0), sender=t0)
    fed.finish_round(tid)
    with reverts_with("WrongPhase", expected=PH_FINALIZED, actual=PH_TRAINER_COMMIT):
        tm.claimReward(tid, 2, scores[t0], tree.proof(t0), sender=t0)

    with reverts_with("NotCommitted"):
        tm.claimReward(tid, 1, scores[t0], tree.proof(t0), sender=fed.outsider)
    with reverts_with("NotRevealed"):
        tm.claimReward(tid, 1, 0, [], sender=t2)
    tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert tm.getTrainerEntry(tid, 1, t2).status == TR_SLASHED
    with reverts_with("NotRevealed"):
        tm.claimReward(tid, 1, 0, [], sender=t2)

    with reverts_with("InvalidProof"):
        tm.claimReward(tid, 1, scores[t0] + 1, tree.proof(t0), sender=t0)  # inflated score
    with reverts_with("InvalidProof"):
        tm.claimReward(tid, 1, scores[t1], tree.proof(t1), sender=t0)  # someone else's leaf
    with reverts_with("InvalidProof"):
        tm.claimReward(tid, 1, scores[t0], [], sender=t0)

    tm.claimReward(tid, 1, scores[t0], tree.proof(t0), sender=t0)
    with reverts_with("AlreadyClaimed"):
        tm.claimReward(tid, 1, scores[t0], tree.proof(t0), sender=t0)
    fed.assert_conserved()


def test_round_overpaid_when_attested_weight_is_too_small(fed):
    """A (colluding) committee attests a totalWeight below the true sum: payouts stop at roundBudget."""
    tm, token = fed.tm, fed.token
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=1)
    samples = {t0: 10, t1: 10}
    scores = {t0: 1_000_000, t1: 1_000_000}
    fed.trainer_phases(tid, samples)
    result, tree = fed.make_result(tid, 1, scores, samples, totalWeight=10_000_000)  # true sum is 20_000_000
    fed.aggregator_phases(tid, {fed.aggregators[0]: result})
    fed.finish_round(tid)
    budget = fed.round_of(tid, 1).roundBudget
    assert budget == tm.getTask(tid).params.rewardBudget
    rcpt = tm.claimReward(tid, 1, scores[t0], tree.proof(t0), sender=t0)
    assert one_event(rcpt, tm.RewardClaimed)["amount"] == budget
    with reverts_with("RoundOverpaid", available=0, reward=budget):
        tm.claimReward(tid, 1, scores[t1], tree.proof(t1), sender=t1)
    assert fed.round_of(tid, 1).paid == budget
    assert token.balanceOf(tm) == 0
    fed.assert_conserved()

"""Budgets in the RewardVault: failed-round rollover, rejected rounds, claims and their reverts, the committee's
share, the protocol fee, the claim window and sweeping, reclaiming what was never allocated."""

import pytest

from tests.support.contracts import (
    AG_CLAIMED,
    PH_FAILED,
    PH_FINALIZED,
    TASK_ACTIVE,
    TASK_COMPLETED,
    TR_CLAIMED,
    TR_SLASHED,
    assert_event,
    events,
    label,
    one_event,
    reverts_with,
)

DAY = 24 * 3600


def test_failed_round_rolls_budget_over(fed, chain):
    tm, vault, token = fed.tm, fed.vault, fed.token
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=3)
    budget = tm.getTask(tid).remainingBudget
    assert token.balanceOf(vault) == budget  # the sponsor's budget sits in the vault, not the TaskManager

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
    rcpt, _, _ = fed.full_round(tid, {t0: 1, t1: 1}, {t0: 1, t1: 1})
    assert one_event(rcpt, tm.RoundFinalized)["roundBudget"] == budget - b2
    assert_event(rcpt, tm.TaskCompleted, taskId=tid)
    assert tm.getTask(tid).remainingBudget == 0
    with reverts_with("NothingToReclaim"):
        vault.reclaimUnallocated(tid, sender=fed.sponsor)

    trainers_part, aggregators_part, fee = vault.splitOf(tid, 2)
    assert trainers_part + aggregators_part + fee == b2 and aggregators_part == b2 * 300 // 10_000 and fee == 0
    for t, s, n in ((t0, 123_457, 3), (t1, 999_999, 7)):
        rcpt = fed.claim(tid, 2, t, tree)
        assert one_event(rcpt, tm.RewardClaimed)["amount"] == trainers_part * s * n // result.totalWeight
    fed.assert_conserved()


def test_all_rejected_round_allocates_nothing(fed):
    tm, vault = fed.tm, fed.vault
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
        vault.claimReward(tid, 1, 0, 0, tree.proof(t0), sender=t0)
    # the last round then gets the whole budget
    rcpt, _, _ = fed.full_round(tid, {t0: 5, t1: 5}, {t0: 5, t1: 5})
    assert one_event(rcpt, tm.RoundFinalized)["roundBudget"] == budget


def test_reclaim_unallocated(fed):
    tm, vault, token, sponsor = fed.tm, fed.vault, fed.token, fed.sponsor
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=2)
    budget = tm.getTask(tid).remainingBudget
    with reverts_with("TaskNotCompleted", taskId=tid):
        vault.reclaimUnallocated(tid, sender=sponsor)
    fed.full_round(tid, {t0: 2, t1: 2}, {t0: 10, t1: 30})  # round 1 takes budget // 2
    rcpt = fed.advance_after_deadline(tid)  # round 2: no commits -> fails, task completes
    assert_event(rcpt, tm.RoundFailed, taskId=tid, round=2, reason=label("TooFewTrainers"))
    assert_event(rcpt, tm.TaskCompleted, taskId=tid)
    assert events(rcpt, tm.RoundStarted) == []
    info = tm.getTask(tid)
    assert (info.status, info.currentRound) == (TASK_COMPLETED, 2)
    unallocated = budget - budget // 2
    assert info.remainingBudget == unallocated

    with reverts_with("NotSponsor"):
        vault.reclaimUnallocated(tid, sender=fed.outsider)
    before = token.balanceOf(sponsor)
    rcpt = vault.reclaimUnallocated(tid, sender=sponsor)
    assert_event(rcpt, vault.BudgetReclaimed, taskId=tid, sponsor=sponsor, amount=unallocated)
    assert token.balanceOf(sponsor) == before + unallocated
    with reverts_with("NothingToReclaim"):
        vault.reclaimUnallocated(tid, sender=sponsor)
    assert token.balanceOf(vault) == budget // 2  # the allocated round-1 budget stays claimable
    fed.assert_conserved()


def test_reclaim_is_per_task(fed):
    tm, vault = fed.tm, fed.vault
    tid1 = fed.create_task(numRounds=1)
    tid2 = fed.create_task(numRounds=1)
    fed.advance_after_deadline(tid1)
    assert tm.getTask(tid1).status == TASK_COMPLETED
    assert tm.getTask(tid2).status == TASK_ACTIVE
    rcpt = vault.reclaimUnallocated(tid1, sender=fed.sponsor)
    assert one_event(rcpt, vault.BudgetReclaimed)["amount"] == tm.getTask(tid2).remainingBudget
    assert fed.token.balanceOf(vault) == tm.getTask(tid2).remainingBudget
    with reverts_with("TaskNotCompleted", taskId=tid2):
        vault.reclaimUnallocated(tid2, sender=fed.sponsor)


def test_claim_reverts(fed):
    tm, vault = fed.tm, fed.vault
    t0, t1, t2 = fed.trainers[:3]
    tid = fed.create_task()
    samples = {t0: 10, t1: 20, t2: 30}
    fed.trainer_phases(tid, samples, reveal_only=[t0, t1])
    scores = {t0: 500_000, t1: 250_000}
    result, tree = fed.make_result(tid, 1, scores, {t0: 10, t1: 20})
    fed.aggregator_phases(tid, {fed.draw(tid)[0]: result})
    with reverts_with("RoundNotFinalized"):
        fed.claim(tid, 1, t0, tree)
    fed.finish_round(tid)
    with reverts_with("RoundNotFinalized"):
        vault.claimReward(tid, 2, scores[t0], 10, tree.proof(t0), sender=t0)

    with reverts_with("NotRevealed", status=0):
        vault.claimReward(tid, 1, scores[t0], 10, tree.proof(t0), sender=fed.outsider)
    with reverts_with("NotRevealed", status=1):
        vault.claimReward(tid, 1, 1, 1, [], sender=t2)
    tm.slashNonRevealingTrainer(tid, 1, t2, sender=fed.outsider)
    assert tm.getTrainerEntry(tid, 1, t2).status == TR_SLASHED
    with reverts_with("NotRevealed", status=TR_SLASHED):
        vault.claimReward(tid, 1, 1, 1, [], sender=t2)

    with reverts_with("InvalidProof"):
        vault.claimReward(tid, 1, scores[t0] + 1, 10, tree.proof(t0), sender=t0)  # inflated score
    with reverts_with("InvalidProof"):
        vault.claimReward(tid, 1, scores[t0], 11, tree.proof(t0), sender=t0)  # inflated weight
    with reverts_with("InvalidProof"):
        vault.claimReward(tid, 1, scores[t1], 20, tree.proof(t1), sender=t0)  # someone else's leaf
    with reverts_with("InvalidProof"):
        vault.claimReward(tid, 1, scores[t0], 10, [], sender=t0)
    with reverts_with("NothingToClaim"):
        vault.claimReward(tid, 1, 0, 0, tree.proof(t0), sender=t0)

    bond = tm.getTrainerEntry(tid, 1, t0).bond
    reserved = fed.staking.reservedOf(t0)
    fed.claim(tid, 1, t0, tree)
    entry = tm.getTrainerEntry(tid, 1, t0)
    assert (entry.status, entry.bond) == (TR_CLAIMED, 0)
    assert fed.staking.reservedOf(t0) == reserved - bond  # claiming releases the round's bond
    with reverts_with("AlreadyClaimed"):
        fed.claim(tid, 1, t0, tree)
    fed.assert_conserved()


def test_round_overpaid_when_attested_weight_is_too_small(fed):
    """A (colluding) committee attests a totalWeight below the true sum: payouts stop at the trainers' part."""
    vault, token = fed.vault, fed.token
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=1)
    samples = {t0: 10, t1: 10}
    scores = {t0: 1_000_000, t1: 1_000_000}
    fed.trainer_phases(tid, samples)
    result, tree = fed.make_result(tid, 1, scores, samples, totalWeight=10_000_000)  # true sum is 20_000_000
    fed.aggregator_phases(tid, {fed.draw(tid)[0]: result})
    fed.finish_round(tid)
    part = fed.trainer_share(tid, 1)
    rcpt = fed.claim(tid, 1, t0, tree)
    assert one_event(rcpt, fed.tm.RewardClaimed)["amount"] == part
    with reverts_with("RoundOverpaid", available=0, reward=part):
        fed.claim(tid, 1, t1, tree)
    assert vault.paidOf(tid, 1)[0] == part
    assert token.balanceOf(vault) == fed.round_of(tid, 1).roundBudget - part  # the committee's share is left
    fed.assert_conserved()


def test_matching_committee_members_share_the_aggregator_reward(fed):
    """Issue 15: the members whose reveal matched the accepted result split aggregatorRewardBps of the round
    budget; a dissenter gets nothing and is slashed; the dust and the unclaimed part are swept to the sponsor."""
    committee, vault, token = fed.committee, fed.vault, fed.token
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=1, aggregatorQuorum=2, maxAggregators=3)
    samples, scores = {t0: 4, t1: 6}, {t0: 700_000, t1: 300_000}
    fed.trainer_phases(tid, samples)
    members = fed.draw(tid)
    assert len(members) == 3
    honest, tree = fed.make_result(tid, 1, scores, samples)
    forged, _ = fed.make_result(tid, 1, {t0: 1_000_000, t1: 0}, samples, tag="forged")
    fed.aggregator_phases(tid, {members[0]: honest, members[1]: honest, members[2]: forged})
    fed.finish_round(tid)
    assert fed.round_of(tid, 1).phase == PH_FINALIZED
    _, share, _ = vault.splitOf(tid, 1)
    assert share == fed.round_of(tid, 1).roundBudget * 300 // 10_000

    for member in members[:2]:
        before = token.balanceOf(member)
        rcpt = vault.claimAggregatorReward(tid, 1, sender=member)
        assert_event(rcpt, vault.AggregatorRewardClaimed, taskId=tid, round=1, aggregator=member, amount=share // 2)
        assert token.balanceOf(member) == before + share // 2
        entry = committee.getAggregatorEntry(tid, 1, member)
        assert (entry.status, entry.bond) == (AG_CLAIMED, 0)
        with reverts_with("AlreadyClaimed"):
            vault.claimAggregatorReward(tid, 1, sender=member)
    with reverts_with("NotInAcceptedQuorum"):
        vault.claimAggregatorReward(tid, 1, sender=members[2])
    committee.slashAggregator(tid, 1, members[2], sender=fed.outsider)
    with reverts_with("NotRevealed"):
        vault.claimAggregatorReward(tid, 1, sender=members[2])
    fed.claim(tid, 1, t0, tree)  # t1 never claims

    with reverts_with("ClaimWindowOpen"):
        vault.sweep(tid, 1, sender=fed.outsider)
    fed.chain.pending_timestamp = fed.round_of(tid, 1).finalizedAt + 180 * DAY + 1
    with reverts_with("ClaimWindowClosed"):
        fed.claim(tid, 1, t1, tree)
    before = token.balanceOf(fed.sponsor)
    rcpt = vault.sweep(tid, 1, sender=fed.outsider)
    swept = one_event(rcpt, vault.RoundSwept)["amount"]
    budget = fed.round_of(tid, 1).roundBudget
    trainers_paid, aggregators_paid, _, _ = vault.paidOf(tid, 1)
    assert swept == budget - trainers_paid - aggregators_paid > 0  # t1's reward and the rounding dust
    assert token.balanceOf(fed.sponsor) == before + swept
    with reverts_with("AlreadySwept"):
        vault.sweep(tid, 1, sender=fed.outsider)
    fed.assert_conserved()
    assert token.balanceOf(vault) == 0  # nothing is stuck


def test_protocol_fee_goes_to_the_treasury_once(fed):
    vault, token = fed.vault, fed.token
    t0, t1 = fed.trainers[:2]
    with reverts_with("AccessControlUnauthorizedAccount"):
        vault.setTerms(300, 100, 180 * DAY, sender=fed.outsider)
    for bad in ((2_001, 0, DAY), (0, 1_001, DAY), (0, 0, 59 * 60), (0, 0, 1826 * DAY)):
        with reverts_with("InvalidTerms"):
            vault.setTerms(*bad, sender=fed.admin)
    vault.setTerms(500, 100, 7 * DAY, sender=fed.admin)
    tid = fed.create_task(numRounds=1)
    assert vault.termsOf(tid)[:3] == (500, 100, 7 * DAY)
    vault.setTerms(300, 0, 180 * DAY, sender=fed.admin)  # later changes do not touch a running task
    _, _, tree = fed.full_round(tid, {t0: 5, t1: 5}, {t0: 1, t1: 1})
    budget = fed.round_of(tid, 1).roundBudget
    trainers_part, aggregators_part, fee = vault.splitOf(tid, 1)
    assert (aggregators_part, fee) == (budget * 500 // 10_000, budget * 100 // 10_000)
    assert trainers_part == budget - aggregators_part - fee
    treasury = fed.staking.treasury()
    before = token.balanceOf(treasury)
    rcpt = fed.claim(tid, 1, t0, tree)  # the first claim collects the fee
    assert_event(rcpt, vault.FeeCollected, taskId=tid, round=1, treasury=treasury, amount=fee)
    assert token.balanceOf(treasury) == before + fee
    assert vault.collectFee(tid, 1, sender=fed.outsider).return_value == 0
    assert token.balanceOf(treasury) == before + fee
    fed.assert_conserved()


@pytest.mark.parametrize("window", [3600, 30 * DAY])
def test_claims_close_with_the_window(fed, window):
    vault = fed.vault
    t0, t1 = fed.trainers[:2]
    vault.setTerms(300, 0, window, sender=fed.admin)
    tid = fed.create_task(numRounds=1)
    _, _, tree = fed.full_round(tid, {t0: 5, t1: 5}, {t0: 1, t1: 1})
    closes = fed.round_of(tid, 1).finalizedAt + window
    fed.chain.pending_timestamp = closes - 1
    with reverts_with("ClaimWindowOpen", closesAt=closes):
        vault.sweep(tid, 1, sender=fed.outsider)
    fed.chain.pending_timestamp = closes
    fed.claim(tid, 1, t0, tree)  # the last second of the window
    fed.chain.pending_timestamp = closes + 1
    with reverts_with("ClaimWindowClosed", closedAt=closes):
        fed.claim(tid, 1, t1, tree)
    vault.sweep(tid, 1, sender=fed.outsider)
    fed.assert_conserved()

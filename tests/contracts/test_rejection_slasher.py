"""RejectionSlasher: a proof of a (trainer, 0, 0) leaf in a finalized round slashes that trainer's bond for the
round, once, and only until the round is settled."""

import pytest

from tests.support.contracts import (
    PH_FINALIZED,
    PH_TRAINER_COMMIT,
    TR_NONE,
    TR_SLASHED,
    deploy_reverts_with,
    reverts_with,
)

BPS = 7_500


@pytest.fixture(scope="module")
def slasher(project, fed, admin):
    contract = admin.deploy(project.RejectionSlasher, fed.tm, admin, BPS)
    fed.tm.grantRole(fed.tm.REJECTION_ROLE(), contract, sender=admin)
    return contract


@pytest.fixture
def rejected_round(fed):
    """A finalized round: trainer 0 rejected (score 0), trainers 1 and 2 accepted."""
    t0, t1, t2 = fed.trainers[:3]
    task_id = fed.create_task()
    samples = {t0: 100, t1: 200, t2: 300}
    _, _, tree = fed.full_round(task_id, samples, {t0: 0, t1: 500_000, t2: 1})
    assert fed.round_of(task_id, 1).phase == PH_FINALIZED
    return task_id, tree


def test_rejected_trainer_forfeits_part_of_its_bond_once(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t0 = fed.trainers[0]
    stake, reserved = fed.staking.stakeOf(t0), fed.staking.reservedOf(t0)
    bond = fed.tm.getTrainerEntry(task_id, 1, t0).bond
    assert bond == 100 * 10**18  # the task's minTrainerStake
    treasury = fed.token.balanceOf(fed.treasury)
    receipt = slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)
    amount = bond * BPS // 10_000  # of the bond at risk, not of the whole stake
    logs = list(receipt.decode_logs(slasher.RejectedTrainerSlashed))
    assert len(logs) == 1 and logs[0].trainer == t0.address and logs[0].amount == amount
    slashed = list(receipt.decode_logs(fed.staking.Slashed))
    assert len(slashed) == 1 and bytes(slashed[0].reason).rstrip(b"\0") == b"RejectedTrainer"
    assert fed.staking.stakeOf(t0) == stake - amount
    assert fed.staking.reservedOf(t0) == reserved - bond  # the rest of the bond is released
    assert fed.token.balanceOf(fed.treasury) == treasury + amount
    assert fed.tm.getTrainerEntry(task_id, 1, t0).status == TR_SLASHED
    assert slasher.isSlashed(task_id, 1, t0)
    with reverts_with("AlreadySlashed"):
        slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)
    fed.assert_conserved()


def test_a_rejected_trainer_cannot_claim_its_way_out(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t0 = fed.trainers[0]
    with reverts_with("NothingToClaim"):  # a zero score claims nothing, so the bond stays at risk
        fed.vault.claimReward(task_id, 1, 0, 0, tree.proof(t0.address), sender=t0)
    with reverts_with("NotSettled"):
        fed.tm.releaseBond(task_id, 1, t0, sender=t0)
    slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)


def test_rejection_slashes_close_at_settlement(fed, slasher, rejected_round):
    """Issue 15: a slasher has a deadline, after which the bond is released to the trainer."""
    task_id, tree = rejected_round
    t0 = fed.trainers[0]
    settled = fed.round_of(task_id, 1).settledAt
    fed.chain.pending_timestamp = settled + 1
    with reverts_with("SettlementClosed", settledAt=settled):
        slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)
    reserved = fed.staking.reservedOf(t0)
    fed.tm.releaseBond(task_id, 1, t0, sender=fed.outsider)
    assert fed.staking.reservedOf(t0) == reserved - 100 * 10**18


def test_accepted_trainers_and_bad_rounds_cannot_be_slashed(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t1, t2, outsider_trainer = fed.trainers[1], fed.trainers[2], fed.trainers[3]
    for accepted in (t1, t2):  # their own proofs prove their non-zero leaves, not (trainer, 0, 0)
        with reverts_with("NotRejected"):
            slasher.slashRejectedTrainer(task_id, 1, accepted, tree.proof(accepted.address), sender=fed.outsider)
    with reverts_with("NotRejected"):  # another trainer's zero leaf does not prove anything about t1
        slasher.slashRejectedTrainer(task_id, 1, t1, tree.proof(fed.trainers[0].address), sender=fed.outsider)
    with reverts_with("NotRevealed", status=TR_NONE):
        slasher.slashRejectedTrainer(task_id, 1, outsider_trainer, [], sender=fed.outsider)
    # round 2 of the task has just started, it is not finalized
    with reverts_with("RoundNotFinalized", phase=PH_TRAINER_COMMIT):
        slasher.slashRejectedTrainer(task_id, 2, t1, [], sender=fed.outsider)


def test_only_the_rejection_role_forfeits_bonds(fed, rejected_round):
    task_id, _ = rejected_round
    with reverts_with("AccessControlUnauthorizedAccount"):
        fed.tm.forfeitBond(task_id, 1, fed.trainers[1], 10_000, b"\x01" * 32, sender=fed.outsider)


def test_slash_fraction_is_a_dao_parameter(fed, slasher, admin):
    with reverts_with("AccessControlUnauthorizedAccount"):
        slasher.setSlashBps(100, sender=fed.outsider)
    with reverts_with("InvalidSlashFraction", bps=10_001):
        slasher.setSlashBps(10_001, sender=admin)
    receipt = slasher.setSlashBps(0, sender=admin)
    logs = list(receipt.decode_logs(slasher.RejectionSlashFractionChanged))
    assert (logs[0].oldBps, logs[0].newBps) == (BPS, 0)
    assert slasher.slashBps() == 0
    assert slasher.hasRole(slasher.PARAMETER_ROLE(), admin)


def test_constructor_checks(project, fed, admin):
    deploy_reverts_with(project.RejectionSlasher, fed.tm, "0x" + "00" * 20, BPS, sender=admin, name="ZeroAddress")
    deploy_reverts_with(project.RejectionSlasher, fed.tm, admin, 10_001, sender=admin, name="InvalidSlashFraction",
                        bps=10_001)

"""RejectionSlasher: a proof of a (trainer, 0) leaf in a finalized round slashes that trainer, once."""

import ape
import pytest

from tests.support.contracts import PH_FINALIZED, PH_TRAINER_COMMIT, TR_NONE, deploy_reverts_with, reverts_with

BPS = 750


@pytest.fixture(scope="module")
def slasher(project, fed, admin):
    contract = admin.deploy(project.RejectionSlasher, fed.tm, fed.staking, admin, BPS)
    fed.staking.grantRole(fed.staking.SLASHER_ROLE(), contract, sender=admin)
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


def test_rejected_trainer_is_slashed_once(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t0 = fed.trainers[0]
    stake = fed.staking.stakeOf(t0)
    treasury = fed.token.balanceOf(fed.treasury)
    receipt = slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)
    amount = stake * BPS // 10_000
    logs = list(receipt.decode_logs(slasher.RejectedTrainerSlashed))
    assert len(logs) == 1 and logs[0].trainer == t0.address and logs[0].amount == amount
    slashed = list(receipt.decode_logs(fed.staking.Slashed))
    assert len(slashed) == 1 and bytes(slashed[0].reason).rstrip(b"\0") == b"RejectedTrainer"
    assert fed.staking.stakeOf(t0) == stake - amount
    assert fed.token.balanceOf(fed.treasury) == treasury + amount
    assert slasher.isSlashed(task_id, 1, t0)
    with reverts_with("AlreadySlashed"):
        slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)


def test_claimed_zero_score_is_still_slashable(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t0 = fed.trainers[0]
    fed.tm.claimReward(task_id, 1, 0, tree.proof(t0.address), sender=t0)  # pays 0, marks Claimed
    stake = fed.staking.stakeOf(t0)
    slasher.slashRejectedTrainer(task_id, 1, t0, tree.proof(t0.address), sender=fed.outsider)
    assert fed.staking.stakeOf(t0) == stake - stake * BPS // 10_000


def test_accepted_trainers_and_bad_rounds_cannot_be_slashed(fed, slasher, rejected_round):
    task_id, tree = rejected_round
    t1, t2, outsider_trainer = fed.trainers[1], fed.trainers[2], fed.trainers[3]
    for accepted in (t1, t2):  # their own proofs prove their non-zero leaves, not (trainer, 0)
        with reverts_with("NotRejected"):
            slasher.slashRejectedTrainer(task_id, 1, accepted, tree.proof(accepted.address), sender=fed.outsider)
    with reverts_with("NotRejected"):  # another trainer's zero leaf does not prove anything about t1
        slasher.slashRejectedTrainer(task_id, 1, t1, tree.proof(fed.trainers[0].address), sender=fed.outsider)
    with reverts_with("NotRevealed", status=TR_NONE):
        slasher.slashRejectedTrainer(task_id, 1, outsider_trainer, [], sender=fed.outsider)
    # round 2 of the task has just started, it is not finalized
    with reverts_with("RoundNotFinalized", phase=PH_TRAINER_COMMIT):
        slasher.slashRejectedTrainer(task_id, 2, t1, [], sender=fed.outsider)


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
    with deploy_reverts_with("ZeroAddress()"):
        admin.deploy(project.RejectionSlasher, fed.tm, fed.staking, "0x" + "00" * 20, BPS)
    with ape.reverts():
        admin.deploy(project.RejectionSlasher, fed.tm, fed.staking, admin, 10_001)

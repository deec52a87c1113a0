"""The full proposal lifecycle on anvil with time travel, and the changed parameter in effect next round."""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

from fedchain.ape import governance as gov
from fedchain.ape.deploy import privileged_holders
from fedchain.protocol import ONE_TOKEN, Phase
from tests.governance.test_dao_security import revert_selector
from tests.support.governance import CONFIG, TRAINER_STAKE, create_task, now, pass_proposal, travel, travel_to


def test_deployer_keeps_nothing_and_the_timelock_holds_everything(dao):
    fed = dao.fed
    assert privileged_holders(fed, dao.deployer.address) == []
    held = privileged_holders(fed, fed.timelock.address)
    for role in ("FedToken.DEFAULT_ADMIN_ROLE", "FedToken.MINTER_ROLE", "Staking.DEFAULT_ADMIN_ROLE",
                 "Staking.PARAMETER_ROLE", "TaskManager.DEFAULT_ADMIN_ROLE", "TaskManager.PARAMETER_ROLE",
                 "ProtocolPolicy.DEFAULT_ADMIN_ROLE", "ProtocolPolicy.PARAMETER_ROLE",
                 "FedTimelock.DEFAULT_ADMIN_ROLE", "RejectionSlasher.DEFAULT_ADMIN_ROLE",
                 "RejectionSlasher.PARAMETER_ROLE"):
        assert role in held
    assert privileged_holders(fed, dao.guardian.address) == ["ProtocolPolicy.GUARDIAN_ROLE"]
    assert set(privileged_holders(fed, fed.governor.address)) == {
        "FedTimelock.PROPOSER_ROLE", "FedTimelock.CANCELLER_ROLE", "FedTimelock.EXECUTOR_ROLE"}
    assert fed.staking.treasury() == fed.timelock.address
    assert fed.tasks.policy() == fed.policy.address
    assert fed.governor.timelock() == fed.timelock.address
    assert fed.governor.quorumNumerator() == CONFIG.quorum_percent
    assert fed.timelock.getMinDelay() == CONFIG.timelock_delay


def test_lifecycle_changes_min_trainer_stake_for_the_next_round(dao):
    fed = dao.fed
    task_id = create_task(dao, rounds=3, phase=60)
    # round 1: 150 FED staked is enough for the task's 100 FED minimum
    fed.tasks.commitUpdate(task_id, 1, b"\x01" * 32, sender=dao.trainer)

    actions = gov.parameter_actions(fed, {"minTrainerStake": "200"})
    assert len(actions) == 1 and "minTrainerStake 10 FED -> 200 FED" in actions[0].summary
    pid = gov.propose(fed, dao.alice, actions, "Raise the trainer stake floor")
    status = gov.proposal_status(fed, pid)
    assert status["state"] == gov.ProposalState.PENDING
    assert status["title"] == "Raise the trainer stake floor"
    with pytest.raises(gov.GovernanceError, match="it is Pending, vote needs Active; voting opens"):
        gov.vote(fed, dao.alice, pid, "for")

    travel(CONFIG.voting_delay + 1)
    gov.vote(fed, dao.alice, pid, "for", reason="stronger sybil resistance")
    gov.vote(fed, dao.bob, pid, "abstain")
    with pytest.raises(gov.GovernanceError, match="already voted"):
        gov.vote(fed, dao.bob, pid, "against")
    with pytest.raises(gov.GovernanceError, match="it is Active, queue needs Succeeded"):
        gov.queue(fed, dao.outsider, pid)
    status = gov.proposal_status(fed, pid)
    assert (status["for"], status["against"], status["abstain"]) == (1000 * ONE_TOKEN, 0, 600 * ONE_TOKEN)
    supply = fed.token.totalSupply()
    assert status["quorum"] == supply * CONFIG.quorum_percent // 100
    assert "quorum" in gov.format_status(status) and "Active" in gov.format_status(status)

    travel_to(status["deadline"] + 1)
    assert gov.proposal_status(fed, pid)["state"] == gov.ProposalState.SUCCEEDED
    gov.queue(fed, dao.outsider, pid)
    status = gov.proposal_status(fed, pid)
    assert status["state"] == gov.ProposalState.QUEUED
    assert status["eta"] >= now() + CONFIG.timelock_delay - 2
    with pytest.raises(gov.GovernanceError, match="too early"):
        gov.execute(fed, dao.outsider, pid)
    p = gov.find_proposal(fed, pid)
    with ape.reverts():  # the timelock itself refuses before the ETA, not just our pre-check
        fed.governor.execute(p["targets"], p["values"], p["calldatas"], p["description_hash"], sender=dao.outsider)

    travel_to(status["eta"])
    gov.execute(fed, dao.outsider, pid)
    assert gov.proposal_status(fed, pid)["state"] == gov.ProposalState.EXECUTED
    assert fed.policy.minTrainerStake() == 200 * ONE_TOKEN
    assert [p["id"] for p in gov.list_proposals(fed)] == [pid]

    # the next round of the running task (and any new task) needs 200 FED: 150 staked is not enough now
    while fed.task(task_id).current_round == 1:
        travel(61)
        fed.tasks.advance(task_id, sender=dao.outsider)
    assert fed.round(task_id, 2).phase == Phase.TRAINER_COMMIT
    # round 1's bond (100 FED) stays reserved until that round settles: 50 FED of the 150 are free
    free = fed.free_stake(dao.trainer.address)
    assert free == TRAINER_STAKE - 100 * ONE_TOKEN and fed.trainer_bond(task_id) == 200 * ONE_TOKEN
    with ape.reverts(fed.tasks.InsufficientStake, available=free, required=200 * ONE_TOKEN):
        fed.tasks.commitUpdate(task_id, 2, b"\x02" * 32, sender=dao.trainer)
    fed.token.approve(fed.staking.address, 150 * ONE_TOKEN, sender=dao.trainer)
    fed.staking.stake(150 * ONE_TOKEN, sender=dao.trainer)
    fed.tasks.commitUpdate(task_id, 2, b"\x02" * 32, sender=dao.trainer)
    assert fed.trainer_entry(task_id, 2, dao.trainer.address).bond == 200 * ONE_TOKEN


def test_paired_parameters_keep_the_other_value(dao):
    fed = dao.fed
    pass_proposal(dao, gov.parameter_actions(fed, {"trainerSlashBps": "750", "unbondingDelay": "7200",
                                                   "rejectionSlashBps": "900"}))
    assert fed.rejection_slasher.slashBps() == 900
    assert fed.tasks.trainerSlashBps() == 750
    assert fed.tasks.aggregatorSlashBps() == 5000
    assert fed.staking.unbondingDelay() == 7200


def test_the_dao_sets_the_reward_terms_and_the_settlement_window(dao):
    fed = dao.fed
    pass_proposal(dao, gov.parameter_actions(fed, {"aggregatorRewardBps": "500", "protocolFeeBps": "50",
                                                   "settlementWindow": "3600"}))
    assert (fed.vault.aggregatorRewardBps(), fed.vault.protocolFeeBps()) == (500, 50)
    assert fed.vault.claimWindow() == 180 * 24 * 3600  # the third of the group keeps its value
    assert fed.tasks.settlementWindow() == 3600
    task_id = create_task(dao)
    assert fed.vault_terms(task_id).protocol_fee_bps == 50
    with pytest.raises(gov.GovernanceError):
        gov.parameter_actions(fed, {"claimWindow": "-5"})


def test_strategy_allowlist_and_quorum_bounds_apply_to_new_tasks(dao):
    fed = dao.fed
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="strategy"):
        create_task(dao, strategy="my-secret-rule")
    actions = [gov.strategy_action(fed, "my-secret-rule", True), gov.strategy_action(fed, "fedavg", False)]
    actions += gov.parameter_actions(fed, {"minAggregatorQuorum": "2"})
    pass_proposal(dao, actions)
    create_task(dao, strategy="my-secret-rule", quorum=2)
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="strategy"):
        create_task(dao, strategy="fedavg", quorum=2)
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="aggregatorQuorum"):
        create_task(dao, strategy="my-secret-rule", quorum=1)


def test_the_dao_bounds_the_model_size_new_tasks_may_declare(dao):
    fed = dao.fed
    assert fed.policy.maxModelBytes() == 4 << 30
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="maxModelBytes"):
        create_task(dao, max_model_bytes=(4 << 30) + 1)
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="maxModelBytes"):
        create_task(dao, max_model_bytes=0)
    for bad in (0, (1 << 40) + 1):  # the setter bounds what even the DAO may set (an eth_call from the timelock)
        assert revert_selector(fed.policy, "setMaxModelBytes", (bad,), fed.timelock.address) == \
            keccak(text="InvalidMaxModelBytes(uint64,uint64)")[:4]
    running = create_task(dao, max_model_bytes=1 << 30)
    pass_proposal(dao, gov.parameter_actions(fed, {"maxModelBytes": str(1 << 20)}))
    assert fed.policy.maxModelBytes() == 1 << 20
    with ape.reverts(fed.tasks.InvalidTaskParams, reason="maxModelBytes"):
        create_task(dao, max_model_bytes=1 << 30)
    create_task(dao, max_model_bytes=1 << 20)
    assert fed.task(running).spec.max_model_bytes == 1 << 30  # a running task keeps the bound it declared
    with pytest.raises(gov.GovernanceError):
        gov.parameter_actions(fed, {"maxModelBytes": "-1"})


def test_treasury_receives_slashes_and_only_a_proposal_spends_it(dao):
    fed = dao.fed
    task_id = create_task(dao, rounds=1, phase=60)
    fed.tasks.commitUpdate(task_id, 1, b"\x01" * 32, sender=dao.trainer)
    travel(61)
    fed.tasks.advance(task_id, sender=dao.outsider)  # -> reveal; the trainer never reveals
    travel(61)
    fed.tasks.advance(task_id, sender=dao.outsider)  # -> failed (too few trainers)
    fed.tasks.slashNonRevealingTrainer(task_id, 1, dao.trainer, sender=dao.outsider)
    slashed = 100 * ONE_TOKEN  # the whole bond of the commitment
    assert fed.token.balanceOf(fed.timelock.address) == slashed
    with ape.reverts():
        fed.timelock.execute(fed.token.address, 0, b"", b"\x00" * 32, b"\x00" * 32, sender=dao.alice)
    spend = gov.call_action(fed, "token", "transfer(address,uint256)", [dao.carol.address, slashed])
    mint = gov.call_action(fed, "token", "mint(address,uint256)", [dao.carol.address, 5 * ONE_TOKEN])
    before = fed.token.balanceOf(dao.carol.address)
    pass_proposal(dao, [spend, mint], "Pay carol from the treasury and mint a grant")
    assert fed.token.balanceOf(dao.carol.address) == before + slashed + 5 * ONE_TOKEN
    assert fed.token.balanceOf(fed.timelock.address) == 0


def test_aggregator_allowlist_is_governed(dao):
    fed = dao.fed
    role = fed.committee.AGGREGATOR_ROLE()
    assert fed.committee.hasRole(fed.committee.DEFAULT_ADMIN_ROLE(), fed.timelock.address)
    with ape.reverts():
        fed.committee.grantRole(role, dao.carol.address, sender=dao.deployer)
    pass_proposal(dao, [gov.role_action(fed, "committee", "AGGREGATOR_ROLE", dao.carol.address, True),
                        gov.role_action(fed, "committee", "AGGREGATOR_ROLE", dao.aggregator.address, False)])
    assert fed.committee.hasRole(role, dao.carol.address)
    assert not fed.committee.hasRole(role, dao.aggregator.address)


def test_governor_settings_change_only_by_proposal(dao):
    fed = dao.fed
    pass_proposal(dao, gov.parameter_actions(fed, {"votingPeriod": "900", "quorumPercent": "10",
                                                   "timelockDelay": "7200", "proposalThreshold": "50"}))
    assert fed.governor.votingPeriod() == 900
    assert fed.governor.quorumNumerator() == 10
    assert fed.timelock.getMinDelay() == 7200
    assert fed.governor.proposalThreshold() == 50 * ONE_TOKEN


def test_bad_input_is_explained(dao):
    fed = dao.fed
    with pytest.raises(gov.GovernanceError, match="unknown parameter noSuchThing"):
        gov.parameter_actions(fed, {"noSuchThing": "1"})
    with pytest.raises(gov.GovernanceError, match="expected an amount of FED"):
        gov.parameter_actions(fed, {"minTrainerStake": "lots"})
    with pytest.raises(gov.GovernanceError, match="not enough votes to propose"):
        gov.propose(fed, dao.carol, gov.parameter_actions(fed, {"trainerSlashBps": "1"}), "tiny")
    with pytest.raises(gov.GovernanceError, match="nothing to propose"):
        gov.propose(fed, dao.alice, [], "empty")
    with pytest.raises(gov.GovernanceError, match="no proposal"):
        gov.proposal_status(fed, 12345)
    with pytest.raises(gov.GovernanceError, match="vote must be one of"):
        gov.vote(fed, dao.alice, 1, "maybe")

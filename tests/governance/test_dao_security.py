"""What the DAO must make impossible: double voting, privileged calls from anyone but the timelock, skipping
the timelock delay, executing a defeated proposal, and a guardian that does more than a bounded pause."""

from __future__ import annotations

import ape
import pytest

from fedchain.ape import governance as gov
from fedchain.protocol import ONE_TOKEN, Phase
from tests.support.governance import CONFIG, create_task, now, pass_proposal, travel, travel_to

ZERO32 = b"\x00" * 32


def test_tokens_moved_after_the_snapshot_cannot_vote_twice(dao):
    fed = dao.fed
    pid = gov.propose(fed, dao.alice, gov.parameter_actions(fed, {"trainerSlashBps": "600"}), "double vote?")
    travel(CONFIG.voting_delay + 1)
    # after the snapshot alice hands all her tokens to carol, who delegates to herself and votes
    fed.token.transfer(dao.carol.address, fed.token.balanceOf(dao.alice.address), sender=dao.alice)
    gov.delegate(fed, dao.carol)
    travel(1)
    assert fed.token.getVotes(dao.carol.address) == 1010 * ONE_TOKEN
    gov.vote(fed, dao.carol, pid, "for")
    gov.vote(fed, dao.alice, pid, "for")
    status = gov.proposal_status(fed, pid)
    # carol's vote weighs what she had at the snapshot (not delegated: 0); alice's counts once
    assert status["for"] == 1000 * ONE_TOKEN
    with ape.reverts():
        fed.governor.castVote(pid, 1, sender=dao.alice)
    with pytest.raises(gov.GovernanceError, match="already voted"):
        gov.vote(fed, dao.alice, pid, "against")


def test_defeated_proposal_cannot_be_queued_or_executed(dao):
    fed = dao.fed
    actions = gov.parameter_actions(fed, {"aggregatorSlashBps": "0"})
    pid = gov.propose(fed, dao.alice, actions, "zero aggregator slashing")
    travel(CONFIG.voting_delay + 1)
    gov.vote(fed, dao.alice, pid, "against")
    gov.vote(fed, dao.bob, pid, "for")
    travel(CONFIG.voting_period + 1)
    assert gov.proposal_status(fed, pid)["state"] == gov.ProposalState.DEFEATED
    with pytest.raises(gov.GovernanceError, match="it is Defeated, queue needs Succeeded"):
        gov.queue(fed, dao.alice, pid)
    with pytest.raises(gov.GovernanceError, match="it is Defeated, execute needs Queued"):
        gov.execute(fed, dao.alice, pid)
    p = gov.find_proposal(fed, pid)
    args = (p["targets"], p["values"], p["calldatas"], p["description_hash"])
    with ape.reverts():
        fed.governor.queue(*args, sender=dao.alice)
    with ape.reverts():
        fed.governor.execute(*args, sender=dao.alice)
    assert fed.tasks.aggregatorSlashBps() == 5000


def test_below_quorum_is_defeated(dao):
    fed = dao.fed
    pid = gov.propose(fed, dao.alice, gov.parameter_actions(fed, {"trainerSlashBps": "1"}), "quiet")
    travel(CONFIG.voting_delay + 1)
    gov.vote(fed, dao.carol, pid, "for")  # carol never delegated: weight 0, quorum not reached
    travel(CONFIG.voting_period + 1)
    status = gov.proposal_status(fed, pid)
    assert status["quorum_votes"] < status["quorum"]
    assert status["state"] == gov.ProposalState.DEFEATED


def test_the_timelock_delay_is_enforced(dao):
    fed = dao.fed
    pid = gov.propose(fed, dao.alice, gov.parameter_actions(fed, {"unbondingDelay": "3601"}), "fast exit")
    travel(CONFIG.voting_delay + 1)
    gov.vote(fed, dao.alice, pid, "for")
    travel(CONFIG.voting_period + 1)
    gov.queue(fed, dao.bob, pid)
    p = gov.find_proposal(fed, pid)
    args = (p["targets"], p["values"], p["calldatas"], p["description_hash"])
    eta = fed.governor.proposalEta(pid)
    travel_to(eta - 5)
    with ape.reverts():
        fed.governor.execute(*args, sender=dao.bob)
    # nobody but the governor may run the timelock's operations, not even with the right payload
    with ape.reverts():
        fed.timelock.executeBatch(p["targets"], p["values"], p["calldatas"], ZERO32, ZERO32, sender=dao.bob)
    travel_to(eta)
    fed.governor.execute(*args, sender=dao.bob)
    assert fed.staking.unbondingDelay() == 3601


def privileged_calls(dao) -> list[tuple[str, object, tuple]]:
    fed = dao.fed
    anyone = dao.outsider.address
    role = ZERO32
    calls = [
        ("FedToken.mint", fed.token.mint, (anyone, 1)),
        ("FedToken.grantRole", fed.token.grantRole, (fed.token.MINTER_ROLE(), anyone)),
        ("Staking.setUnbondingDelay", fed.staking.setUnbondingDelay, (3600,)),
        ("Staking.setTreasury", fed.staking.setTreasury, (anyone,)),
        ("Staking.slashReserved", fed.staking.slashReserved, (dao.trainer.address, 1, role)),
        ("Staking.reserve", fed.staking.reserve, (dao.trainer.address, 1)),
        ("Staking.release", fed.staking.release, (dao.trainer.address, 1)),
        ("Staking.grantRole", fed.staking.grantRole, (fed.staking.SLASHER_ROLE(), anyone)),
        ("TaskManager.setSlashFractions", fed.tasks.setSlashFractions, (1, 1)),
        ("TaskManager.setPhaseDurationBounds", fed.tasks.setPhaseDurationBounds, (1, 2)),
        ("TaskManager.setSettlementWindow", fed.tasks.setSettlementWindow, (3600,)),
        ("TaskManager.setPolicy", fed.tasks.setPolicy, (anyone,)),
        ("TaskManager.forfeitBond", fed.tasks.forfeitBond, (1, 1, anyone, 1, role)),
        ("TaskManager.grantRole", fed.tasks.grantRole, (fed.tasks.REJECTION_ROLE(), anyone)),
        ("AggregatorCommittee.grantRole", fed.committee.grantRole, (fed.committee.AGGREGATOR_ROLE(), anyone)),
        ("RewardVault.setTerms", fed.vault.setTerms, (0, 0, 3600)),
        ("RewardVault.grantRole", fed.vault.grantRole, (fed.vault.PARAMETER_ROLE(), anyone)),
        ("ProtocolPolicy.setStakeFloors", fed.policy.setStakeFloors, (1, 1)),
        ("ProtocolPolicy.setAggregatorQuorumBounds", fed.policy.setAggregatorQuorumBounds, (1, 2)),
        ("ProtocolPolicy.setStrategyAllowed", fed.policy.setStrategyAllowed, ("x", True)),
        ("ProtocolPolicy.setMaxPauseDuration", fed.policy.setMaxPauseDuration, (1,)),
        ("ProtocolPolicy.setMaxModelBytes", fed.policy.setMaxModelBytes, (1,)),
        ("ProtocolPolicy.unpause", fed.policy.unpause, ()),
        ("ProtocolPolicy.pause", fed.policy.pause, (60,)),
        ("ProtocolPolicy.grantRole", fed.policy.grantRole, (fed.policy.GUARDIAN_ROLE(), anyone)),
        ("FedGovernor.setVotingDelay", fed.governor.setVotingDelay, (1,)),
        ("FedGovernor.setVotingPeriod", fed.governor.setVotingPeriod, (1,)),
        ("FedGovernor.setProposalThreshold", fed.governor.setProposalThreshold, (0,)),
        ("FedGovernor.updateQuorumNumerator", fed.governor.updateQuorumNumerator, (1,)),
        ("FedGovernor.updateTimelock", fed.governor.updateTimelock, (anyone,)),
        ("FedGovernor.relay", fed.governor.relay, (fed.token.address, 0, b"")),
        ("FedTimelock.schedule", fed.timelock.schedule, (anyone, 0, b"", ZERO32, ZERO32, 3600)),
        ("FedTimelock.updateDelay", fed.timelock.updateDelay, (0,)),
        ("FedTimelock.grantRole", fed.timelock.grantRole, (fed.timelock.PROPOSER_ROLE(), anyone)),
    ]
    if fed.rejection_slasher is not None:
        calls.append(("RejectionSlasher.setSlashBps", fed.rejection_slasher.setSlashBps, (1,)))
        calls.append(("RejectionSlasher.grantRole", fed.rejection_slasher.grantRole, (role, anyone)))
    if fed.retention is not None:
        calls.append(("TaskRetention.setDefaultRetention", fed.retention.setDefaultRetention, ((1, 0, False, False),)))
        calls.append(("TaskRetention.grantRole", fed.retention.grantRole, (role, anyone)))
    return calls


UNAUTHORIZED = {  # the errors a privileged function gives a caller without the right
    "AccessControlUnauthorizedAccount(address,bytes32)", "GovernorOnlyExecutor(address)",
    "TimelockUnauthorizedCaller(address)",
}


def revert_selector(contract, method_name: str, args: tuple, caller: str) -> bytes:
    """Selector of the custom error an eth_call of `method_name(*args)` from `caller` reverts with."""
    from ape import networks
    from web3.exceptions import ContractCustomError, ContractLogicError

    data = getattr(contract, method_name).encode_input(*args)
    web3 = networks.provider.web3
    try:
        web3.eth.call({"from": caller, "to": contract.address, "data": "0x" + bytes(data).hex()})
    except (ContractCustomError, ContractLogicError) as exc:
        revert = exc.data if isinstance(exc.data, str) else str(exc.data or "")
        return bytes.fromhex(revert.removeprefix("0x")[:8])
    raise AssertionError(f"{method_name} from {caller} did not revert")


def test_non_dao_callers_of_every_privileged_function_are_rejected(dao):
    from eth_utils import keccak

    unauthorized = {keccak(text=sig)[:4] for sig in UNAUTHORIZED}
    callers = [dao.deployer.address, dao.outsider.address, dao.alice.address, dao.guardian.address]
    checked = 0
    for name, method, args in privileged_calls(dao):
        contract = method.contract
        for caller in callers:
            if name == "ProtocolPolicy.pause" and caller == dao.guardian.address:
                continue  # the guardian's one power, tested below
            selector = revert_selector(contract, name.split(".")[1], args, caller)
            assert selector in unauthorized, f"{name} from {caller}: reverted with 0x{selector.hex()}"
            checked += 1
    assert checked >= 100


def test_guardian_can_only_pause_for_a_bounded_time(dao):
    fed, policy = dao.fed, dao.fed.policy
    with ape.reverts(policy.InvalidPauseDuration):
        policy.pause(CONFIG.max_pause_duration + 1, sender=dao.guardian)
    policy.pause(600, sender=dao.guardian)
    until = policy.pausedUntil()
    assert policy.paused()
    with ape.reverts(fed.tasks.NewRoundsPaused, until=until):
        create_task(dao)
    with ape.reverts(policy.PauseCooldown):  # cannot extend or renew
        policy.pause(600, sender=dao.guardian)
    for method, args in ((policy.unpause, ()), (policy.setStakeFloors, (0, 0)),
                         (fed.tasks.setSlashFractions, (0, 0)), (policy.setMaxPauseDuration, (10**6,))):
        with ape.reverts():
            method(*args, sender=dao.guardian)
    travel_to(until)
    assert not policy.paused()
    task_id = create_task(dao)
    fed.tasks.commitUpdate(task_id, 1, b"\x01" * 32, sender=dao.trainer)
    with ape.reverts(policy.PauseCooldown):  # a cooldown as long as the longest pause follows
        policy.pause(60, sender=dao.guardian)
    travel_to(policy.nextPauseAllowedAt())
    policy.pause(60, sender=dao.guardian)


def test_a_pause_freezes_running_rounds_and_never_fails_them(dao):
    """Issue 15: a one-hour pause used to fail every round of a task within minutes (deadlines ran on while
    commits were refused). Deadlines now stand still while paused and resume with the time they had left."""
    fed, policy = dao.fed, dao.fed.policy
    task_id = create_task(dao, rounds=5, phase=60)
    start = fed.phase_view(task_id)
    travel(20)  # 40 s of the commit phase left
    policy.pause(3600, sender=dao.guardian)
    paused_at = now()
    with ape.reverts(fed.tasks.NewRoundsPaused):
        fed.tasks.commitUpdate(task_id, 1, b"\x02" * 32, sender=dao.trainer)
    for _ in range(3):  # far past the original deadline, while paused: the round does not move
        travel(1000)
        with ape.reverts(fed.tasks.PhaseNotOver):
            fed.tasks.advance(task_id, sender=dao.outsider)
        assert fed.current_round(task_id)[1].phase == Phase.TRAINER_COMMIT
    travel_to(int(policy.pausedUntil()))
    live = fed.phase_view(task_id)
    assert live.deadline == start.deadline + int(policy.pausedUntil()) - paused_at  # extended by the pause
    assert (live.round, live.phase) == (1, Phase.TRAINER_COMMIT)
    fed.tasks.commitUpdate(task_id, 1, b"\x01" * 32, sender=dao.trainer)  # the remaining 40 s are still there
    fed.tasks.advance(task_id, sender=dao.outsider)  # maxTrainers (1) committed
    assert fed.current_round(task_id)[1].phase == Phase.TRAINER_REVEAL
    assert all(fed.round(task_id, r).phase != Phase.FAILED for r in range(1, 6))
    fed.staking.requestUnstake(10 * ONE_TOKEN, sender=dao.trainer)  # free stake can leave at any time


def test_an_early_unpause_gives_back_only_the_time_paused(dao):
    fed, policy = dao.fed, dao.fed.policy
    pass_proposal(dao, gov.parameter_actions(fed, {"maxPauseDuration": str(30 * 24 * 3600)}))
    task_id = create_task(dao, rounds=1, phase=600)
    deadline = fed.phase_view(task_id).deadline
    policy.pause(2 * 24 * 3600, sender=dao.guardian)
    paused_at = now()
    pass_proposal(dao, [gov.call_action(fed, "policy", "unpause()", [])])  # the DAO lifts it early
    unpaused_at = int(policy.pausedUntil())
    assert fed.phase_view(task_id).deadline == deadline + unpaused_at - paused_at


def test_the_dao_unpauses_and_revokes_the_guardian(dao):
    fed, policy = dao.fed, dao.fed.policy
    policy.pause(CONFIG.max_pause_duration, sender=dao.guardian)
    assert policy.paused()
    unpause = gov.call_action(fed, "policy", "unpause()", [])
    revoke = gov.role_action(fed, "policy", "GUARDIAN_ROLE", dao.guardian.address, False)
    pid = gov.propose(fed, dao.alice, [unpause, revoke], "lift the pause, retire the guardian")
    travel(CONFIG.voting_delay + 1)
    gov.vote(fed, dao.alice, pid, "for")
    travel(CONFIG.voting_period + 1)
    gov.queue(fed, dao.alice, pid)
    travel(CONFIG.timelock_delay + 1)
    # the pause (max 1 h) already ran out during the vote; the cooldown is still on
    gov.execute(fed, dao.alice, pid)
    assert not policy.paused()
    assert not policy.hasRole(policy.GUARDIAN_ROLE(), dao.guardian.address)
    travel_to(max(policy.nextPauseAllowedAt(), now() + 1))
    with ape.reverts():
        policy.pause(60, sender=dao.guardian)


def test_unpause_by_proposal_lifts_a_running_pause(dao):
    fed, policy = dao.fed, dao.fed.policy
    # a longer pause than the governance cycle: the DAO raises the cap first
    pass_proposal(dao, gov.parameter_actions(fed, {"maxPauseDuration": str(30 * 24 * 3600)}))
    policy.pause(30 * 24 * 3600, sender=dao.guardian)
    pass_proposal(dao, [gov.call_action(fed, "policy", "unpause()", [])])
    assert not policy.paused()
    create_task(dao)
    with pytest.raises(gov.GovernanceError, match="expected a non-negative integer"):
        gov.parameter_actions(fed, {"maxPauseDuration": "-1"})

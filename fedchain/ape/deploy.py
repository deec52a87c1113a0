"""Deploy the fedchain contracts and record their addresses for the connected network."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ape import chain

from fedchain.ape.chain import Fedchain, contracts_project, network_key
from fedchain.deployment import Deployment
from fedchain.protocol import ONE_TOKEN
from fedchain.retention import RetentionPolicy

DEFAULT_UNBONDING_DELAY = 7 * 24 * 3600
LOCAL_UNBONDING_DELAY = 3600
DEFAULT_REJECTION_SLASH_BPS = 5_000  # RejectionSlasher: half the round's bond per rejected update (DAO may change)
DEFAULT_RETENTION = RetentionPolicy()  # TaskRetention's default: keep everything but rejected updates (DAO may change)


def deploy_protocol(
    deployer: Any,
    *,
    admin: str | None = None,
    treasury: str | None = None,
    unbonding_delay: int = DEFAULT_UNBONDING_DELAY,
    aggregators: Iterable[str] = (),
    save: bool = True,
) -> Fedchain:
    """Deploy and connect the fedchain contracts, wire their roles, record them.

    FedToken, Staking, TaskManager (trainers and rounds), AggregatorCommittee (approved aggregators and each
    round's drawn committee), RewardVault (budgets, claims, aggregator share, fee, claim window),
    RejectionSlasher and TaskRetention. The TaskManager and the committee hold Staking's `SLASHER_ROLE` (they
    reserve, release and slash bonds); the RejectionSlasher holds the TaskManager's `REJECTION_ROLE`.
    """
    project = contracts_project()
    admin = admin or deployer.address
    treasury = treasury or admin
    start_block = chain.blocks.height + 1
    token = project.FedToken.deploy(admin, admin, sender=deployer)
    staking = project.Staking.deploy(token.address, treasury, unbonding_delay, deployer.address, sender=deployer)
    tasks = project.TaskManager.deploy(token.address, staking.address, deployer.address, sender=deployer)
    committee = project.AggregatorCommittee.deploy(staking.address, deployer.address, sender=deployer)
    vault = project.RewardVault.deploy(token.address, staking.address, deployer.address, sender=deployer)
    tasks.connect(vault.address, committee.address, sender=deployer)
    committee.connect(tasks.address, vault.address, sender=deployer)
    vault.connect(tasks.address, sender=deployer)
    for slasher in (tasks, committee):
        staking.grantRole(staking.SLASHER_ROLE(), slasher.address, sender=deployer)
    rejection = project.RejectionSlasher.deploy(tasks.address, deployer.address, DEFAULT_REJECTION_SLASH_BPS,
                                                sender=deployer)
    tasks.grantRole(tasks.REJECTION_ROLE(), rejection.address, sender=deployer)
    retention = project.TaskRetention.deploy(tasks.address, deployer.address, DEFAULT_RETENTION.to_chain(),
                                             sender=deployer)
    validation_keys = project.ValidationKeys.deploy(tasks.address, sender=deployer)
    for aggregator in aggregators:
        committee.grantRole(committee.AGGREGATOR_ROLE(), aggregator, sender=deployer)
    if admin != deployer.address:
        for contract in (committee,):
            contract.grantRole(contract.DEFAULT_ADMIN_ROLE(), admin, sender=deployer)
            contract.renounceRole(contract.DEFAULT_ADMIN_ROLE(), deployer.address, sender=deployer)
        for contract in (staking, tasks, vault, rejection, retention):
            contract.grantRole(contract.DEFAULT_ADMIN_ROLE(), admin, sender=deployer)
            contract.grantRole(contract.PARAMETER_ROLE(), admin, sender=deployer)
            contract.renounceRole(contract.PARAMETER_ROLE(), deployer.address, sender=deployer)
            contract.renounceRole(contract.DEFAULT_ADMIN_ROLE(), deployer.address, sender=deployer)
    deployment = Deployment(
        network=network_key(),
        chain_id=int(chain.chain_id),
        token=token.address,
        staking=staking.address,
        tasks=tasks.address,
        block=start_block,
        block_hash="0x" + bytes(chain.blocks[start_block].hash).hex(),
        deployer=deployer.address,
        rejection_slasher=rejection.address,
        retention=retention.address,
        committee=committee.address,
        vault=vault.address,
        validation_keys=validation_keys.address,
    )
    if save:
        deployment.save()
    return Fedchain(deployment)


@dataclass(frozen=True)
class GovernanceConfig:
    """Governor and timelock settings; defaults follow common practice (seconds: the token's clock is time)."""

    voting_delay: int = 24 * 3600  # proposal -> vote snapshot / voting opens
    voting_period: int = 7 * 24 * 3600
    proposal_threshold: int = 1_000 * ONE_TOKEN  # votes needed to propose
    quorum_percent: int = 4  # of the total supply at the snapshot (for + abstain)
    timelock_delay: int = 2 * 24 * 3600  # queue -> execute
    max_pause_duration: int = 7 * 24 * 3600  # the guardian's longest pause (cooldown as long)
    trainer_stake_floor: int = 10 * ONE_TOKEN  # the least bond a trainer reserves per commitment, in any task
    aggregator_stake_floor: int = 100 * ONE_TOKEN  # the least bond a drawn aggregator reserves per round
    strategies: tuple[str, ...] = ()  # initial strategy allowlist (the deploy script passes every registered one)

    @classmethod
    def local(cls) -> GovernanceConfig:
        """Short periods for local chains and demos."""
        return cls(voting_delay=1, voting_period=300, proposal_threshold=100 * ONE_TOKEN, timelock_delay=60,
                   max_pause_duration=3600, trainer_stake_floor=ONE_TOKEN, aggregator_stake_floor=ONE_TOKEN)


def deploy_governance(
    fed: Fedchain,
    deployer: Any,
    config: GovernanceConfig | None = None,
    *,
    guardian: str | None = None,
    save: bool = True,
) -> Fedchain:
    """Put the DAO in charge of a fresh deployment whose roles the deployer still holds.

    Deploys ProtocolPolicy, FedTimelock and FedGovernor; the timelock receives every admin, parameter and minter
    role and becomes the treasury; the governor is the timelock's only proposer, canceller and executor; the
    deployer renounces everything. Only an optional `guardian` keeps a power: pausing new rounds for a bounded
    time (ProtocolPolicy.GUARDIAN_ROLE), which the DAO can revoke. Mint initial allocations before calling this.
    """
    project = contracts_project()
    config = config or GovernanceConfig()
    me = deployer.address
    token, staking, tasks = fed.token, fed.staking, fed.tasks
    strategies = list(config.strategies)
    if not strategies:
        raise ValueError("the governance config names no strategy for the allowlist")
    policy = project.ProtocolPolicy.deploy(me, strategies, config.max_pause_duration, config.trainer_stake_floor,
                                           config.aggregator_stake_floor, sender=deployer)
    timelock = project.FedTimelock.deploy(config.timelock_delay, [], [], me, sender=deployer)
    governor = project.FedGovernor.deploy(token.address, timelock.address, config.voting_delay, config.voting_period,
                                          config.proposal_threshold, config.quorum_percent, sender=deployer)
    for role in (timelock.PROPOSER_ROLE(), timelock.CANCELLER_ROLE(), timelock.EXECUTOR_ROLE()):
        timelock.grantRole(role, governor.address, sender=deployer)
    tasks.setPolicy(policy.address, sender=deployer)
    staking.setTreasury(timelock.address, sender=deployer)
    if guardian:
        policy.grantRole(policy.GUARDIAN_ROLE(), guardian, sender=deployer)
    handover = [(token, token.MINTER_ROLE()), (staking, staking.PARAMETER_ROLE()), (tasks, tasks.PARAMETER_ROLE()),
                (policy, policy.PARAMETER_ROLE())]
    if fed.vault is not None:  # issue 15: the DAO sets the aggregators' share, the fee and the claim window
        handover.append((fed.vault, fed.vault.PARAMETER_ROLE()))
    if fed.committee is not None:  # the DAO approves and removes aggregators (the admin of AGGREGATOR_ROLE)
        handover.append((fed.committee, None))
    if fed.rejection_slasher is not None:  # issue 4: the DAO sets the rejected-trainer slash fraction
        handover.append((fed.rejection_slasher, fed.rejection_slasher.PARAMETER_ROLE()))
    if fed.retention is not None:  # issue 6: the DAO sets the default retention policy
        handover.append((fed.retention, fed.retention.PARAMETER_ROLE()))
    for contract, role in handover:
        roles = [r for r in (role, contract.DEFAULT_ADMIN_ROLE()) if r is not None]
        for r in roles:
            contract.grantRole(r, timelock.address, sender=deployer)
        for r in roles:  # the admin role last: renouncing it first would still work, but read clearly
            if contract.hasRole(r, me):
                contract.renounceRole(r, me, sender=deployer)
    timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), me, sender=deployer)
    deployment = replace(fed.deployment, governor=governor.address, timelock=timelock.address,
                         policy=policy.address)
    if save:
        deployment.save()
    return Fedchain(deployment)


def privileged_holders(fed: Fedchain, account: str) -> list[str]:
    """Every 'Contract.ROLE' that `account` holds on the fedchain contracts (empty = nothing privileged)."""
    held = []
    checks = [("FedToken", fed.token, ("DEFAULT_ADMIN_ROLE", "MINTER_ROLE")),
              ("Staking", fed.staking, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE", "SLASHER_ROLE")),
              ("TaskManager", fed.tasks, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE", "REJECTION_ROLE"))]
    if fed.committee is not None:
        checks.append(("AggregatorCommittee", fed.committee, ("DEFAULT_ADMIN_ROLE",)))
    if fed.vault is not None:
        checks.append(("RewardVault", fed.vault, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE")))
    if fed.rejection_slasher is not None:
        checks.append(("RejectionSlasher", fed.rejection_slasher, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE")))
    if fed.retention is not None:
        checks.append(("TaskRetention", fed.retention, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE")))
    if fed.policy is not None:
        checks.append(("ProtocolPolicy", fed.policy, ("DEFAULT_ADMIN_ROLE", "PARAMETER_ROLE", "GUARDIAN_ROLE")))
    if fed.timelock is not None:
        checks.append(("FedTimelock", fed.timelock,
                       ("DEFAULT_ADMIN_ROLE", "PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE")))
    for name, contract, roles in checks:
        held += [f"{name}.{r}" for r in roles if contract.hasRole(getattr(contract, r)(), account)]
    return held

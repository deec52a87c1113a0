"""Helpers for the governance tests: deploy a governed fedchain, time travel, run a proposal to the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ape import chain

from aggregator.strategies import strategy_ids
from fedchain.ape import governance as gov
from fedchain.ape.chain import Fedchain
from fedchain.ape.deploy import GovernanceConfig, deploy_governance, deploy_protocol
from fedchain.protocol import ONE_TOKEN
from fedchain.taskspec import TaskSpec
from tests.support.specs import spec

CONFIG = GovernanceConfig(voting_delay=10, voting_period=600, proposal_threshold=100 * ONE_TOKEN,
                          quorum_percent=4, timelock_delay=3600, max_pause_duration=3600, strategies=strategy_ids())
TRAINER_STAKE = 150 * ONE_TOKEN


@dataclass
class Dao:
    fed: Fedchain
    deployer: Any
    alice: Any  # 1000 FED, delegated to herself
    bob: Any  # 600 FED, delegated to himself
    carol: Any  # 10 FED: below the proposal threshold
    guardian: Any
    sponsor: Any
    trainer: Any  # 150 FED staked
    aggregator: Any
    outsider: Any
    aggregators: tuple[Any, ...] = ()  # the three approved aggregators (the policy's quorum is at least 2)


def build_dao(accounts: Any, *, save: bool) -> Dao:
    deployer, alice, bob, carol, guardian, sponsor, trainer, aggregator, outsider = (accounts[i] for i in range(9))
    aggregators = (aggregator, accounts[9], accounts[10])
    fed = deploy_protocol(deployer, unbonding_delay=3600, aggregators=[a.address for a in aggregators], save=save)
    for who, amount in ((alice, 1000), (bob, 600), (carol, 10), (sponsor, 2000), (trainer, 500)):
        fed.token.mint(who, amount * ONE_TOKEN, sender=deployer)
    for who in aggregators:
        fed.token.mint(who, 500 * ONE_TOKEN, sender=deployer)
    fed = deploy_governance(fed, deployer, CONFIG, guardian=guardian.address, save=save)
    for who in (alice, bob):
        gov.delegate(fed, who)
    fed.token.approve(fed.staking.address, TRAINER_STAKE, sender=trainer)
    fed.staking.stake(TRAINER_STAKE, sender=trainer)
    for who in aggregators:
        fed.token.approve(fed.staking.address, 500 * ONE_TOKEN, sender=who)
        fed.staking.stake(500 * ONE_TOKEN, sender=who)
    chain.mine(timestamp=now() + 1)
    return Dao(fed, deployer, alice, bob, carol, guardian, sponsor, trainer, aggregator, outsider, aggregators)


def now() -> int:
    return int(chain.blocks.head.timestamp)


def travel(seconds: int) -> None:
    chain.mine(timestamp=now() + seconds)


def travel_to(timestamp: int) -> None:
    chain.mine(timestamp=max(timestamp, now() + 1))


def task_spec(rounds: int = 3, phase: int = 60, stake: int = 100 * ONE_TOKEN, strategy: str = "fedavg",
              quorum: int = 2, max_model_bytes: int = 1 << 26) -> TaskSpec:
    """A valid task (one trainer per round, a committee of ``2 * quorum - 1`` with a majority ``quorum``) whose
    files need not exist."""
    digest = b"\x11" * 32
    return spec(initial_model_cid="bafkreimodel", initial_model_digest=digest, validation_cid="bafkreivalidation",
                validation_digest=digest, reward_budget=300 * ONE_TOKEN, num_rounds=rounds, min_trainers=1,
                max_trainers=1, aggregator_quorum=quorum, max_aggregators=2 * quorum - 1, commit_duration=phase,
                reveal_duration=phase, aggregator_commit_duration=phase, aggregator_reveal_duration=phase,
                min_trainer_stake=stake, min_aggregator_stake=stake, strategy=strategy, max_model_bytes=max_model_bytes)


def create_task(dao: Dao, **kwargs: Any) -> int:
    """``createTask`` sent as is (reverts surface as ape's custom errors, for ``ape.reverts``)."""
    fed, spec_ = dao.fed, task_spec(**kwargs)
    fed.token.approve(fed.tasks.address, spec_.reward_budget, sender=dao.sponsor)
    receipt = fed.tasks.createTask(spec_.to_chain(), sender=dao.sponsor)
    return int(next(iter(receipt.events.filter(fed.tasks.TaskCreated))).taskId)


def pass_proposal(dao: Dao, actions: list[gov.Action], description: str = "test proposal") -> int:
    """Propose, vote for with alice and bob, queue, wait out the timelock, execute; returns the proposal id."""
    pid = gov.propose(dao.fed, dao.alice, actions, description)
    travel(CONFIG.voting_delay + 1)
    gov.vote(dao.fed, dao.alice, pid, "for")
    gov.vote(dao.fed, dao.bob, pid, "for", reason="agreed")
    travel(CONFIG.voting_period + 1)
    gov.queue(dao.fed, dao.outsider, pid)
    travel(CONFIG.timelock_delay + 1)
    gov.execute(dao.fed, dao.outsider, pid)
    return pid

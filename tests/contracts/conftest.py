"""Shared fixtures for the contract tests: FedToken, Staking, TaskManager, AggregatorCommittee and RewardVault wired
as after deployment.

Contracts are deployed once per test module (ape reverts the chain between tests and modules), so a
module never sees another module's tokens or tasks."""

import pytest

from tests.support.contracts import (
    AGGREGATOR_FUNDS,
    AGGREGATOR_STAKE,
    SPONSOR_FUNDS,
    TRAINER_FUNDS,
    TRAINER_STAKE,
    UNBONDING_DELAY,
    Fed,
)


@pytest.fixture(scope="module")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def treasury(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def sponsor(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def trainers(accounts):
    return list(accounts[3:8])


@pytest.fixture(scope="module")
def aggregators(accounts):
    return list(accounts[8:11])


@pytest.fixture(scope="module")
def outsider(accounts):
    return accounts[11]


@pytest.fixture(scope="module")
def token(project, admin, chain):
    return admin.deploy(project.FedToken, admin, admin)


@pytest.fixture(scope="module")
def staking(project, admin, token, treasury):
    return admin.deploy(project.Staking, token, treasury, UNBONDING_DELAY, admin)


@pytest.fixture(scope="module")
def tm(project, admin, token, staking):
    return admin.deploy(project.TaskManager, token, staking, admin)


@pytest.fixture(scope="module")
def committee(project, admin, staking):
    return admin.deploy(project.AggregatorCommittee, staking, admin)


@pytest.fixture(scope="module")
def vault(project, admin, token, staking):
    return admin.deploy(project.RewardVault, token, staking, admin)


@pytest.fixture(scope="module")
def fed(chain, token, staking, tm, committee, vault, admin, treasury, sponsor, trainers, aggregators, outsider):
    """Everything wired and funded: the TaskManager, committee and vault connected, TaskManager and committee
    hold Staking's SLASHER_ROLE, aggregators hold AGGREGATOR_ROLE, trainers and aggregators have staked."""
    tm.connect(vault, committee, sender=admin)
    committee.connect(tm, vault, sender=admin)
    vault.connect(tm, sender=admin)
    for slasher in (tm, committee):
        staking.grantRole(staking.SLASHER_ROLE(), slasher, sender=admin)
    for agg in aggregators:
        committee.grantRole(committee.AGGREGATOR_ROLE(), agg, sender=admin)
    token.mint(sponsor, SPONSOR_FUNDS, sender=admin)
    for trainer in trainers:
        token.mint(trainer, TRAINER_FUNDS, sender=admin)
        token.approve(staking, TRAINER_STAKE, sender=trainer)
        staking.stake(TRAINER_STAKE, sender=trainer)
    for agg in aggregators:
        token.mint(agg, AGGREGATOR_FUNDS, sender=admin)
        token.approve(staking, AGGREGATOR_STAKE, sender=agg)
        staking.stake(AGGREGATOR_STAKE, sender=agg)
    return Fed(chain, token, staking, tm, committee, vault, admin, treasury, sponsor, trainers, aggregators, outsider)

"""Staking: stake, unbonding bucket, withdraw, slashing to the treasury, parameters."""

import pytest

from tests.support.contracts import (
    FED,
    UNBONDING_DELAY,
    ZERO_ADDRESS,
    assert_event,
    deploy_reverts_with,
    events,
    label,
    reverts_with,
)

REASON = label("test")


@pytest.fixture
def staker(accounts, token, staking, admin):
    acct = accounts[12]
    token.mint(acct, 1_000 * FED, sender=admin)
    token.approve(staking, 1_000 * FED, sender=acct)
    return acct


@pytest.fixture
def slasher(accounts, staking, admin):
    acct = accounts[13]
    staking.grantRole(staking.SLASHER_ROLE(), acct, sender=admin)
    return acct


def _check_books(token, staking, *accounts):
    assert token.balanceOf(staking) == staking.totalStaked() + staking.totalUnbonding()


def test_constructor_state(staking, token, treasury, admin, chain):
    receipt = chain.get_receipt(staking.txn_hash)
    assert_event(receipt, staking.TreasuryChanged, oldTreasury=ZERO_ADDRESS, newTreasury=treasury.address)
    assert_event(receipt, staking.UnbondingDelayChanged, oldDelay=0, newDelay=UNBONDING_DELAY)
    assert staking.token() == token.address
    assert staking.treasury() == treasury.address
    assert staking.unbondingDelay() == UNBONDING_DELAY
    assert staking.totalStaked() == 0
    assert staking.totalUnbonding() == 0
    assert staking.hasRole(staking.DEFAULT_ADMIN_ROLE(), admin)
    assert staking.hasRole(staking.PARAMETER_ROLE(), admin)
    assert not staking.hasRole(staking.SLASHER_ROLE(), admin)


@pytest.mark.parametrize("which", ["token", "treasury", "admin"])
def test_constructor_rejects_zero_addresses(project, accounts, token, which):
    args = {"token": token.address, "treasury": accounts[1].address, "admin": accounts[0].address}
    args[which] = ZERO_ADDRESS
    with deploy_reverts_with("ZeroAddress()"):
        accounts[0].deploy(project.Staking, args["token"], args["treasury"], 5, args["admin"])


def test_stake(staking, token, staker):
    receipt = staking.stake(300 * FED, sender=staker)
    assert_event(receipt, staking.Staked, account=staker.address, amount=300 * FED, newStake=300 * FED)
    receipt = staking.stake(200 * FED, sender=staker)
    assert_event(receipt, staking.Staked, account=staker.address, amount=200 * FED, newStake=500 * FED)
    assert staking.stakeOf(staker) == 500 * FED
    assert staking.totalStaked() == 500 * FED
    assert token.balanceOf(staker) == 500 * FED
    assert token.balanceOf(staking) == 500 * FED


def test_stake_reverts(staking, staker, accounts):
    with reverts_with("ZeroAmount"):
        staking.stake(0, sender=staker)
    with reverts_with("ERC20InsufficientAllowance"):
        staking.stake(1, sender=accounts[14])


def test_request_unstake_accumulates_and_resets_release(staking, staker, chain):
    staking.stake(500 * FED, sender=staker)
    receipt = staking.requestUnstake(100 * FED, sender=staker)
    t1 = chain.blocks[receipt.block_number].timestamp
    assert_event(
        receipt,
        staking.UnstakeRequested,
        account=staker.address,
        amount=100 * FED,
        releaseTime=t1 + UNBONDING_DELAY,
    )
    assert staking.unbondingOf(staker) == (100 * FED, t1 + UNBONDING_DELAY)
    chain.pending_timestamp = t1 + 1000
    receipt = staking.requestUnstake(50 * FED, sender=staker)
    t2 = chain.blocks[receipt.block_number].timestamp
    assert t2 == t1 + 1000
    assert_event(
        receipt,
        staking.UnstakeRequested,
        account=staker.address,
        amount=50 * FED,
        releaseTime=t2 + UNBONDING_DELAY,
    )
    assert staking.unbondingOf(staker) == (150 * FED, t2 + UNBONDING_DELAY)
    assert staking.stakeOf(staker) == 350 * FED
    assert staking.totalStaked() == 350 * FED
    assert staking.totalUnbonding() == 150 * FED


def test_request_unstake_reverts(staking, staker):
    staking.stake(10 * FED, sender=staker)
    with reverts_with("ZeroAmount"):
        staking.requestUnstake(0, sender=staker)
    with reverts_with("InsufficientStake", available=10 * FED, requested=11 * FED):
        staking.requestUnstake(11 * FED, sender=staker)


def test_withdraw_after_release(staking, token, staker, chain):
    staking.stake(500 * FED, sender=staker)
    with reverts_with("NothingToWithdraw"):
        staking.withdraw(sender=staker)
    staking.requestUnstake(200 * FED, sender=staker)
    _, release = staking.unbondingOf(staker)
    chain.pending_timestamp = release - 1
    with reverts_with("StillUnbonding", releaseTime=release):
        staking.withdraw(sender=staker)
    chain.pending_timestamp = release
    receipt = staking.withdraw(sender=staker)
    assert_event(receipt, staking.Withdrawn, account=staker.address, amount=200 * FED)
    assert staking.unbondingOf(staker) == (0, 0)
    assert token.balanceOf(staker) == 700 * FED
    assert staking.totalUnbonding() == 0
    with reverts_with("NothingToWithdraw"):
        staking.withdraw(sender=staker)
    _check_books(token, staking)


def test_slash_takes_active_then_unbonding_to_treasury(staking, token, staker, slasher, treasury):
    staking.stake(500 * FED, sender=staker)
    staking.requestUnstake(200 * FED, sender=staker)  # active 300, unbonding 200
    before = token.balanceOf(treasury)
    assert staking.slash.call(staker, 350 * FED, REASON, sender=slasher) == 350 * FED
    receipt = staking.slash(staker, 350 * FED, REASON, sender=slasher)
    assert_event(
        receipt, staking.Slashed, account=staker.address, amount=350 * FED, reason=REASON, slasher=slasher.address
    )
    assert staking.stakeOf(staker) == 0
    amount, release = staking.unbondingOf(staker)
    assert amount == 150 * FED and release > 0
    assert token.balanceOf(treasury) == before + 350 * FED
    assert staking.totalStaked() == 0
    assert staking.totalUnbonding() == 150 * FED
    _check_books(token, staking)


def test_slash_is_capped_at_available_stake(staking, token, staker, slasher, treasury):
    staking.stake(100 * FED, sender=staker)
    staking.requestUnstake(40 * FED, sender=staker)
    assert staking.slash.call(staker, 1_000 * FED, REASON, sender=slasher) == 100 * FED
    receipt = staking.slash(staker, 1_000 * FED, REASON, sender=slasher)
    assert_event(
        receipt, staking.Slashed, account=staker.address, amount=100 * FED, reason=REASON, slasher=slasher.address
    )
    assert staking.stakeOf(staker) == 0
    assert staking.unbondingOf(staker) == (0, 0)
    assert token.balanceOf(treasury) == 100 * FED
    _check_books(token, staking)


def test_slash_of_nothing_is_a_noop(staking, token, staker, slasher, treasury):
    assert staking.slash.call(staker, 5 * FED, REASON, sender=slasher) == 0
    receipt = staking.slash(staker, 5 * FED, REASON, sender=slasher)
    assert events(receipt, staking.Slashed) == []
    staking.stake(5 * FED, sender=staker)
    receipt = staking.slash(staker, 0, REASON, sender=slasher)
    assert events(receipt, staking.Slashed) == []
    assert staking.stakeOf(staker) == 5 * FED
    assert token.balanceOf(treasury) == 0


def test_slash_requires_slasher_role(staking, staker, admin):
    staking.stake(5 * FED, sender=staker)
    with reverts_with("AccessControlUnauthorizedAccount", account=admin.address, neededRole=staking.SLASHER_ROLE()):
        staking.slash(staker, 1, REASON, sender=admin)


def test_set_unbonding_delay(staking, staker, admin, chain):
    receipt = staking.setUnbondingDelay(60, sender=admin)
    assert_event(receipt, staking.UnbondingDelayChanged, oldDelay=UNBONDING_DELAY, newDelay=60)
    assert staking.unbondingDelay() == 60
    staking.stake(5 * FED, sender=staker)
    receipt = staking.requestUnstake(5 * FED, sender=staker)
    assert staking.unbondingOf(staker)[1] == chain.blocks[receipt.block_number].timestamp + 60
    with reverts_with("AccessControlUnauthorizedAccount", account=staker.address):
        staking.setUnbondingDelay(1, sender=staker)


def test_set_treasury(staking, token, staker, slasher, admin, accounts, treasury):
    new_treasury = accounts[15]
    receipt = staking.setTreasury(new_treasury, sender=admin)
    assert_event(receipt, staking.TreasuryChanged, oldTreasury=treasury.address, newTreasury=new_treasury.address)
    assert staking.treasury() == new_treasury.address
    staking.stake(5 * FED, sender=staker)
    staking.slash(staker, 2 * FED, REASON, sender=slasher)
    assert token.balanceOf(new_treasury) == 2 * FED
    with reverts_with("ZeroAddress"):
        staking.setTreasury(ZERO_ADDRESS, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=staker.address):
        staking.setTreasury(staker, sender=staker)

"""Staking: stake, unbonding bucket, withdraw, slashing to the treasury, parameters."""

import ape
import pytest
from eth_utils import keccak

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
    deploy_reverts_with(project.Staking, args["token"], args["treasury"], 3600, args["admin"], sender=accounts[0],
                        name="ZeroAddress")


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


def test_bonds_reserve_release_and_slash_only_what_was_reserved(staking, token, staker, slasher, treasury):
    staking.stake(500 * FED, sender=staker)
    receipt = staking.reserve(staker, 300 * FED, sender=slasher)
    assert_event(receipt, staking.BondReserved, account=staker.address, amount=300 * FED, reserved=300 * FED,
                 slasher=slasher.address)
    assert (staking.reservedOf(staker), staking.freeStakeOf(staker)) == (300 * FED, 200 * FED)
    with reverts_with("InsufficientStake", available=200 * FED, requested=201 * FED):
        staking.reserve(staker, 201 * FED, sender=slasher)  # one stake backs one bond only
    with reverts_with("InsufficientStake", available=200 * FED, requested=201 * FED):
        staking.requestUnstake(201 * FED, sender=staker)  # reserved stake cannot leave
    staking.requestUnstake(200 * FED, sender=staker)
    before = token.balanceOf(treasury)
    receipt = staking.slashReserved(staker, 100 * FED, REASON, sender=slasher)
    assert_event(receipt, staking.Slashed, account=staker.address, amount=100 * FED, reason=REASON,
                 slasher=slasher.address)
    assert (staking.stakeOf(staker), staking.reservedOf(staker)) == (200 * FED, 200 * FED)
    assert staking.unbondingOf(staker)[0] == 200 * FED  # the unbonding bucket is never slashed
    with reverts_with("BondTooLarge", reserved=200 * FED, amount=201 * FED):
        staking.slashReserved(staker, 201 * FED, REASON, sender=slasher)
    receipt = staking.release(staker, 200 * FED, sender=slasher)
    assert_event(receipt, staking.BondReleased, account=staker.address, amount=200 * FED, reserved=0,
                 slasher=slasher.address)
    with reverts_with("BondTooLarge", reserved=0, amount=1):
        staking.release(staker, 1, sender=slasher)
    assert token.balanceOf(treasury) == before + 100 * FED
    assert events(staking.slashReserved(staker, 0, REASON, sender=slasher), staking.Slashed) == []
    _check_books(token, staking)


def test_bonds_require_the_slasher_role(staking, staker, admin):
    staking.stake(5 * FED, sender=staker)
    for call in (lambda: staking.reserve(staker, 1, sender=admin), lambda: staking.release(staker, 1, sender=admin),
                 lambda: staking.slashReserved(staker, 1, REASON, sender=admin)):
        with reverts_with("AccessControlUnauthorizedAccount", account=admin.address,
                          neededRole=staking.SLASHER_ROLE()):
            call()


def test_set_unbonding_delay_is_bounded(staking, staker, admin, chain, project, token, accounts):
    """Issue 15: a zero delay lets a trainer about to be rejected withdraw first; a huge one overflowed."""
    receipt = staking.setUnbondingDelay(3600, sender=admin)
    assert_event(receipt, staking.UnbondingDelayChanged, oldDelay=UNBONDING_DELAY, newDelay=3600)
    assert staking.unbondingDelay() == 3600
    staking.stake(5 * FED, sender=staker)
    receipt = staking.requestUnstake(5 * FED, sender=staker)
    assert staking.unbondingOf(staker)[1] == chain.blocks[receipt.block_number].timestamp + 3600
    for bad in (0, 3599, 365 * 24 * 3600 + 1, 2**64 - 1):
        with reverts_with("InvalidUnbondingDelay", delay=bad, min=3600, max=365 * 24 * 3600):
            staking.setUnbondingDelay(bad, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=staker.address):
        staking.setUnbondingDelay(7200, sender=staker)
    with ape.reverts() as info:
        accounts[0].deploy(project.Staking, token, accounts[1], 0, accounts[0])
    selector = keccak(text="InvalidUnbondingDelay(uint64,uint64,uint64)")[:4].hex()
    assert info.value.revert_message.startswith("0x" + selector)


def test_set_treasury(staking, token, staker, slasher, admin, accounts, treasury):
    new_treasury = accounts[15]
    receipt = staking.setTreasury(new_treasury, sender=admin)
    assert_event(receipt, staking.TreasuryChanged, oldTreasury=treasury.address, newTreasury=new_treasury.address)
    assert staking.treasury() == new_treasury.address
    staking.stake(5 * FED, sender=staker)
    staking.reserve(staker, 2 * FED, sender=slasher)
    staking.slashReserved(staker, 2 * FED, REASON, sender=slasher)
    assert token.balanceOf(new_treasury) == 2 * FED
    with reverts_with("ZeroAddress"):
        staking.setTreasury(ZERO_ADDRESS, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=staker.address):
        staking.setTreasury(staker, sender=staker)

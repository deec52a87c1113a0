"""FedToken: metadata, minting roles, timestamp clock, votes and permit."""

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from tests.support.contracts import FED, assert_event, deploy_reverts_with, reverts_with

ZERO_ADDRESS = "0x" + "00" * 20


def test_metadata_and_roles(token, admin, outsider):
    assert token.name() == "Fedchain Token"
    assert token.symbol() == "FED"
    assert token.decimals() == 18
    assert token.totalSupply() == 0
    assert token.hasRole(token.DEFAULT_ADMIN_ROLE(), admin)
    assert token.hasRole(token.MINTER_ROLE(), admin)
    assert not token.hasRole(token.MINTER_ROLE(), outsider)
    assert bytes(token.MINTER_ROLE()) == keccak(text="MINTER_ROLE")


def test_constructor_splits_admin_and_minter(project, accounts):
    admin, minter = accounts[12], accounts[13]
    t = admin.deploy(project.FedToken, admin, minter)
    assert t.hasRole(t.DEFAULT_ADMIN_ROLE(), admin)
    assert not t.hasRole(t.MINTER_ROLE(), admin)
    assert t.hasRole(t.MINTER_ROLE(), minter)
    receipt = t.mint(admin, 5, sender=minter)
    assert_event(receipt, t.Transfer, **{"from": ZERO_ADDRESS, "to": admin.address, "value": 5})


def test_constructor_rejects_zero_addresses(project, accounts):
    deploy_reverts_with(project.FedToken, ZERO_ADDRESS, accounts[12], sender=accounts[12], name="ZeroAddress")
    deploy_reverts_with(project.FedToken, accounts[12], ZERO_ADDRESS, sender=accounts[12], name="ZeroAddress")


def test_mint(token, admin, outsider):
    receipt = token.mint(outsider, 7 * FED, sender=admin)
    assert_event(receipt, token.Transfer, **{"from": ZERO_ADDRESS, "to": outsider.address, "value": 7 * FED})
    assert token.balanceOf(outsider) == 7 * FED
    assert token.totalSupply() == 7 * FED


def test_mint_requires_minter_role(token, outsider):
    with reverts_with("AccessControlUnauthorizedAccount", account=outsider.address, neededRole=token.MINTER_ROLE()):
        token.mint(outsider, 1, sender=outsider)
    assert token.totalSupply() == 0


def test_minter_role_can_be_granted_and_revoked(token, admin, outsider):
    receipt = token.grantRole(token.MINTER_ROLE(), outsider, sender=admin)
    assert_event(receipt, token.RoleGranted, role=token.MINTER_ROLE(), account=outsider.address, sender=admin.address)
    token.mint(outsider, 3, sender=outsider)
    token.revokeRole(token.MINTER_ROLE(), outsider, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount"):
        token.mint(outsider, 3, sender=outsider)
    assert token.balanceOf(outsider) == 3


def test_clock_is_timestamp(token, chain):
    assert token.CLOCK_MODE() == "mode=timestamp"
    latest = chain.blocks.head.timestamp
    assert latest <= token.clock() <= chain.pending_timestamp


def test_delegation_checkpoints_use_timestamps(token, admin, accounts, chain):
    holder, delegatee = accounts[12], accounts[13]
    token.mint(holder, 100 * FED, sender=admin)
    assert token.getVotes(holder) == 0  # votes need delegation
    receipt = token.invoke_transaction("delegate", delegatee, sender=holder)
    assert_event(
        receipt,
        token.DelegateChanged,
        delegator=holder.address,
        fromDelegate=ZERO_ADDRESS,
        toDelegate=delegatee.address,
    )
    assert_event(receipt, token.DelegateVotesChanged, delegate=delegatee.address, previousVotes=0, newVotes=100 * FED)
    assert token.getVotes(delegatee) == 100 * FED
    assert token.delegates(holder) == delegatee.address
    ts = chain.blocks[receipt.block_number].timestamp
    assert token.numCheckpoints(delegatee) == 1
    assert token.checkpoints(delegatee, 0)._key == ts
    chain.mine(timestamp=ts + 10)
    assert token.getPastVotes(delegatee, ts - 1) == 0
    assert token.getPastVotes(delegatee, ts) == 100 * FED
    # transfers move votes along
    token.transfer(admin, 40 * FED, sender=holder)
    assert token.getVotes(delegatee) == 60 * FED


def test_permit_uses_and_increments_nonce(token, admin, accounts, chain):
    owner_acct = Account.create()
    spender = accounts[13]
    token.mint(owner_acct.address, 10 * FED, sender=admin)
    assert token.nonces(owner_acct.address) == 0
    deadline = chain.pending_timestamp + 3600
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "Fedchain Token",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner_acct.address,
            "spender": spender.address,
            "value": 4 * FED,
            "nonce": 0,
            "deadline": deadline,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), owner_acct.key)
    receipt = token.permit(
        owner_acct.address,
        spender,
        4 * FED,
        deadline,
        signed.v,
        signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big"),
        sender=spender,
    )
    assert_event(receipt, token.Approval, owner=owner_acct.address, spender=spender.address, value=4 * FED)
    assert token.allowance(owner_acct.address, spender) == 4 * FED
    assert token.nonces(owner_acct.address) == 1
    # replaying the same signature fails: the nonce moved on
    with reverts_with("ERC2612InvalidSigner"):
        token.permit(
            owner_acct.address,
            spender,
            4 * FED,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
            sender=spender,
        )

"""Transactions built in Python for the browser wallet: calldata equal to ape's encoding, pre-checks that refuse
before the wallet is asked, and reverts explained by their custom error (simulated, and mined with status 0)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak

from fedchain.protocol import ONE_TOKEN
from frontend.wallet.errors import RevertDecoder, WalletError, provider_error
from frontend.wallet.transactions import Transactions, tokens
from tests.support.wallet import build_small_dao, chain_source


@pytest.fixture(scope="module")
def dao(accounts, chain):
    return build_small_dao(accounts)


@pytest.fixture(scope="module")
def txs(dao):
    return Transactions(chain_source(dao.fed), dao.fed.deployment.chain_id)


def data_of(ape_method, *args) -> str:
    return "0x" + bytes(ape_method.encode_input(*args)).hex()


def test_calldata_equals_ape_encoding(dao, txs):
    fed, me = dao.fed, dao.holder.address
    amount = 12 * ONE_TOKEN + 5
    cases = [
        (txs.approve_stake(me, amount), fed.token, data_of(fed.token.approve, fed.staking.address, amount)),
        (txs.stake(me, amount), fed.staking, data_of(fed.staking.stake, amount)),
        (txs.request_unstake(me, amount), fed.staking, data_of(fed.staking.requestUnstake, amount)),
        (txs.withdraw(me), fed.staking, data_of(fed.staking.withdraw)),
        (txs.claim(me, 3, 2, 777, 41, [b"\x01" * 32, b"\x02" * 32]), fed.vault,
         data_of(fed.vault.claimReward, 3, 2, 777, 41, [b"\x01" * 32, b"\x02" * 32])),
        (txs.cast_vote(me, 2**200 + 7, "against"), fed.governor, data_of(fed.governor.castVote, 2**200 + 7, 0)),
        (txs.cast_vote(me, 42, "abstain", "no view"), fed.governor,
         data_of(fed.governor.castVoteWithReason, 42, 2, "no view")),
    ]
    targets, calldatas = [fed.policy.address], [b"\x12\x34\x56\x78"]
    operation = {"targets": targets, "values": [0], "calldatas": calldatas, "description": "raise it"}
    cases += [
        (txs.propose(me, targets, calldatas, "raise it"), fed.governor,
         data_of(fed.governor.propose, targets, [0], calldatas, "raise it")),
        (txs.queue(me, operation), fed.governor,
         data_of(fed.governor.queue, targets, [0], calldatas, keccak(text="raise it"))),
        (txs.execute(me, operation), fed.governor,
         data_of(fed.governor.execute, targets, [0], calldatas, keccak(text="raise it"))),
    ]
    for tx, contract, expected in cases:
        assert tx.to == contract.address, tx.label
        assert tx.data == expected, tx.label
        assert tx.sender == me and tx.chain_id == dao.fed.deployment.chain_id
        params = tx.wallet_params()
        assert params == {"from": me, "to": contract.address, "data": expected, "value": "0x0",
                          "chainId": hex(tx.chain_id)}
    # ape shadows `delegate` on contracts; compare with the ABI encoding of delegate(address)
    delegate = txs.delegate(me, dao.other.address.lower())
    expected = function_signature_to_4byte_selector("delegate(address)") + abi_encode(["address"], [dao.other.address])
    assert delegate.data == "0x" + expected.hex() and delegate.to == fed.token.address


def test_bad_input_is_refused(dao, txs):
    with pytest.raises(WalletError, match="not an Ethereum address"):
        txs.delegate(dao.holder.address, "0x1234")
    with pytest.raises(WalletError, match="for, against or abstain"):
        txs.cast_vote(dao.holder.address, 1, "maybe")
    with pytest.raises(WalletError, match="description"):
        txs.propose(dao.holder.address, [], [], "  ")
    assert tokens("1.5") == 3 * ONE_TOKEN // 2
    for text in ("", "abc", "-1", "0", "nan", "1e-19"):
        with pytest.raises(WalletError):
            tokens(text)


def test_stake_precheck(dao, txs):
    me = dao.holder.address
    balance = dao.fed.token.balanceOf(me)
    only_stake = txs.precheck_stake(me, 400 * ONE_TOKEN)  # 400 FED of allowance left
    assert [t.label for t in only_stake] == ["stake 400 FED"]
    both = txs.precheck_stake(me, 401 * ONE_TOKEN)
    assert [t.data for t in both] == [txs.approve_stake(me, 401 * ONE_TOKEN).data, txs.stake(me, 401 * ONE_TOKEN).data]
    with pytest.raises(WalletError, match="Insufficient balance") as refused:
        txs.precheck_stake(me, balance + 1)
    assert refused.value.kind == "insufficient"
    with pytest.raises(WalletError, match="Insufficient stake") as refused:
        txs.precheck_unstake(me, 100 * ONE_TOKEN + 1)
    assert refused.value.kind == "insufficient"
    assert txs.precheck_unstake(me, 100 * ONE_TOKEN).data == txs.request_unstake(me, 100 * ONE_TOKEN).data


def test_simulation_decodes_custom_errors(dao, txs):
    me = dao.holder.address
    stake = txs.stake(me, ONE_TOKEN)
    simulated = txs.simulate(stake)  # succeeds: the same call with a gas limit above the estimate
    estimate = txs.w3.eth.estimate_gas(stake.call_params())
    assert simulated.data == stake.data and simulated.gas > estimate
    assert simulated.wallet_params()["gas"] == hex(simulated.gas)
    cases = [
        (txs.stake(me, 0), "the amount must be positive (ZeroAmount)"),
        (txs.request_unstake(me, 101 * ONE_TOKEN), "not enough tokens staked"),
        (txs.claim(me, 9, 1, 1, 1, []), "the round is not finalized"),
        (txs.withdraw(me), "nothing is unbonding; request an unstake first (NothingToWithdraw)"),
        (txs.cast_vote(me, 12345, "for"), "no such proposal (GovernorNonexistentProposal: proposalId=12345)"),
        (txs.stake(dao.other.address, 10 * ONE_TOKEN), "approve first"),
    ]
    for tx, expected in cases:
        with pytest.raises(WalletError, match="would fail") as reverted:
            txs.simulate(tx)
        assert reverted.value.kind == "reverted"
        assert expected in str(reverted.value), str(reverted.value)


def test_mined_revert_is_explained(dao, txs):
    """A transaction that reverts on chain (sent with a fixed gas limit, no estimation) gets its reason decoded."""
    tx = txs.withdraw(dao.holder.address)
    tx_hash = txs.w3.eth.send_transaction({**tx.call_params(), "gas": 200_000})
    with pytest.raises(WalletError, match=r"NothingToWithdraw.*status 0") as reverted:
        txs.wait_mined(tx_hash.hex() if isinstance(tx_hash, bytes) else tx_hash, timeout=30)
    assert reverted.value.kind == "reverted"
    ok = txs.w3.eth.send_transaction(txs.stake(dao.holder.address, ONE_TOKEN).call_params())
    assert int(txs.wait_mined(ok, timeout=30)["status"]) == 1


def test_revert_decoder_and_provider_errors(txs):
    decoder: RevertDecoder = txs.decoder
    error_string = function_signature_to_4byte_selector("Error(string)") + abi_encode(["string"], ["boom"])
    assert decoder.explain(error_string) == "The transaction reverted: boom"
    panic = function_signature_to_4byte_selector("Panic(uint256)") + abi_encode(["uint256"], [0x11])
    assert "panic code 0x11" in decoder.explain(panic)
    assert decoder.decode(b"\xde\xad\xbe\xef") == (None, "", {})
    contract, name, args = decoder.decode(function_signature_to_4byte_selector("ZeroAmount()"))
    assert (name, args) == ("ZeroAmount", {}) and contract == "Staking"
    rejected = provider_error({"code": 4001, "message": "User rejected the request."})
    assert rejected.kind == "rejected" and "rejected" in str(rejected)
    stale = function_signature_to_4byte_selector("AlreadyClaimed()")
    reverted = provider_error({"code": 3, "message": "execution reverted", "data": "0x" + stale.hex()}, decoder)
    assert reverted.kind == "reverted" and "already claimed" in str(reverted)
    assert provider_error({"code": -32603, "message": "internal"}).kind == "wallet"


def test_the_wallet_builder_follows_a_redeploy_recorded_while_the_dashboard_runs(dao, tmp_path, monkeypatch):
    """A context that reads deployments.json (as `fedchain dashboard` does) rebuilds its calldata builder when the
    record changes, so wallet transactions go to the contracts the pages show."""
    import json
    import os

    from ape import networks

    from frontend.context import DashboardConfig, DashboardContext
    from frontend.wallet.bridge import transactions_for

    record = dao.fed.deployment
    path = tmp_path / "deployments.json"

    def record_deployment(addresses: dict[str, str], when: float) -> None:
        path.write_text(json.dumps({record.network: {"chain_id": record.chain_id, "block": record.block,
                                                     **addresses}}))
        os.utime(path, (when, when))

    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path))
    record_deployment(record.addresses, 1_000_000)
    ctx = DashboardContext(DashboardConfig(rpc_url=networks.provider.uri, network=record.network))
    first = transactions_for(ctx)
    assert transactions_for(ctx) is first
    assert first.build("stake", "staking", "withdraw", [], dao.holder.address).to == record.addresses["staking"]

    second_staking = record.addresses["tasks"]  # stands in for the staking contract of a new deployment
    record_deployment({**record.addresses, "staking": second_staking}, 2_000_000)
    second = transactions_for(ctx)
    assert second is not first
    assert second.build("stake", "staking", "withdraw", [], dao.holder.address).to == second_staking

"""Helpers for the wallet tests: a governed deployment on the test's anvil, the dashboard's web3 view of it, and the
injected EIP-1193 provider for real Chromium (tests/dashboard/injected_provider.js)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ape import networks

from aggregator.strategies import strategy_ids
from fedchain.ape.chain import Fedchain
from fedchain.ape.deploy import GovernanceConfig, deploy_governance, deploy_protocol
from fedchain.protocol import ONE_TOKEN
from fedchain.web3chain import Web3Chain, load_abis
from tests.support.chain import sync_chain_clock

PROVIDER_JS = (Path(__file__).resolve().parents[1] / "dashboard" / "injected_provider.js").read_text()
GOVERNANCE = GovernanceConfig(voting_delay=10, voting_period=3600, proposal_threshold=100 * ONE_TOKEN,
                              quorum_percent=4, timelock_delay=60, max_pause_duration=3600, strategies=strategy_ids())


def chain_source(fed: Fedchain) -> Web3Chain:
    """The dashboard's web3 view of an ape-deployed Fedchain (the same deployment record)."""
    return Web3Chain(networks.provider.uri, fed.deployment, load_abis())


@dataclass
class SmallDao:
    fed: Fedchain
    deployer: Any
    holder: Any  # 1000 FED, 100 staked (400 more approved), delegated to itself
    other: Any  # 50 FED, not delegated


def build_small_dao(accounts: Any) -> SmallDao:
    """Protocol + DAO (no federation): enough for calldata, pre-check and revert tests."""
    deployer, holder, other = accounts[0], accounts[1], accounts[2]
    fed = deploy_protocol(deployer, unbonding_delay=3600, save=False)
    fed.token.mint(holder, 1000 * ONE_TOKEN, sender=deployer)
    fed.token.mint(other, 50 * ONE_TOKEN, sender=deployer)
    fed.token.approve(fed.staking.address, 500 * ONE_TOKEN, sender=holder)
    fed.staking.stake(100 * ONE_TOKEN, sender=holder)
    fed = deploy_governance(fed, deployer, GOVERNANCE, save=False)
    fed.token.invoke_transaction("delegate", holder.address, sender=holder)
    sync_chain_clock()
    return SmallDao(fed, deployer, holder, other)


def provider_script(rpc_url: str, accounts: list[str], authorized: bool) -> str:
    """The injected provider with its configuration: anvil's URL and the accounts the 'wallet' holds."""
    config = {"rpc": rpc_url, "accounts": accounts, "authorized": authorized}
    return PROVIDER_JS.replace("__FEDCHAIN_WALLET_CONFIG__", json.dumps(config))


@contextmanager
def injected_wallet(driver: Any, accounts: list[str], *, authorized: bool = False):
    """Inject the EIP-1193 provider before any page script of every document the driver opens (CDP)."""
    source = provider_script(networks.provider.uri, accounts, authorized)
    added = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


def wallet_log(driver: Any) -> list[str]:
    """Every EIP-1193 method the page asked the injected wallet for, in order."""
    return driver.execute_script("return window.__wallet ? window.__wallet.log.slice() : null") or []

"""The wallet end to end in real Chromium: an injected EIP-1193 provider (tests/dashboard/injected_provider.js)
forwards to the test's anvil, whose dev accounts sign. Connect, sign in (EIP-4361), claim a real round's reward,
stake (approve + stake), delegate, vote, queue and execute, create a proposal; and the failures people meet: a
rejected signature or transaction (4001), the wrong network, an insufficient balance, a reverted transaction.
Every assertion about effects reads the chain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ape import chain
from eth_utils import keccak
from nicegui import ui
from nicegui.testing import Screen
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from fedchain.ape import governance as gov
from fedchain.governance import PARAMETERS, encode_call
from fedchain.protocol import ONE_TOKEN, TrainerStatus
from frontend import wallet_ui
from frontend.app import build_dashboard
from frontend.wallet.account import parameter_calls, proposal_operation, read_account
from tests.support.chain import sync_chain_clock
from tests.support.wallet import injected_wallet, wallet_log

SHOTS = Path(__file__).resolve().parents[2] / "screenshots" / "wallet"
pytestmark = pytest.mark.e2e
browser = pytest.mark.usefixtures("require_chromium")  # skipped without Chromium; a failure under CI


# --- driving the page ------------------------------------------------------------------------------------------
def wait_text(screen: Screen, text: str, timeout: float = 45.0) -> None:
    """Wait until `text` is visible on the page (transactions and refreshes take a moment on a loaded machine)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in screen.selenium.find_element(By.TAG_NAME, "body").text:
            return
        time.sleep(0.2)
    body = screen.selenium.find_element(By.TAG_NAME, "body").text
    raise AssertionError(f"{text!r} not on the page; it shows:\n{body}")


def wait_status(screen: Screen, text: str, css: str = "wallet-status", timeout: float = 45.0) -> None:
    """Wait until a wallet component's status line (pending -> mined, or the error) contains `text`."""
    deadline = time.time() + timeout
    seen: list[str] = []
    while time.time() < deadline:
        try:
            seen = [e.text for e in screen.selenium.find_elements(By.CLASS_NAME, css)]
        except StaleElementReferenceException:
            continue
        if any(text in t for t in seen):
            return
        time.sleep(0.2)
    raise AssertionError(f"status {text!r} not shown; status lines: {seen}")


def press(screen: Screen, label: str, *, prefix: bool = False) -> None:
    """Click the (first visible) button whose text is `label` (or starts with it)."""
    match = f"starts-with(normalize-space(.),'{label}')" if prefix else f"normalize-space(.)='{label}'"
    retry(lambda: next(b for b in screen.selenium.find_elements(By.XPATH, f"//button[{match}]")
                       if b.is_displayed() and b.is_enabled()).click(), f"button {label!r}")


def fill(screen: Screen, label: str, text: str) -> None:
    """Type into the input whose floating label is `label`."""
    xpath = (f"//label[.//div[contains(@class,'q-field__label') and normalize-space(.)='{label}']]"
             "//*[self::input or self::textarea]")

    def type_it() -> None:
        field = screen.selenium.find_element(By.XPATH, xpath)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)
        if field.get_attribute("value") != text:
            raise StaleElementReferenceException("re-rendered while typing")

    retry(type_it, f"input {label!r}")
    time.sleep(0.5)  # let the typed value reach the server (as a person's next click would)


def retry(action, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001
    """Run a browser action until it works: panels re-render when the chain or the wallet changes."""
    deadline = time.time() + timeout
    while True:
        try:
            action()
            return
        except (StopIteration, NoSuchElementException, StaleElementReferenceException,
                ElementNotInteractableException, ElementClickInterceptedException) as exc:
            if time.time() > deadline:
                raise AssertionError(f"{what}: {type(exc).__name__}") from exc
            time.sleep(0.3)


def wallet(screen: Screen, script: str) -> None:
    """Tell the injected wallet what to do next (reject, switch chain, ...)."""
    screen.selenium.execute_script(f"window.__wallet.{script}")


def sent(screen: Screen) -> int:
    return wallet_log(screen.selenium).count("eth_sendTransaction")


def shot(screen: Screen, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    screen.selenium.set_window_size(1400, 1100)
    time.sleep(0.3)
    screen.selenium.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(screen: Screen) -> None:
    press(screen, "Sign in")
    wait_text(screen, "signed in")


def wallet_page(ctx) -> None:
    """The wallet components on a page of their own (the header controls and the account panel)."""

    @ui.page("/wallet")
    async def page() -> None:
        with ui.header().classes("bg-slate-800"):
            wallet_ui.header_controls(ctx)
        await wallet_ui.account_panel(ctx)


@pytest.fixture
def world(dashboard_world):
    """The dashboard's governed federation, with anvil's clock at the wall clock (the panel compares times)."""
    sync_chain_clock()
    return dashboard_world


# --- the flows -------------------------------------------------------------------------------------------------
def test_account_reads_and_proposal_calls_match_the_python_client(world):
    """What the panels read equals what the trainer client and fedchain/governance.py compute (no browser)."""
    f, ctx = world.f, world.context()
    fed, node = f.fed, f.trainers[2]
    view = read_account(ctx.chain, node.address, f.store)
    expected = [(c.round, c.score, c.reward, list(c.proof)) for c in node.claimable(f.task_id)]
    assert expected and [(c.round, c.score, c.reward, list(c.proof)) for c in view.claims] == expected
    assert view.claimable == sum(e[2] for e in expected)
    assert (view.balance, view.staked, view.votes) == (fed.token.balanceOf(node.address),
                                                       fed.staking.stakeOf(node.address),
                                                       fed.token.getVotes(node.address))
    assert view.delegate == fed.token.delegates(node.address)
    changes = {"minTrainerStake": "150", "trainerSlashBps": "600", "votingPeriod": "900"}
    actions = gov.parameter_actions(fed, changes)
    targets, calldatas, _ = parameter_calls(ctx.chain, changes)
    assert targets == [a.target for a in actions] and calldatas == [bytes(a.calldata) for a in actions]
    op = proposal_operation(ctx.chain, world.proposal_id)
    assert fed.governor.hashProposal(op["targets"], op["values"], op["calldatas"],
                                     keccak(text=op["description"])) == world.proposal_id


@browser
def test_without_a_wallet_the_pages_stay_read_only(screen: Screen, world):
    build_dashboard(world.context())
    screen.open("/economics")
    wait_text(screen, "no wallet · read-only")
    wait_text(screen, "No browser wallet found")
    screen.open("/governance")
    wait_text(screen, "Raise the trainer stake floor")
    wait_text(screen, "No browser wallet found")
    shot(screen, "no_wallet_governance")


@browser
def test_connect_sign_in_claim_stake_delegate_on_the_economics_page(screen: Screen, world):
    f = world.f
    fed, trainer, other = f.fed, f.people.trainers[2], f.people.sponsor
    entry = fed.tasks.getTrainerEntry(f.task_id, 2, trainer.address)
    assert TrainerStatus(entry.status) == TrainerStatus.REVEALED  # round 2's reward is not claimed yet
    balance, staked = fed.token.balanceOf(trainer), fed.staking.stakeOf(trainer)
    build_dashboard(world.context())
    with injected_wallet(screen.selenium, [trainer.address]):
        screen.open("/economics")
        press(screen, "Connect wallet")
        wait_text(screen, f"{trainer.address[:6]}…{trainer.address[-4:]}")
        wait_text(screen, "local anvil (31337)")
        wait_text(screen, "Sign in with Ethereum")
        sign_in(screen)
        wait_text(screen, "Voting power")
        assert wallet_log(screen.selenium).count("personal_sign") == 1

        press(screen, "Claim ", prefix=True)
        wait_status(screen, "claimed ")
        assert TrainerStatus(fed.tasks.getTrainerEntry(f.task_id, 2, trainer.address).status) == TrainerStatus.CLAIMED
        reward = fed.token.balanceOf(trainer) - balance
        assert reward > 0

        allowance = fed.token.allowance(trainer, fed.staking.address)
        amount = allowance // ONE_TOKEN + 50  # more than the allowance left: approve, then stake
        fill(screen, "Stake (FED)", str(amount))
        press(screen, "Stake")
        wait_status(screen, f"staked {amount} FED")
        assert fed.staking.stakeOf(trainer) == staked + amount * ONE_TOKEN
        assert fed.token.balanceOf(trainer) == balance + reward - amount * ONE_TOKEN
        assert sent(screen) == 3  # claim, approve, stake

        fill(screen, "Delegate to address", other.address)
        press(screen, "Delegate")
        wait_status(screen, f"votes delegated to {other.address}")
        assert fed.token.delegates(trainer) == other.address
        wait_text(screen, other.address)  # the panel refreshed from the chain
        shot(screen, "economics_claim_stake_delegate")


@browser
def test_vote_queue_execute_on_the_governance_page(screen: Screen, world):
    f, pid = world.f, world.proposal_id
    fed, voter = f.fed, f.people.trainers[2]
    governor = fed.governor
    assert not governor.hasVoted(pid, voter)
    build_dashboard(world.context())
    with injected_wallet(screen.selenium, [voter.address], authorized=True):
        screen.open("/governance")
        wait_text(screen, f"{voter.address[:6]}…{voter.address[-4:]}")  # already authorized: no prompt
        assert "eth_requestAccounts" not in wallet_log(screen.selenium)
        sign_in(screen)
        against, for_before, _ = governor.proposalVotes(pid)
        fill(screen, "Reason (optional)", "tested in the browser")
        press(screen, "Vote for")
        wait_status(screen, "voted for", "wallet-proposal-status")
        assert governor.hasVoted(pid, voter)
        assert governor.proposalVotes(pid)[1] == for_before + governor.getVotes(voter, governor.proposalSnapshot(pid))
        wait_text(screen, "you voted on this proposal")
        shot(screen, "governance_voted")

        chain.mine(timestamp=int(governor.proposalDeadline(pid)) + 1)
        assert int(governor.state(pid)) == 4  # succeeded
        screen.open("/governance")
        sign_in(screen)
        press(screen, "Queue")
        wait_status(screen, "proposal queued", "wallet-proposal-status")
        assert int(governor.state(pid)) == 5
        chain.mine(timestamp=int(governor.proposalEta(pid)) + 1)
        screen.open("/governance")
        sign_in(screen)
        press(screen, "Execute")
        wait_status(screen, "proposal executed", "wallet-proposal-status")
        assert int(governor.state(pid)) == 7
        assert fed.policy.minTrainerStake() == 150 * ONE_TOKEN
        shot(screen, "governance_executed")


@browser
def test_create_a_proposal(screen: Screen, world):
    f = world.f
    fed, proposer = f.fed, f.people.sponsor
    build_dashboard(world.context())
    description = "Shorten the guardian's maximum pause to 30 minutes"
    with injected_wallet(screen.selenium, [proposer.address], authorized=True):
        screen.open("/governance")
        sign_in(screen)
        screen.selenium.find_element(By.XPATH, "//label[.//div[normalize-space(.)='Parameter']]").click()
        screen.selenium.find_element(By.XPATH, "//div[contains(@class,'q-item')][.//span[starts-with("
                                               "normalize-space(.),'maxPauseDuration')]]").click()
        fill(screen, "New value", "1800")
        fill(screen, "Description", description)
        press(screen, "Propose")
        wait_status(screen, "proposal created: maxPauseDuration 3600 -> 1800", "wallet-propose-status")
    calldata = encode_call(PARAMETERS["maxPauseDuration"].setter, [1800])
    pid = fed.governor.hashProposal([fed.policy.address], [0], [calldata], keccak(text=description))
    assert int(fed.governor.state(pid)) == 0  # pending: the proposal exists on chain
    assert fed.governor.proposalProposer(pid) == proposer.address
    shot(screen, "governance_proposed")


@browser
def test_rejections_and_wrong_network(screen: Screen, world):
    f = world.f
    fed, trainer = f.fed, f.people.trainers[0]
    staked = fed.staking.stakeOf(trainer)
    wallet_page(world.context())
    with injected_wallet(screen.selenium, [trainer.address], authorized=True):
        screen.open("/wallet")
        wallet(screen, "rejectNext('personal_sign')")
        press(screen, "Sign in")
        wait_text(screen, "You rejected the request in your wallet")
        sign_in(screen)

        wallet(screen, "rejectNext('eth_sendTransaction')")
        fill(screen, "Stake (FED)", "1")
        press(screen, "Stake")
        wait_status(screen, "You rejected the request in your wallet; nothing was sent.")
        assert fed.staking.stakeOf(trainer) == staked

        wallet(screen, "setChain('0x1', true)")  # the wallet moved to mainnet and the page was not told
        fill(screen, "Stake (FED)", "1")
        press(screen, "Stake")
        wait_status(screen, "Wrong network: your wallet is on Ethereum (1)")
        assert sent(screen) == 1  # only the rejected attempt reached the wallet
        assert fed.staking.stakeOf(trainer) == staked

        wallet(screen, "setChain('0x1')")  # now with chainChanged: the header offers the switch
        wait_text(screen, "wrong network: Ethereum (1)")
        shot(screen, "wrong_network")
        wallet(screen, "unknownChainOnce()")  # a wallet that has never seen the chain answers 4902
        press(screen, "Switch network")
        wait_text(screen, "Your wallet does not know local anvil (31337): add that network in the wallet")
        press(screen, "Switch network")
        wait_text(screen, "Sign in with Ethereum")  # right network again; a sign-in is for one chain
        assert "wallet_switchEthereumChain" in wallet_log(screen.selenium)
        sign_in(screen)  # a sign-in is for one chain: switching asks again
        fill(screen, "Stake (FED)", "1")
        press(screen, "Stake")
        wait_status(screen, "staked 1 FED")
        assert fed.staking.stakeOf(trainer) == staked + ONE_TOKEN

        other = f.people.trainers[1].address
        wallet(screen, f"setAccounts(['{other}'])")  # the person picked another account in the wallet
        wait_text(screen, f"{other[:6]}…{other[-4:]}")
        wait_text(screen, "Sign in with Ethereum")  # the sign-in was for the previous account


@browser
def test_insufficient_balance_and_reverted_claim(screen: Screen, world):
    f = world.f
    fed, trainer = f.fed, f.people.trainers[1]
    wallet_page(world.context())
    with injected_wallet(screen.selenium, [trainer.address], authorized=True):
        screen.open("/wallet")
        sign_in(screen)
        balance = fed.token.balanceOf(trainer)
        fill(screen, "Stake (FED)", str(balance // ONE_TOKEN + 1))
        press(screen, "Stake")
        wait_status(screen, "Insufficient balance")
        fill(screen, "Unstake (FED)", "100000")
        press(screen, "Unstake")
        wait_status(screen, "Insufficient stake")
        assert sent(screen) == 0
        fill(screen, "Unstake (FED)", "10")
        press(screen, "Unstake")
        wait_status(screen, "unstake of 10 FED requested")
        assert fed.staking.unbondingOf(trainer)[0] == 10 * ONE_TOKEN
        wait_text(screen, "10 FED (release in")
        assert sent(screen) == 1
        unstake_sent = 1

        wait_text(screen, "CLAIM ")
        f.trainers[1].claim(f.task_id)  # claimed elsewhere while the page still offers it
        press(screen, "Claim ", prefix=True)
        wait_status(screen, "the reward of this round was already claimed (AlreadyClaimed)")
        assert sent(screen) == unstake_sent  # the simulation caught the claim before the wallet was asked

        release = int(fed.staking.unbondingOf(trainer)[1])
        chain.mine(timestamp=release + 1)  # the unbonding delay passes
        balance = fed.token.balanceOf(trainer)
        screen.open("/wallet")
        sign_in(screen)
        wait_text(screen, "10 FED (withdrawable)")
        press(screen, "Withdraw")
        wait_status(screen, "withdrawn")
        assert fed.staking.unbondingOf(trainer)[0] == 0
        assert fed.token.balanceOf(trainer) == balance + 10 * ONE_TOKEN
        shot(screen, "reverted_claim")

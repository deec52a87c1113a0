"""The wallet's NiceGUI components that the dashboard pages place: header controls, the account panel, the
proposal form and a proposal's actions. Every transaction is built in Python (frontend/wallet/transactions.py),
checked, simulated, then signed and sent by the browser wallet; see frontend/wallet/bridge.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import run, ui

from fedchain.protocol import ProposalState
from frontend.wallet.account import parameter_calls, proposal_operation, read_account
from frontend.wallet.bridge import WalletSession, chain_label, session_for, transactions_for, wrong_network_text
from frontend.wallet.errors import WalletError
from frontend.wallet.transactions import fmt_tokens, tokens

log = logging.getLogger(__name__)
_stores: dict[str, Any] = {}


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def content_store() -> Any:
    """The content store the result files (scores for reward proofs) are read from: $FEDCHAIN_STORE or the default."""
    from fedchain.config import settings
    from fedchain.store import open_store

    config = settings()
    key = f"{config.store}|{config.ipfs_api}|{config.home}"
    if key not in _stores:
        _stores[key] = open_store(config.store)
    return _stores[key]


class Status:
    """A component's progress / result line (pending -> mined, or the error in words)."""

    def __init__(self, mark: str):
        self.mark = mark  # also the label's CSS class, so browser tests can read this line
        self.label = ui.label("").classes(f"text-sm {mark}").mark(mark)

    def _show(self, text: str, color: str) -> None:
        self.label.set_text(text)
        self.label.classes(replace=f"text-sm {self.mark} {color}")

    def progress(self, text: str) -> None:
        self._show(text, "text-gray-600")

    def done(self, text: str) -> None:
        self._show(text, "text-positive")

    def error(self, text: str) -> None:
        self._show(text, "text-negative")


async def act(session: WalletSession, status: Status, work: Callable[[], Awaitable[str]]) -> None:
    """Run one wallet action: one at a time per tab; every failure becomes a readable message.

    Runs in the tab's client context: the button that started it may be re-rendered (deleted) on the way."""
    with session.client:
        if session.busy:
            ui.notify("another wallet action is still running", type="warning")
            return
        session.busy = True
        try:
            result = await work()
            status.done(result)
            ui.notify(result, type="positive")
        except WalletError as exc:
            status.error(exc.message)
            ui.notify(exc.message, type="negative" if exc.kind != "rejected" else "warning")
            if exc.kind == "reverted":
                session.changed()  # what the panel showed was stale: read the chain again
        except Exception as exc:  # noqa: BLE001 - shown to the person, logged for the operator
            log.exception("wallet action failed")
            status.error(f"Unexpected error: {exc}")
        finally:
            session.busy = False


def _guard(session: WalletSession, purpose: str) -> bool:
    """Render why the wallet cannot act yet (and the fix); True when connected, on the right chain and signed in."""
    if not session.detected.is_set():
        ui.label("looking for a browser wallet…").classes("text-gray-500")
        return False
    if not session.available:
        ui.label(f"No browser wallet found: install one (e.g. MetaMask) to {purpose}. Everything else is "
                 "read-only.").classes("text-gray-600").mark("wallet-hint")
        return False
    if session.address is None:
        ui.label(f"Connect your wallet to {purpose}.").classes("text-gray-600").mark("wallet-hint")
        ui.button("Connect wallet", on_click=lambda: _header_action(session, session.connect))
        return False
    if session.wrong_network:
        ui.label(wrong_network_text(session.chain_id, session.expected_chain_id)).classes("text-negative").mark(
            "wallet-hint")
        ui.button("Switch network", on_click=lambda: _header_action(session, session.switch_network))
        return False
    if session.signed_in != session.address:
        ui.label(f"Sign in with Ethereum to {purpose} (a free signature, no transaction).").classes(
            "text-gray-600").mark("wallet-hint")
        ui.button("Sign in", on_click=lambda: _header_action(session, session.sign_in))
        return False
    return True


async def _header_action(session: WalletSession, action: Callable[[], Awaitable[Any]]) -> None:
    with session.client:
        try:
            await action()
            if session.last_error:
                session.last_error = None
                session.changed()
        except WalletError as exc:
            ui.notify(exc.message, type="negative" if exc.kind != "rejected" else "warning")
            session.last_error = exc.message
            session.changed()


def header_controls(ctx: Any) -> None:
    """Connect button, or the connected address, network badge (wrong network: switch action) and sign-in state."""
    session = session_for(ctx)

    @ui.refreshable
    def controls() -> None:
        if not session.detected.is_set():
            ui.label("wallet…").classes("text-white opacity-70")
            return
        if not session.available:
            ui.badge("no wallet · read-only", color="grey").mark("wallet-none")
            return
        if session.address is None:
            ui.button("Connect wallet", on_click=lambda: _header_action(session, session.connect)).props(
                "color=white text-color=primary dense").mark("wallet-connect")
        else:
            ui.label(short(session.address)).classes("text-white font-mono").mark("wallet-address").tooltip(
                session.address)
            if session.wrong_network:
                ui.badge(f"wrong network: {chain_label(session.chain_id)}", color="negative").mark("wallet-network")
                ui.button("Switch network", on_click=lambda: _header_action(session, session.switch_network)).props(
                    "color=white text-color=negative dense").mark("wallet-switch")
            else:
                ui.badge(chain_label(session.chain_id), color="positive").mark("wallet-network")
                if session.signed_in == session.address:
                    ui.badge("signed in", color="positive").mark("wallet-signed-in")
        if session.last_error:
            ui.label(session.last_error).classes("text-red-200 text-xs").mark("wallet-error")

    controls()
    session.on_change(controls.refresh)


async def account_panel(ctx: Any) -> None:
    """Balance, stake, unbonding, claimable rewards, voting power and delegate of the signed-in account; stake,
    unstake, withdraw, claim and delegate."""
    session = session_for(ctx)
    txs = transactions_for(ctx)
    form = {"stake": "", "unstake": "", "delegate": ""}  # typed values survive the panel's re-renders

    with ui.card().classes("w-full").mark("wallet-account-panel"):
        ui.label("Your account").classes("text-lg font-semibold")

        renders = [0]  # refreshes can overlap (wallet event + mined receipt): only the latest one draws

        @ui.refreshable
        async def body() -> None:
            renders[0] += 1
            mine = renders[0]
            if not _guard(session, "see your balance, stake and rewards and act on them"):
                return
            address = session.address
            try:
                view = await run.io_bound(read_account, ctx.chain, address, content_store())
            except Exception as exc:  # noqa: BLE001 - an unreachable node is shown, not raised
                view, problem = None, f"account unavailable: {exc}"
            if mine != renders[0]:
                return
            if view is None:
                ui.label(problem).classes("text-negative").mark("wallet-problem")
                return
            with ui.grid(columns=2).classes("gap-x-6 gap-y-1"):
                for name, value, mark in (
                        ("Balance", fmt_tokens(view.balance), "wallet-balance"),
                        ("Staked", fmt_tokens(view.staked) + (f" ({fmt_tokens(view.reserved)} in bonds)"
                                                              if view.reserved else ""), "wallet-stake"),
                        ("Unbonding", _unbonding(view), "wallet-unbonding"),
                        ("Claimable rewards", fmt_tokens(view.claimable), "wallet-claimable"),
                        ("Voting power", fmt_tokens(view.votes), "wallet-votes"),
                        ("Delegate", _delegate(view.delegate, address), "wallet-delegate")):
                    ui.label(name).classes("text-gray-500")
                    ui.label(value).mark(mark)
            if view.claims_error:
                ui.label(view.claims_error).classes("text-negative text-xs")
            with ui.row().classes("items-center"):
                ui.input("Stake (FED)").props("dense").bind_value(form, "stake").mark("wallet-stake-amount")
                ui.button("Stake", on_click=lambda: act(session, status, lambda: stake(form["stake"])))
                ui.input("Unstake (FED)").props("dense").bind_value(form, "unstake").mark("wallet-unstake-amount")
                ui.button("Unstake", on_click=lambda: act(session, status, lambda: unstake(form["unstake"])))
                if view.unbonding and view.unbonding_release <= view.chain_time:
                    ui.button("Withdraw", on_click=lambda: act(session, status, withdraw))
            with ui.row().classes("items-center"):
                if view.claims:
                    ui.button(f"Claim {fmt_tokens(view.claimable)}",
                              on_click=lambda: act(session, status, lambda: claim(view))).mark("wallet-claim")
                ui.button("Delegate to myself", on_click=lambda: act(session, status, lambda: delegate(address)))
                ui.input("Delegate to address").props("dense").bind_value(form, "delegate").mark("wallet-delegate-to")
                ui.button("Delegate", on_click=lambda: act(session, status, lambda: delegate(form["delegate"])))

        async def stake(text: str) -> str:
            amount = tokens(text)
            await session.require_ready()
            steps = await run.io_bound(txs.precheck_stake, session.address, amount)
            for tx in steps:
                await session.send(tx, status.progress)
            return f"staked {fmt_tokens(amount)}"

        async def unstake(text: str) -> str:
            amount = tokens(text)
            await session.require_ready()
            await session.send(await run.io_bound(txs.precheck_unstake, session.address, amount), status.progress)
            return f"unstake of {fmt_tokens(amount)} requested (unbonding)"

        async def withdraw() -> str:
            await session.send(txs.withdraw(session.address), status.progress)
            return "withdrawn"

        async def claim(view: Any) -> str:
            for c in view.claims:
                request = txs.claim(session.address, c.task_id, c.round, c.score, c.weight, c.proof)
                await session.send(request, status.progress)
            return f"claimed {fmt_tokens(view.claimable)}"

        async def delegate(to: str) -> str:
            tx = txs.delegate(session.address, (to or "").strip())
            await session.send(tx, status.progress)
            return f"votes delegated to {tx.label.removeprefix('delegate votes to ')}"

        await body()
        status = Status("wallet-status")
        session.on_change(body.refresh)


def propose_form(ctx: Any) -> None:
    """Create a proposal: one parameter change of fedchain/governance.py's PARAMETERS, with a description."""
    from fedchain.governance import PARAMETERS

    session = session_for(ctx)
    txs = transactions_for(ctx)
    form = {"parameter": "minTrainerStake", "value": "", "description": ""}
    with ui.card().classes("w-full").mark("wallet-propose-form"):
        ui.label("New proposal").classes("text-lg font-semibold")

        @ui.refreshable
        def body() -> None:
            if not _guard(session, "create a proposal"):
                return
            with ui.row().classes("items-center w-full"):
                ui.select({p.name: f"{p.name} (default {p.default})" for p in PARAMETERS.values()},
                          label="Parameter").bind_value(form, "parameter").classes("min-w-64").mark(
                    "wallet-proposal-parameter")
                ui.input("New value").props("dense").bind_value(form, "value").mark("wallet-proposal-value")
            ui.textarea("Description").bind_value(form, "description").classes("w-full").mark(
                "wallet-proposal-description")
            ui.button("Propose", on_click=lambda: act(session, status, lambda: propose(
                form["parameter"], form["value"], form["description"])))

        async def propose(name: str, value: str, description: str) -> str:
            await session.require_ready()
            if not (value or "").strip():
                raise WalletError("input", "enter the parameter's new value")
            targets, calldatas, summaries = await run.io_bound(parameter_calls, ctx.chain, {name: value.strip()})
            tx = txs.propose(session.address, targets, calldatas, description or "")
            votes, threshold = await run.io_bound(_proposer_votes, txs, session.address)
            if votes < threshold:
                raise WalletError("insufficient", f"Not enough voting power to propose: you have {fmt_tokens(votes)}"
                                                  f", the threshold is {fmt_tokens(threshold)} (delegate to yourself "
                                                  "first); nothing was sent.")
            await session.send(tx, status.progress)
            return f"proposal created: {'; '.join(summaries)}"

        body()
        status = Status("wallet-propose-status")
        session.on_change(body.refresh)


def _proposer_votes(txs: Any, address: str) -> tuple[int, int]:
    head = txs.w3.eth.get_block("latest")
    votes = int(txs.view("token", "getPastVotes", address, int(head["timestamp"]) - 1))
    return votes, int(txs.view("governor", "proposalThreshold"))


async def proposal_actions(ctx: Any, proposal: dict[str, Any]) -> None:
    """Vote for / against / abstain while active, queue once succeeded, execute once queued and its ETA passed.
    The state is read from the governor (the backend's copy can lag)."""
    session = session_for(ctx)
    txs = transactions_for(ctx)
    proposal_id = int(proposal["proposal_id"])
    form = {"reason": ""}
    with ui.column().classes("gap-1").mark(f"wallet-proposal-{proposal_id}"):

        renders = [0]  # refreshes can overlap: only the latest one draws

        @ui.refreshable
        async def body() -> None:
            renders[0] += 1
            mine = renders[0]
            try:
                state, voted, eta, now = await run.io_bound(_proposal_state, txs, proposal_id, session.address)
            except Exception as exc:  # noqa: BLE001 - an unreachable node is shown, not raised
                if mine == renders[0]:
                    ui.label(f"proposal state unavailable: {exc}").classes("text-negative")
                return
            if mine != renders[0]:
                return
            if state not in ("active", "succeeded", "queued"):
                return
            purpose = {"active": "vote on", "succeeded": "queue", "queued": "execute"}[state]
            if not _guard(session, f"{purpose} this proposal"):
                return
            with ui.row().classes("items-center"):
                if state == "active":
                    if voted:
                        ui.label("you voted on this proposal").mark("wallet-voted")
                    else:
                        ui.input("Reason (optional)").props("dense").bind_value(form, "reason").mark(
                            "wallet-vote-reason")
                        for support in ("for", "against", "abstain"):
                            ui.button(f"Vote {support}", on_click=lambda s=support: act(
                                session, status, lambda: vote(s, form["reason"])))
                elif state == "succeeded":
                    ui.button("Queue", on_click=lambda: act(session, status, lambda: operate("queue")))
                elif eta and eta > now:
                    ui.label(f"queued: executable in {eta - now} s").mark("wallet-eta")
                else:
                    ui.button("Execute", on_click=lambda: act(session, status, lambda: operate("execute")))

        async def vote(support: str, reason: str) -> str:
            await session.send(txs.cast_vote(session.address, proposal_id, support, (reason or "").strip()),
                               status.progress)
            return f"voted {support}"

        async def operate(what: str) -> str:
            operation = await run.io_bound(proposal_operation, ctx.chain, proposal_id)
            build = txs.queue if what == "queue" else txs.execute
            await session.send(build(session.address, operation), status.progress)
            return f"proposal {what}d"

        await body()
        status = Status("wallet-proposal-status")
        session.on_change(body.refresh)


def _proposal_state(txs: Any, proposal_id: int, address: str | None) -> tuple[str, bool, int, int]:
    state = ProposalState(int(txs.view("governor", "state", proposal_id))).key
    voted = bool(address) and bool(txs.view("governor", "hasVoted", proposal_id, address))
    eta = int(txs.view("governor", "proposalEta", proposal_id))
    now = int(txs.w3.eth.get_block("latest")["timestamp"])
    return state, voted, eta, now


def _unbonding(view: Any) -> str:
    if not view.unbonding:
        return "0 FED"
    left = view.unbonding_release - view.chain_time
    return fmt_tokens(view.unbonding) + (f" (release in {left} s)" if left > 0 else " (withdrawable)")


def _delegate(delegate: str | None, address: str) -> str:
    if delegate is None:
        return "not delegated (no voting power yet)"
    return "yourself" if delegate == address else delegate

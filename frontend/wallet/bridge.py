"""One browser tab's wallet: the EIP-1193 bridge calls (Python -> JS with `run_javascript`, JS -> Python with the
`fedchain_wallet` event), the connected account and chain, its sign-in, and sending transactions.

State lives in a `WalletSession` per NiceGUI client (one per tab and page load), never in the process-wide
DashboardContext. On each page load the session re-reads already-authorized accounts (`eth_accounts`, no prompt).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from eth_utils import to_checksum_address
from nicegui import Client, run, ui

from frontend.wallet.errors import UNRECOGNIZED_CHAIN, WalletError, provider_error
from frontend.wallet.siwe import SiweError, SiweVerifier
from frontend.wallet.transactions import Transactions, TxRequest

log = logging.getLogger(__name__)
BRIDGE_JS = (Path(__file__).parent / "eip1193.js").read_text()
WALLET_TIMEOUT = 600.0  # seconds a person may take to confirm in the wallet
CALL_TIMEOUT = 15.0

_sessions: WeakKeyDictionary[Client, WalletSession] = WeakKeyDictionary()
_transactions: WeakKeyDictionary[Any, tuple[Any, Transactions]] = WeakKeyDictionary()
_verifiers: dict[int, SiweVerifier] = {}


def transactions_for(ctx: Any) -> Transactions:
    """The calldata builder of a dashboard context (stateless per user, so shared by all tabs); built again when
    the context's chain handles change (a redeploy recorded while the dashboard runs), as the pages follow it."""
    chain = ctx.chain
    cached = _transactions.get(ctx)
    if cached is None or cached[0] is not chain:
        cached = _transactions[ctx] = (chain, Transactions(chain, ctx.chain_id))
    return cached[1]


def verifier_for(chain_id: int) -> SiweVerifier:
    """The process's sign-in verifier for a chain: it only remembers pending nonces."""
    if chain_id not in _verifiers:
        _verifiers[chain_id] = SiweVerifier(chain_id)
    return _verifiers[chain_id]


def session_for(ctx: Any) -> WalletSession:
    """The wallet session of the current page's browser tab (created, and detection started, on first use)."""
    client = ui.context.client
    session = _sessions.get(client)
    if session is None:
        session = _sessions[client] = WalletSession(ctx, client)
        ui.on("fedchain_wallet", session.handle_event)
        ui.timer(0, session.detect, once=True)
    return session


def chain_label(chain_id: int | None) -> str:
    names = {1: "Ethereum", 11155111: "Sepolia", 31337: "local anvil", 1337: "local"}
    return "unknown" if chain_id is None else f"{names.get(chain_id, 'chain')} ({chain_id})"


def wrong_network_text(actual: int | None, expected: int) -> str:
    return (f"Wrong network: your wallet is on {chain_label(actual)}, the dashboard's contracts are on "
            f"{chain_label(expected)}. Switch network first; nothing was sent.")


class WalletSession:
    """The wallet as one tab sees it: available?, connected address, chain id, signed-in address."""

    def __init__(self, ctx: Any, client: Client):
        self.ctx = ctx
        self.client = client
        self.available: bool | None = None  # None until the browser answered
        self.address: str | None = None
        self.chain_id: int | None = None
        self.signed_in: str | None = None
        self.busy = False
        self.last_error: str | None = None  # the header's latest failure (connect, switch, sign-in)
        self.detected = asyncio.Event()
        self._listeners: list[Callable[[], Any]] = []

    # --- state -------------------------------------------------------------------------------------
    @property
    def expected_chain_id(self) -> int:
        return int(self.ctx.chain_id)

    @property
    def wrong_network(self) -> bool:
        return self.address is not None and self.chain_id is not None and self.chain_id != self.expected_chain_id

    def on_change(self, listener: Callable[[], Any]) -> None:
        """Call `listener` (e.g. a ui.refreshable's refresh) whenever account, chain, sign-in or chain state change."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """Tell every panel of this tab to re-render."""
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001 - one broken panel must not stop the others from refreshing
                log.exception("wallet listener failed")

    def _set(self, address: str | None, chain_id: int | None) -> None:
        address = to_checksum_address(address) if address else None
        if address != self.address or chain_id != self.chain_id:
            self.signed_in = None  # a sign-in is for one account on one chain
        self.address, self.chain_id = address, chain_id

    # --- bridge ------------------------------------------------------------------------------------
    async def _js(self, code: str, timeout: float) -> Any:
        return await self.client.run_javascript(code, timeout=timeout)

    async def detect(self) -> None:
        """Install the bridge, read authorized accounts and the chain without prompting, listen for changes."""
        try:
            await self._js(BRIDGE_JS + "\n;true", CALL_TIMEOUT)
            state = await self._js("window.fedchainWallet.state()", CALL_TIMEOUT)
            self.available = bool(state and state.get("available"))
            if self.available:
                accounts = state.get("accounts") or []
                self._set(accounts[0] if accounts else None, _chain_id(state.get("chainId")))
                await self._js("window.fedchainWallet.subscribe()", CALL_TIMEOUT)
        except TimeoutError:
            self.available = False
        self.detected.set()
        self.changed()

    async def request(self, method: str, params: list[Any], timeout: float = CALL_TIMEOUT) -> Any:
        """An EIP-1193 request through the tab's window.ethereum; WalletError with a readable message on error."""
        import json

        answer = await self._js(f"window.fedchainWallet.request({json.dumps(method)}, {json.dumps(params)})", timeout)
        if answer is None:
            raise WalletError("wallet", "the browser tab is gone")
        if "error" in answer:
            raise provider_error(answer["error"], transactions_for(self.ctx).decoder)
        return answer.get("result")

    def handle_event(self, event: Any) -> None:
        """accountsChanged / chainChanged from the wallet (forwarded by eip1193.js)."""
        detail = event.args if isinstance(event.args, dict) else {}
        if detail.get("kind") == "accounts":
            accounts = detail.get("accounts") or []
            self._set(accounts[0] if accounts else None, self.chain_id)
        elif detail.get("kind") == "chain":
            self._set(self.address, _chain_id(detail.get("chainId")))
        self.changed()

    # --- actions -----------------------------------------------------------------------------------
    async def connect(self) -> None:
        accounts = await self.request("eth_requestAccounts", [], WALLET_TIMEOUT)
        chain = await self.request("eth_chainId", [])
        self._set(accounts[0] if accounts else None, _chain_id(chain))
        await self._js("window.fedchainWallet.subscribe()", CALL_TIMEOUT)
        self.changed()

    async def switch_network(self) -> None:
        try:
            await self.request("wallet_switchEthereumChain", [{"chainId": hex(self.expected_chain_id)}],
                               WALLET_TIMEOUT)
        except WalletError as exc:
            if exc.code != UNRECOGNIZED_CHAIN:
                raise
            # (the dashboard's own RPC URL is not shown: hosted RPC URLs often carry an API key)
            raise WalletError("wrong_network", f"Your wallet does not know {chain_label(self.expected_chain_id)}: "
                                               "add that network in the wallet, then switch to it.",
                              code=exc.code) from None
        self._set(self.address, _chain_id(await self.request("eth_chainId", [])))
        self.changed()

    async def sign_in(self) -> str:
        """EIP-4361: the server issues the message, the wallet signs it (personal_sign), the server verifies it."""
        await self.require_ready()
        request = self.client.request
        host = request.headers.get("host", "localhost") if request is not None else "localhost"
        scheme = request.url.scheme if request is not None else "http"
        verifier = verifier_for(self.expected_chain_id)
        message = verifier.issue(host, f"{scheme}://{host}/", self.address)
        text = message.text()
        signature = await self.request("personal_sign", ["0x" + text.encode().hex(), self.address], WALLET_TIMEOUT)
        try:
            self.signed_in = verifier.verify(text, str(signature), domain=host, address=self.address)
        except SiweError as exc:
            raise WalletError("signin", f"Sign-in refused: {exc}") from None
        self.changed()
        return self.signed_in

    async def require_ready(self) -> None:
        """WalletError unless a wallet is there, connected, and on the deployment's chain (asked afresh)."""
        if not self.available:
            raise WalletError("no_wallet", "No browser wallet found: the dashboard is read-only.")
        if self.address is None:
            raise WalletError("not_connected", "Connect your wallet first.")
        self.chain_id = _chain_id(await self.request("eth_chainId", []))  # what the wallet is on right now
        if self.chain_id != self.expected_chain_id:
            self.changed()
            raise WalletError("wrong_network", wrong_network_text(self.chain_id, self.expected_chain_id))

    async def send(self, tx: TxRequest, progress: Callable[[str], None]) -> dict[str, Any]:
        """Sign-in if needed, simulate, ask the wallet to send, wait for the receipt; refreshes the panels after."""
        await self.require_ready()
        if self.signed_in != self.address:
            progress("sign in with your wallet first…")
            await self.sign_in()
        if to_checksum_address(tx.sender) != self.address:
            raise WalletError("input", "the transaction is for another account than the connected one")
        txs = transactions_for(self.ctx)
        tx = await run.io_bound(txs.simulate, tx)
        progress(f"{tx.label}: confirm in your wallet…")
        tx_hash = await self.request("eth_sendTransaction", [tx.wallet_params()], WALLET_TIMEOUT)
        progress(f"{tx.label}: pending ({str(tx_hash)[:12]}…)")
        try:
            receipt = await run.io_bound(txs.wait_mined, tx_hash)
        finally:
            self.changed()
        progress(f"{tx.label}: mined in block {receipt['blockNumber']}")
        return receipt


def _chain_id(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except ValueError:
        return None

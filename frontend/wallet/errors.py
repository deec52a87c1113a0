"""User-facing wallet errors: EIP-1193 provider errors and contract reverts (custom errors decoded by ABI)."""

from __future__ import annotations

from typing import Any

from fedchain import reverts

USER_REJECTED = 4001  # EIP-1193: the user rejected the request
UNRECOGNIZED_CHAIN = 4902  # wallet_switchEthereumChain: the wallet does not know the chain

class WalletError(Exception):
    """Something the person at the browser must read: `kind` says what went wrong, `str()` says it in words."""

    def __init__(self, kind: str, message: str, *, code: int | None = None):
        super().__init__(message)
        self.kind = kind  # rejected | wrong_network | insufficient | reverted | no_wallet | not_connected | wallet
        self.code = code

    @property
    def message(self) -> str:
        return str(self)


def provider_error(error: dict[str, Any], decoder: RevertDecoder | None = None) -> WalletError:
    """A WalletError for an EIP-1193 error object `{code, message, data}` returned by the browser wallet."""
    code = error.get("code")
    text = str(error.get("message") or "the wallet reported an error")[:300]
    if code == USER_REJECTED:
        return WalletError("rejected", "You rejected the request in your wallet; nothing was sent.", code=code)
    if code == "NO_WALLET":
        return WalletError("no_wallet", "No browser wallet found: the dashboard is read-only.")
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data") or data.get("originalError", {}).get("data")
    if decoder is not None and isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return WalletError("reverted", decoder.explain(bytes.fromhex(data[2:])), code=code)
    if "revert" in text.lower():
        return WalletError("reverted", f"The transaction would revert: {text}", code=code)
    return WalletError("wallet", f"Wallet error: {text}", code=code if isinstance(code, int) else None)


class RevertDecoder(reverts.RevertDecoder):
    """The core's decoder (``fedchain.reverts``), worded for the browser: 'The transaction would fail: ...'."""

    def explain(self, data: bytes, contract: str | None = None) -> str:
        _, name, _ = self.decode(data)
        text = super().explain(data, contract)
        if name in ("", "Error", "Panic"):
            return text[:1].upper() + text[1:]
        return f"The transaction would fail: {text}"

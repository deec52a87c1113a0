"""User-facing wallet errors: EIP-1193 provider errors and contract reverts (custom errors decoded by ABI)."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from fedchain.chain import REVERT_HINTS, _fmt

USER_REJECTED = 4001  # EIP-1193: the user rejected the request
UNRECOGNIZED_CHAIN = 4902  # wallet_switchEthereumChain: the wallet does not know the chain

GOVERNOR_HINTS = {
    "GovernorInsufficientProposerVotes": "not enough voting power to propose (delegate to yourself first)",
    "GovernorUnexpectedProposalState": "the proposal is in the wrong state for this action",
    "GovernorAlreadyCastVote": "this account already voted on this proposal",
    "GovernorNonexistentProposal": "no such proposal",
    "GovernorUnexpectedProposalStateNotQueued": "the proposal is not queued",
    "TimelockUnexpectedOperationState": "the timelock operation is not ready (too early, or already done)",
    "GovernorOnlyExecutor": "only the DAO (the timelock) may do this",
    "AccessControlUnauthorizedAccount": "only the DAO (the timelock) may do this",
    "ERC20InsufficientBalance": "not enough FED in the wallet",
    "ERC20InsufficientAllowance": "the staking contract may not spend that much FED yet (approve first)",
    "ERC20ExceededSafeSupply": "the amount exceeds the token's supply limit",
}
HINTS = REVERT_HINTS | GOVERNOR_HINTS
ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
PANIC = function_signature_to_4byte_selector("Panic(uint256)")


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


class RevertDecoder:
    """Custom errors of the deployment's contracts by selector, explained with the protocol's hints."""

    def __init__(self, abis: list[list[dict[str, Any]]]):
        self.errors: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") == "error":
                    types = ",".join(_abi_type(i) for i in item.get("inputs", []))
                    selector = function_signature_to_4byte_selector(f"{item['name']}({types})")
                    self.errors[selector] = (item["name"], item.get("inputs", []))

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(error name, arguments) of revert data; ('', {}) when the data is empty or unknown."""
        selector, body = data[:4], data[4:]
        try:
            if selector == ERROR_STRING:
                return "Error", {"message": abi_decode(["string"], body)[0]}
            if selector == PANIC:
                return "Panic", {"code": abi_decode(["uint256"], body)[0]}
            known = self.errors.get(selector)
            if known is None:
                return "", {}
            name, inputs = known
            values = abi_decode([_abi_type(i) for i in inputs], body)
            return name, {(i.get("name") or f"arg{n}"): v for n, (i, v) in enumerate(zip(inputs, values, strict=True))}
        except Exception:  # noqa: BLE001 - malformed revert data is reported as unknown, never raised
            return "", {}

    def explain(self, data: bytes) -> str:
        """One sentence for revert data, e.g. 'not enough tokens staked (InsufficientStake: available=1 FED, ...)'."""
        name, args = self.decode(data)
        if name == "Error":
            return f"The transaction reverted: {args['message']}"
        if name == "Panic":
            return f"The transaction reverted with panic code {args['code']:#x}"
        if not name:
            return "The transaction reverted" + (f" (error data 0x{data.hex()[:72]})" if data else "")
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(args.items()))
        hint = HINTS.get(name)
        what = f"{name}: {details}" if details else name
        return f"The transaction would fail: {hint} ({what})" if hint else f"The transaction would fail: {what}"


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param.get("components", []))
        return f"({inner}){param['type'][5:]}"
    return param["type"]

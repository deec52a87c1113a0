"""Transactions built in Python from the deployment's ABIs, checked before the wallet is asked, and their receipts.

The browser wallet only signs and sends what `TxRequest.wallet_params` hands it. Before that, `precheck_*`
functions refuse amounts the account cannot cover (no wallet prompt), and `Transactions.simulate` runs the call
with `eth_call` so a revert is explained by its custom error instead of a failed transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from eth_utils import is_address, keccak, to_checksum_address

from fedchain.deployment import CONTRACT_NAMES
from frontend.wallet.errors import RevertDecoder, WalletError

ONE_TOKEN = 10**18
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
GAS_MARGIN_PERCENT = 130
GAS_MARGIN_FIXED = 30_000


@dataclass(frozen=True)
class TxRequest:
    """One transaction for the wallet: what it does in words, and the exact call."""

    label: str
    sender: str
    to: str
    data: str  # 0x-hex calldata
    chain_id: int
    value: int = 0
    gas: int | None = None  # set from the simulation's estimate (with a margin)

    def call_params(self) -> dict[str, str]:
        return {"from": self.sender, "to": self.to, "data": self.data, "value": hex(self.value)}

    def wallet_params(self) -> dict[str, str]:
        """The `eth_sendTransaction` parameter object (EIP-1193 / JSON-RPC hex quantities)."""
        gas = {} if self.gas is None else {"gas": hex(self.gas)}
        return {**self.call_params(), "chainId": hex(self.chain_id), **gas}


def tokens(text: str | float | int) -> int:
    """An amount of FED typed by a person as wei; WalletError for anything not a positive number."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise WalletError("input", f"{text!r} is not an amount of FED") from None
    if not amount.is_finite() or amount <= 0:
        raise WalletError("input", "the amount must be a positive number of FED")
    wei = int(amount * ONE_TOKEN)
    if wei != amount * ONE_TOKEN:
        raise WalletError("input", "FED has 18 decimals; the amount has more")
    return wei


def fmt_tokens(wei: int) -> str:
    return f"{wei / ONE_TOKEN:,.4f}".rstrip("0").rstrip(".") + " FED"


class Transactions:
    """Calldata and view calls for one deployment (web3 handles from the dashboard context's ChainSource)."""

    def __init__(self, chain: Any, chain_id: int):
        self.chain = chain  # fedchain.web3chain.Web3Chain
        self.w3 = chain.w3
        self.chain_id = chain_id
        self.decoder = RevertDecoder({CONTRACT_NAMES[role]: c.abi for role, c in chain.contracts.items()})

    # --- building --------------------------------------------------------------------------------
    def build(self, label: str, role: str, function: str, args: list[Any], sender: str, value: int = 0) -> TxRequest:
        contract = self.contract(role)
        data = contract.encode_abi(function, args=args)
        return TxRequest(label, to_checksum_address(sender), contract.address, data, self.chain_id, value)

    def contract(self, role: str) -> Any:
        contract = self.chain.contracts.get(role)
        if contract is None:
            what = "a DAO (deploy with --governance)" if role in ("governor", "timelock", "policy") else role
            raise WalletError("input", f"this deployment has no {what}")
        return contract

    def view(self, role: str, function: str, *args: Any) -> Any:
        return self.chain.call(role, function, *args)

    def approve_stake(self, sender: str, amount: int) -> TxRequest:
        staking = self.contract("staking").address
        return self.build(f"approve {fmt_tokens(amount)} for staking", "token", "approve", [staking, amount], sender)

    def stake(self, sender: str, amount: int) -> TxRequest:
        return self.build(f"stake {fmt_tokens(amount)}", "staking", "stake", [amount], sender)

    def request_unstake(self, sender: str, amount: int) -> TxRequest:
        return self.build(f"unstake {fmt_tokens(amount)}", "staking", "requestUnstake", [amount], sender)

    def withdraw(self, sender: str) -> TxRequest:
        return self.build("withdraw unbonded stake", "staking", "withdraw", [], sender)

    def delegate(self, sender: str, delegatee: str) -> TxRequest:
        if not is_address(delegatee):
            raise WalletError("input", f"{delegatee!r} is not an Ethereum address")
        delegatee = to_checksum_address(delegatee)
        who = "yourself" if delegatee == to_checksum_address(sender) else delegatee
        return self.build(f"delegate votes to {who}", "token", "delegate", [delegatee], sender)

    def claim(self, sender: str, task_id: int, round_: int, score: int, weight: int, proof: list[bytes]
              ) -> TxRequest:
        return self.build(f"claim task {task_id} round {round_}", "vault", "claimReward",
                          [task_id, round_, score, weight, proof], sender)

    def cast_vote(self, sender: str, proposal_id: int, support: str, reason: str = "") -> TxRequest:
        if support not in SUPPORT:
            raise WalletError("input", f"vote {support!r}: choose for, against or abstain")
        label = f"vote {support}"
        if reason:
            return self.build(label, "governor", "castVoteWithReason", [proposal_id, SUPPORT[support], reason], sender)
        return self.build(label, "governor", "castVote", [proposal_id, SUPPORT[support]], sender)

    def propose(self, sender: str, targets: list[str], calldatas: list[bytes], description: str) -> TxRequest:
        if not description.strip():
            raise WalletError("input", "a proposal needs a description")
        return self.build("create proposal", "governor", "propose",
                          [targets, [0] * len(targets), calldatas, description], sender)

    def queue(self, sender: str, proposal: dict[str, Any]) -> TxRequest:
        return self.build("queue proposal", "governor", "queue", _operation(proposal), sender)

    def execute(self, sender: str, proposal: dict[str, Any]) -> TxRequest:
        return self.build("execute proposal", "governor", "execute", _operation(proposal), sender)

    # --- checks before the wallet is asked ---------------------------------------------------------
    def precheck_stake(self, sender: str, amount: int) -> list[TxRequest]:
        """approve (when the allowance is short) + stake; WalletError when the balance does not cover `amount`."""
        balance = int(self.view("token", "balanceOf", sender))
        if amount > balance:
            raise WalletError("insufficient", f"Insufficient balance: you have {fmt_tokens(balance)}, "
                                              f"staking {fmt_tokens(amount)} needs more; nothing was sent.")
        allowance = int(self.view("token", "allowance", sender, self.contract("staking").address))
        steps = [] if allowance >= amount else [self.approve_stake(sender, amount)]
        return [*steps, self.stake(sender, amount)]

    def precheck_unstake(self, sender: str, amount: int) -> TxRequest:
        staked = int(self.view("staking", "stakeOf", sender))
        free = int(self.view("staking", "freeStakeOf", sender))
        if amount > free:
            reserved = staked - free
            held = f" ({fmt_tokens(reserved)} of it reserved as bonds of rounds in progress)" if reserved else ""
            raise WalletError("insufficient", f"Insufficient stake: you have {fmt_tokens(staked)} staked{held}, "
                                              f"cannot unstake {fmt_tokens(amount)}; nothing was sent.")
        return self.request_unstake(sender, amount)

    def simulate(self, tx: TxRequest) -> TxRequest:
        """Run the call (eth_call, then eth_estimateGas); WalletError('reverted') with the decoded custom error if it
        would fail, else `tx` with a gas limit: the estimate plus a margin, because the block it lands in can cost
        more than the one it was estimated on (e.g. a vote checkpoint at a new timestamp)."""
        for method in ("eth_call", "eth_estimateGas"):
            params = [tx.call_params()] + (["latest"] if method == "eth_call" else [])
            response = self.w3.provider.make_request(method, params)
            error = response.get("error") if isinstance(response, dict) else None
            if error:
                raise WalletError("reverted", self._explain(error), code=error.get("code"))
        estimate = int(response["result"], 16)
        return replace(tx, gas=estimate * GAS_MARGIN_PERCENT // 100 + GAS_MARGIN_FIXED)

    def _explain(self, error: dict[str, Any]) -> str:
        data = error.get("data")
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return self.decoder.explain(bytes.fromhex(data[2:]))
        return f"The transaction would fail: {error.get('message', 'reverted')}"

    # --- after sending -----------------------------------------------------------------------------
    def wait_mined(self, tx_hash: str, timeout: float = 180.0) -> dict[str, Any]:
        """The receipt of a sent transaction; WalletError('reverted', decoded reason) if it failed on chain."""
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.5)
        if int(receipt["status"]) != 1:
            tx = self.w3.eth.get_transaction(tx_hash)
            replay = {"from": tx["from"], "to": tx["to"], "data": "0x" + bytes(tx["input"]).hex(),
                      "value": hex(int(tx["value"]))}
            block = hex(int(receipt["blockNumber"]) - 1)
            response = self.w3.provider.make_request("eth_call", [replay, block])
            error = response.get("error") if isinstance(response, dict) else None
            out_of_gas = int(receipt["gasUsed"]) >= int(tx["gas"])
            reason = self._explain(error) if error else (
                "The transaction ran out of gas" if out_of_gas else "The transaction reverted")
            raise WalletError("reverted", f"{reason} (mined in block {receipt['blockNumber']}, status 0)")
        return dict(receipt)


def _operation(proposal: dict[str, Any]) -> list[Any]:
    """(targets, values, calldatas, descriptionHash) of a proposal dict with those fields (from ProposalCreated)."""
    try:
        calldatas = [c if isinstance(c, bytes) else bytes.fromhex(c.removeprefix("0x")) for c in proposal["calldatas"]]
        return [[to_checksum_address(t) for t in proposal["targets"]], [int(v) for v in proposal["values"]], calldatas,
                keccak(text=proposal["description"])]
    except (KeyError, ValueError, TypeError) as exc:
        raise WalletError("input", f"the proposal's actions are unknown ({exc}); reload the page") from None

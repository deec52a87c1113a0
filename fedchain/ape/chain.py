"""``Fedchain``: the ``ChainReader`` over ape, with the deployment's contract handles; transactions whose reverts
are explained from ``fedchain.reverts``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ape import chain, networks
from ape.exceptions import ContractLogicError

from fedchain.chainview import ChainEvent, ChainReader
from fedchain.config import REPO_ROOT, ensure_tool_paths
from fedchain.deployment import CONTRACT_NAMES, Deployment
from fedchain.errors import FedchainError
from fedchain.reverts import explain
from fedchain.web3chain import view_call

log = logging.getLogger(__name__)


def contracts_project() -> Any:
    """The ape project holding fedchain's contracts (compiled on first use)."""
    from ape.managers.project import LocalProject

    ensure_tool_paths()
    return LocalProject(REPO_ROOT)


def network_key() -> str:
    """``ecosystem:network`` of the connected provider: the key in deployments.json."""
    provider = networks.provider
    return f"{provider.network.ecosystem.name}:{provider.network.name}"


def is_local_network() -> bool:
    return networks.provider.network.name == "local"


class Fedchain(ChainReader):
    """The contracts of one deployment through ape: typed reads (``ChainReader``) and contract handles
    (``token``, ``staking``, ``tasks``, ``rejection_slasher``, ``governor``, ``timelock``, ``policy``,
    ``retention``, ``validation_keys``; None where the deployment has no such contract)."""

    def __init__(self, deployment: Deployment) -> None:
        project = contracts_project()
        self.deployment = deployment
        self.contracts: dict[str, Any] = {
            role: getattr(project, CONTRACT_NAMES[role]).at(address)
            for role, address in deployment.addresses.items()
        }
        self._names = {address.lower(): CONTRACT_NAMES[role] for role, address in deployment.addresses.items()}
        for role in CONTRACT_NAMES:
            setattr(self, role, self.contracts.get(role))

    token: Any
    staking: Any
    tasks: Any
    rejection_slasher: Any
    governor: Any
    timelock: Any
    policy: Any
    retention: Any
    validation_keys: Any

    @classmethod
    def connect(cls) -> Fedchain:
        """The deployment recorded for the connected network, checked against the chain."""
        record = Deployment.load(network_key())
        record.require_on_chain(int(chain.chain_id), bool(networks.provider.get_code(record.tasks)))
        return cls(record)

    # --- ChainReader ----------------------------------------------------------------------------------
    def call(self, role: str, function: str, *args: Any, block: int | None = None) -> Any:
        """A view call through the provider's web3, like ``Web3Chain``'s (structs as dicts): ape's own contract
        call checks the code of every address argument and costs several requests a call."""
        return view_call(self._web3_contract(role), function, args, block)

    def _web3_contract(self, role: str) -> Any:
        w3 = chain.provider.web3
        cache = self.__dict__.setdefault("_web3_contracts", {})
        key = (role, id(w3))  # a reconnected provider gets contracts of its own
        if key not in cache:
            contract = self.contracts[role]
            abi = [a.model_dump(mode="json", by_alias=True) for a in contract.contract_type.abi]
            cache[key] = w3.eth.contract(address=str(contract.address), abi=abi)
        return cache[key]

    def events(self, role: str, name: str, from_block: int, to_block: int | None = None,
               filters: Mapping[str, Any] | None = None) -> list[ChainEvent]:
        stop = (int(chain.blocks.height) if to_block is None else int(to_block)) + 1
        logs = getattr(self.contracts[role], name).range(int(from_block), stop, search_topics=dict(filters or {}))
        return [ChainEvent(int(e.block_number), _hex(e.block_hash), _hex(e.transaction_hash), int(e.log_index), role,
                           str(e.contract_address), name, dict(e.event_arguments)) for e in logs]

    def chain_id(self) -> int:
        return int(chain.chain_id)

    def head(self) -> int:
        return int(chain.blocks.height)

    def block_timestamp(self, number: int | None = None) -> int:
        block = chain.blocks.head if number is None else chain.blocks[number]
        return int(block.timestamp)

    def pending_timestamp(self) -> int:
        """Asks the node for its pending block (dev chains whose clock was moved or restored from a snapshot differ
        from the wall clock); nodes without one fall back to the later of the wall clock and the head block."""
        try:
            return int(chain.pending_timestamp)
        except Exception:  # noqa: BLE001 - any RPC without "pending" support
            return max(int(time.time()), int(chain.blocks.head.timestamp))

    # --- transactions ---------------------------------------------------------------------------------
    def contract_name(self, address: str | None) -> str | None:
        return self._names.get(str(address).lower()) if address else None

    def explain_revert(self, exc: BaseException) -> str:
        return explain_revert(exc, self.contract_name(getattr(exc, "contract_address", None)))

    def send(self, description: str, method: Callable[..., Any], *args: Any, sender: Any, **kwargs: Any) -> Any:
        """Send a transaction; a revert becomes a ``FedchainError`` saying what went wrong and what to do. A
        transaction that would revert now is not sent: it is found by a quiet ``eth_call`` first (ape prints a
        call trace for every revert it meets)."""
        if hasattr(method, "encode_input") and not kwargs.get("value"):
            estimate, data = self.preflight(method, args, sender)
            if data is not None:
                raise FedchainError(f"{description} failed: {self.revert_decoder().explain(data)}")
            key = _dev_key(sender)
            if key and not kwargs:
                receipt, why = self._send_signed(method, args, sender, key, estimate)
                if why is not None:
                    raise FedchainError(f"{description} failed: {why}")
                return receipt
        try:
            return method(*args, sender=sender, **kwargs)
        except ContractLogicError as exc:
            raise FedchainError(f"{description} failed: {self.explain_revert(exc)}") from exc

    def revert_decoder(self) -> Any:
        """The deployment's custom errors by selector (``fedchain.reverts.RevertDecoder``)."""
        if getattr(self, "_decoder", None) is None:
            from fedchain.reverts import RevertDecoder

            abis = {CONTRACT_NAMES[role]: [a.model_dump(mode="json", by_alias=True) for a in c.contract_type.abi]
                    for role, c in self.contracts.items()}
            self._decoder = RevertDecoder(abis, prefer=("TaskManager", "RewardVault", "AggregatorCommittee"))
        return self._decoder

    def preflight(self, method: Any, args: tuple, sender: Any) -> tuple[int | None, bytes | None]:
        """``(gas estimate, None)``, or ``(None, revert data)`` when the call would revert in the pending block
        (the latest, on a node without one). Quiet: a plain web3 call."""
        from web3.exceptions import ContractCustomError
        from web3.exceptions import ContractLogicError as Web3LogicError

        w3 = chain.provider.web3
        call = {"to": str(method.contract.address), "from": str(getattr(sender, "address", sender)),
                "data": _hex(method.encode_input(*args))}
        try:
            try:
                return int(w3.eth.estimate_gas(call, "pending")), None
            except (Web3LogicError, ContractCustomError):
                raise
            except Exception:  # noqa: BLE001 - a node without "pending" estimates: the latest block
                return int(w3.eth.estimate_gas(call)), None
        except (Web3LogicError, ContractCustomError) as exc:  # ContractCustomError: its data is the custom error
            data = getattr(exc, "data", None)
            text = data if isinstance(data, str) else ""
            try:
                return None, bytes.fromhex(text[2:]) if text.startswith("0x") else b""
            except ValueError:
                return None, b""

    def _send_signed(self, method: Any, args: tuple, sender: Any, key: Any, estimate: int,
                     timeout: float = 120.0) -> tuple[Any, str | None]:
        """The hot path for local dev accounts: sign here and send raw, then wait for the receipt with short
        polls (ape's own path re-estimates, re-fetches fees and checks every address argument's code, about
        50 ms a transaction on anvil)."""
        from eth_account import Account

        provider = chain.provider.web3.provider
        address = str(sender.address)
        nonce = int(_rpc(provider, "eth_getTransactionCount", [address, "pending"]), 16)
        # twice the base fee plus 1 gwei: eth_gasPrice follows recent tips, so paying a multiple of it would
        # double the price with every transaction
        head = _rpc(provider, "eth_getBlockByNumber", ["latest", False])
        base = int(head.get("baseFeePerGas") or "0x0", 16)
        # a generous limit (only the gas used is paid): the estimate is of the state before other processes' moves,
        # and the same call can cost much more after them (the reveal that completes a quorum finalizes it)
        gas = min(int(head["gasLimit"], 16), max(3 * estimate, estimate + 1_000_000))
        tx = {"to": str(method.contract.address), "data": _hex(method.encode_input(*args)), "value": 0,
              "gas": gas, "nonce": nonce, "chainId": self.chain_id(),
              "gasPrice": 2 * base + 10**9}
        signed = Account.sign_transaction(tx, key)
        raw = getattr(signed, "raw_transaction", None) or signed.rawTransaction
        tx_hash = _rpc(provider, "eth_sendRawTransaction", [_hex(raw)])
        deadline, pause = time.monotonic() + timeout, 0.002
        while (receipt := _rpc(provider, "eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                return None, f"no receipt for {tx_hash} after {timeout:.0f} s"
            time.sleep(pause)
            pause = min(0.1, pause * 2)
        if int(receipt["status"], 16) != 1:
            return None, f"mined and reverted ({tx_hash})"
        return LazyReceipt(tx_hash), None

    def try_send(self, method: Any, *args: Any, sender: Any, timeout: float = 120.0) -> tuple[Any, str | None]:
        """Send where losing a race is expected: ``(receipt, None)``, or ``(None, why)`` when the transaction would
        revert now or was mined and reverted. Through web3, quietly: ape prints a call trace on every revert."""
        w3 = chain.provider.web3
        estimate, data = self.preflight(method, args, sender)
        if estimate is None:
            return None, f"would revert ({self.revert_decoder().signature(data or b'')})"
        key = _dev_key(sender)
        if key:
            return self._send_signed(method, args, sender, key, estimate, timeout)
        signed = method.as_transaction(*args, sender=sender, gas=estimate + estimate // 4 + 20_000, sign=True)
        tx_hash = w3.eth.send_raw_transaction(signed.serialize_transaction())
        status = int(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)["status"])
        if status != 1:
            return None, f"mined and reverted ({_hex(tx_hash)})"
        return chain.provider.get_receipt(_hex(tx_hash)), None


class LazyReceipt:
    """A mined, successful transaction's receipt, fetched through ape (events decoded, ...) only when used: most
    callers of a hot-path send need nothing from it."""

    def __init__(self, tx_hash: str) -> None:
        self.txn_hash = tx_hash
        self._receipt: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_receipt":
            raise AttributeError(name)
        if self._receipt is None:
            self._receipt = chain.provider.get_receipt(self.txn_hash)
        return getattr(self._receipt, name)


def _dev_key(sender: Any) -> Any:
    """The private key of a local network's dev account, which the hot path signs with; None for any other
    account (ape's keystore accounts expose none) or network."""
    key = getattr(sender, "private_key", None)
    return key if key and is_local_network() else None


def _rpc(provider: Any, name: str, params: list) -> Any:
    """One JSON-RPC request without web3's middleware; its ``result``."""
    reply = provider.make_request(name, params)
    if reply.get("error"):
        raise FedchainError(f"{name} failed: {reply['error'].get('message', reply['error'])}")
    return reply["result"]


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def explain_revert(exc: BaseException, contract: str | None = None) -> str:
    """One line for a revert ape raised: a custom error by name with its arguments, or the revert message."""
    inputs = getattr(exc, "inputs", None)
    if isinstance(exc, ContractLogicError) and isinstance(inputs, dict):
        return explain(type(exc).__name__, inputs, contract)
    if isinstance(exc, ContractLogicError):
        return f"transaction reverted: {exc.message or type(exc).__name__}"
    return str(exc)


def revert_name(exc: BaseException) -> str:
    """The custom error's name of a revert ape raised ('' for other errors)."""
    return type(exc).__name__ if isinstance(getattr(exc, "inputs", None), dict) else ""

"""``Web3Chain``: the ``ChainReader`` over plain web3 JSON-RPC (no ape global state), for the backend's indexer and
the dashboard, which run in server threads. Also: the contracts' ABIs from the build, and log decoding."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from eth_utils import event_abi_to_log_topic
from eth_utils.abi import get_abi_output_types
from web3 import Web3
from web3._utils.abi import map_abi_data
from web3._utils.events import get_event_data
from web3._utils.normalizers import BASE_RETURN_NORMALIZERS
from web3.exceptions import ContractLogicError

from fedchain.chainview import ChainEvent, ChainReader
from fedchain.config import REPO_ROOT
from fedchain.deployment import CONTRACT_NAMES, Deployment
from fedchain.errors import FedchainError

BUILD_MANIFEST = REPO_ROOT / ".build" / "__local__.json"

# OpenZeppelin 5 Governor events and the one view the indexer needs (IGovernor), for a build without the governor.
GOVERNOR_ABI: list[dict[str, Any]] = [
    {"type": "event", "name": "ProposalCreated", "anonymous": False, "inputs": [
        {"name": "proposalId", "type": "uint256", "indexed": False},
        {"name": "proposer", "type": "address", "indexed": False},
        {"name": "targets", "type": "address[]", "indexed": False},
        {"name": "values", "type": "uint256[]", "indexed": False},
        {"name": "signatures", "type": "string[]", "indexed": False},
        {"name": "calldatas", "type": "bytes[]", "indexed": False},
        {"name": "voteStart", "type": "uint256", "indexed": False},
        {"name": "voteEnd", "type": "uint256", "indexed": False},
        {"name": "description", "type": "string", "indexed": False}]},
    {"type": "event", "name": "VoteCast", "anonymous": False, "inputs": [
        {"name": "voter", "type": "address", "indexed": True},
        {"name": "proposalId", "type": "uint256", "indexed": False},
        {"name": "support", "type": "uint8", "indexed": False},
        {"name": "weight", "type": "uint256", "indexed": False},
        {"name": "reason", "type": "string", "indexed": False}]},
    {"type": "event", "name": "VoteCastWithParams", "anonymous": False, "inputs": [
        {"name": "voter", "type": "address", "indexed": True},
        {"name": "proposalId", "type": "uint256", "indexed": False},
        {"name": "support", "type": "uint8", "indexed": False},
        {"name": "weight", "type": "uint256", "indexed": False},
        {"name": "reason", "type": "string", "indexed": False},
        {"name": "params", "type": "bytes", "indexed": False}]},
    {"type": "event", "name": "ProposalQueued", "anonymous": False, "inputs": [
        {"name": "proposalId", "type": "uint256", "indexed": False},
        {"name": "etaSeconds", "type": "uint256", "indexed": False}]},
    {"type": "event", "name": "ProposalExecuted", "anonymous": False, "inputs": [
        {"name": "proposalId", "type": "uint256", "indexed": False}]},
    {"type": "event", "name": "ProposalCanceled", "anonymous": False, "inputs": [
        {"name": "proposalId", "type": "uint256", "indexed": False}]},
    {"type": "function", "name": "state", "stateMutability": "view",
     "inputs": [{"name": "proposalId", "type": "uint256"}], "outputs": [{"name": "", "type": "uint8"}]},
]


def load_abis() -> dict[str, list[dict[str, Any]]]:
    """Contract ABIs by contract name from ape's build manifest (``.build/__local__.json``)."""
    if not BUILD_MANIFEST.exists():
        raise FedchainError(f"the contracts are not compiled ({BUILD_MANIFEST} is missing): run `ape compile` "
                            "(or `make compile`) in the repository")
    manifest = json.loads(BUILD_MANIFEST.read_text())
    abis = {name: ct["abi"] for name, ct in manifest["contractTypes"].items()}
    abis.setdefault("FedGovernor", GOVERNOR_ABI)
    return abis


def jsonable(value: Any) -> Any:
    """Event args as JSON: bytes as 0x-hex, ints beyond 2**53 as decimal strings."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def named(abi_param: dict[str, Any], value: Any) -> Any:
    """Struct outputs (tuples) as dicts keyed by the ABI's component names, recursively."""
    if abi_param.get("type", "").startswith("tuple") and "components" in abi_param:
        if abi_param["type"] == "tuple":
            return {c["name"]: named(c, v) for c, v in zip(abi_param["components"], value, strict=True)}
        element = {**abi_param, "type": "tuple"}
        return [named(element, v) for v in value]
    return value


def view_call(contract: Any, function: str, args: tuple, block: int | None = None) -> Any:
    """A web3 view call at ``block`` (falls back to the latest state where the node has pruned history); struct
    outputs as dicts of their Solidity names, several outputs as a tuple."""
    fn = getattr(contract.functions, function)(*(_argument(a) for a in args))
    outputs = fn.abi.get("outputs", [])
    call = {"to": contract.address, "data": fn._encode_transaction_data()}
    if block is None:
        raw = _eth_call(contract.w3, call, "latest")
    else:
        try:
            raw = _eth_call(contract.w3, call, hex(int(block)))
        except Exception:  # noqa: BLE001 - non-archive nodes refuse old state; latest is the next best
            raw = _eth_call(contract.w3, call, "latest")
    types = get_abi_output_types(fn.abi)
    value = map_abi_data(BASE_RETURN_NORMALIZERS, types, contract.w3.codec.decode(types, raw))
    if len(outputs) == 1:
        value = value[0]
        return named(outputs[0], value)
    return tuple(named(o, v) for o, v in zip(outputs, value, strict=True))


def _eth_call(w3: Web3, call: dict[str, Any], block: str) -> bytes:
    """One ``eth_call`` request, without web3's middleware (which adds a chain-id request or two per call)."""
    reply = w3.provider.make_request("eth_call", [call, block])
    error = reply.get("error")
    if error:
        data = error.get("data")
        raise ContractLogicError(f"view call reverted: {error.get('message', error)}",
                                 data=data if isinstance(data, str) else None)
    return bytes.fromhex(str(reply["result"])[2:])


def _argument(value: Any) -> Any:
    """Accounts and lower-case addresses as the checksummed strings web3 wants."""
    address = getattr(value, "address", None)
    if address is not None:
        return Web3.to_checksum_address(str(address))
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            return Web3.to_checksum_address(value)
        except ValueError:
            return value
    return value


class Web3Chain(ChainReader):
    """Logs and view calls for one deployment on one JSON-RPC endpoint."""

    def __init__(self, rpc_url: str, deployment: Deployment, abis: dict[str, list[dict[str, Any]]] | None = None,
                 timeout: float = 30.0) -> None:
        abis = load_abis() if abis is None else abis
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.deployment = deployment
        self.abis = abis
        self.contracts: dict[str, Any] = {}
        self._events: dict[tuple[str, bytes], tuple[str, dict[str, Any]]] = {}
        for role, address in deployment.addresses.items():
            abi = abis.get(CONTRACT_NAMES[role])
            if abi is None:
                continue
            self.contracts[role] = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    self._events[(address.lower(), event_abi_to_log_topic(item))] = (role, item)

    # --- ChainReader ----------------------------------------------------------------------------------
    def call(self, role: str, function: str, *args: Any, block: int | None = None) -> Any:
        """A view call at ``block`` (see ``view_call``)."""
        return view_call(self.contracts[role], function, args, block)

    def events(self, role: str, name: str, from_block: int, to_block: int | None = None,
               filters: Mapping[str, Any] | None = None) -> list[ChainEvent]:
        stop = self.head() if to_block is None else int(to_block)
        wanted = [e for e in self.logs(from_block, stop, roles=(role,)) if e.name == name]
        return [e for e in wanted if all(_same(e.args.get(k), v) for k, v in (filters or {}).items())]

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block_timestamp(self, number: int | None = None) -> int:
        return int(self.w3.eth.get_block("latest" if number is None else number)["timestamp"])

    def pending_timestamp(self) -> int:
        try:
            return int(self.w3.eth.get_block("pending")["timestamp"])
        except Exception:  # noqa: BLE001 - nodes without a pending block
            return max(int(time.time()), self.block_timestamp())

    # --- what the indexer needs ---------------------------------------------------------------------
    def block_hash(self, number: int) -> str | None:
        block = self.w3.eth.get_block(number)
        return None if block is None else "0x" + bytes(block["hash"]).hex()

    def has_code(self, role: str = "tasks") -> bool:
        return len(self.w3.eth.get_code(self.contracts[role].address)) > 0

    def logs(self, from_block: int, to_block: int, roles: tuple[str, ...] | None = None) -> list[ChainEvent]:
        """Every known event of the deployment's contracts (or of ``roles``) in [from_block, to_block], in chain
        order."""
        addresses = [c.address for r, c in self.contracts.items() if roles is None or r in roles]
        raw = self.w3.eth.get_logs({"fromBlock": int(from_block), "toBlock": int(to_block), "address": addresses})
        decoded = []
        for entry in raw:
            topics = entry["topics"]
            if not topics:
                continue
            known = self._events.get((entry["address"].lower(), bytes(topics[0])))
            if known is None:
                continue
            role, abi = known
            data = get_event_data(self.w3.codec, abi, entry)
            decoded.append(ChainEvent(
                block_number=int(entry["blockNumber"]), block_hash="0x" + bytes(entry["blockHash"]).hex(),
                tx_hash="0x" + bytes(entry["transactionHash"]).hex(), log_index=int(entry["logIndex"]),
                contract=role, address=entry["address"], name=abi["name"], args=dict(data["args"]),
            ))
        decoded.sort(key=lambda log: (log.block_number, log.log_index))
        return decoded


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()
    return value == wanted

"""What the indexer reads from the chain: the deployment record, contract ABIs, decoded logs and view calls.

Plain web3 over JSON-RPC (no ape global state), so the indexer can run in a server thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3._utils.events import get_event_data

from fedchain.config import REPO_ROOT, settings

BUILD_MANIFEST = REPO_ROOT / ".build" / "__local__.json"

# OpenZeppelin 5 Governor events and the one view the indexer needs (IGovernor).
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

PROPOSAL_STATES = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed")
FINAL_PROPOSAL_STATES = {"canceled", "defeated", "expired", "executed"}
# deployments.json role -> contract name in the build; every role present in a record is indexed.
CONTRACT_NAMES = {"token": "FedToken", "staking": "Staking", "tasks": "TaskManager",
                  "rejection_slasher": "RejectionSlasher", "governor": "FedGovernor", "timelock": "FedTimelock",
                  "policy": "ProtocolPolicy", "retention": "TaskRetention"}


@dataclass(frozen=True)
class DeploymentRecord:
    """One network's entry in ``$FEDCHAIN_HOME/deployments.json`` (written by ``ape run deploy`` and the demo)."""

    network: str
    chain_id: int
    block: int
    addresses: dict[str, str]  # role ("token", "staking", "tasks", "governor", ...) -> checksum address

    @classmethod
    def load(cls, network: str, path: Path | None = None) -> DeploymentRecord | None:
        path = path or settings().deployments_file
        try:
            records = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        raw = records.get(network)
        if not isinstance(raw, dict):
            return None
        roles = list(CONTRACT_NAMES)
        addresses = {r: to_checksum_address(raw[r]) for r in roles if isinstance(raw.get(r), str) and raw[r]}
        return cls(network, int(raw["chain_id"]), int(raw["block"]), addresses)


def load_abis() -> dict[str, list[dict[str, Any]]]:
    """Contract ABIs by contract name from ape's build manifest (compiling the project if needed)."""
    if not BUILD_MANIFEST.exists():
        from fedchain.chain import contracts_project

        contracts_project().load_contracts()
    manifest = json.loads(BUILD_MANIFEST.read_text())
    abis = {name: ct["abi"] for name, ct in manifest["contractTypes"].items()}
    abis.setdefault("FedGovernor", GOVERNOR_ABI)  # the OZ Governor events, if the governor is not compiled here
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


@dataclass(frozen=True)
class DecodedLog:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    address: str
    name: str
    args: dict[str, Any]


class ChainSource:
    """Logs and view calls for one deployment on one JSON-RPC endpoint."""

    def __init__(self, rpc_url: str, deployment: DeploymentRecord, abis: dict[str, list[dict[str, Any]]]):
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.deployment = deployment
        self.contracts: dict[str, Any] = {}
        self._events: dict[tuple[str, bytes], tuple[str, dict[str, Any]]] = {}
        for role, address in deployment.addresses.items():
            abi = abis.get(CONTRACT_NAMES[role])
            if abi is None:
                continue
            self.contracts[role] = self.w3.eth.contract(address=address, abi=abi)
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    self._events[(address.lower(), event_abi_to_log_topic(item))] = (role, item)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        block = self.w3.eth.get_block(number)
        return None if block is None else "0x" + bytes(block["hash"]).hex()

    def block_timestamp(self, number: int) -> int:
        return int(self.w3.eth.get_block(number)["timestamp"])

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def has_code(self, role: str = "tasks") -> bool:
        return len(self.w3.eth.get_code(self.deployment.addresses[role])) > 0

    def logs(self, from_block: int, to_block: int) -> list[DecodedLog]:
        """Every known event of the deployment's contracts in [from_block, to_block], in chain order."""
        raw = self.w3.eth.get_logs({"fromBlock": from_block, "toBlock": to_block,
                                    "address": list(self.deployment.addresses.values())})
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
            decoded.append(DecodedLog(
                block_number=int(entry["blockNumber"]), block_hash="0x" + bytes(entry["blockHash"]).hex(),
                tx_hash="0x" + bytes(entry["transactionHash"]).hex(), log_index=int(entry["logIndex"]),
                contract=role, address=entry["address"], name=abi["name"], args=dict(data["args"]),
            ))
        decoded.sort(key=lambda log: (log.block_number, log.log_index))
        return decoded

    def call(self, role: str, function: str, *args: Any, block: int | None = None) -> Any:
        """A view call at `block` (falls back to the latest state where the node has pruned history)."""
        fn = getattr(self.contracts[role].functions, function)(*args)
        outputs = fn.abi.get("outputs", [])
        if block is None:
            value = fn.call()
        else:
            try:
                value = fn.call(block_identifier=block)
            except Exception:  # noqa: BLE001 - non-archive nodes refuse old state; latest is the next best
                value = fn.call()
        if len(outputs) == 1:
            return named(outputs[0], value)
        return tuple(named(o, v) for o, v in zip(outputs, value, strict=True))


def named(abi_param: dict[str, Any], value: Any) -> Any:
    """Struct outputs (tuples) as dicts keyed by the ABI's component names, recursively."""
    if abi_param.get("type", "").startswith("tuple") and "components" in abi_param:
        if abi_param["type"] == "tuple":
            return {c["name"]: named(c, v) for c, v in zip(abi_param["components"], value, strict=True)}
        element = {**abi_param, "type": "tuple"}
        return [named(element, v) for v in value]
    return value

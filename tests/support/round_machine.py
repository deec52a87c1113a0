"""Harness of the round state machine test (test_round_state_machine.py): the protocol's enum values and fixture
amounts, ABI encoding for raw JSON-RPC transactions to ape's anvil, the model's round and entry records, and the
pure checks (first error of a check list, legal phase steps)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_abi import decode, encode
from eth_utils import keccak
from eth_utils.abi import abi_to_signature, collapse_if_tuple

from fedchain.commitments import AggregateResult, ScoreTree

FED = 10**18
NONE, TC, TR, AC, AR, FIN, FAIL = range(7)  # enum Phase
ACTIVE, COMPLETED = 1, 2  # enum TaskStatus
T_COMMITTED, T_REVEALED, T_CLAIMED, T_SLASHED = 1, 2, 3, 4  # enum TrainerStatus
A_COMMITTED, A_REVEALED, A_SLASHED, A_CLAIMED = 1, 2, 3, 4  # enum AggregatorStatus
# stakes cover two bonds each (trainers) or two committee seats (aggregators): bonds of unsettled rounds bind
TRAINER_STAKE, AGG_STAKE, MIN_T_STAKE, MIN_A_STAKE = 250 * FED, 2_500 * FED, 100 * FED, 1_000 * FED
UNBONDING, TRAINER_BPS, AGG_BPS, TASK = 3600, 10_000, 5_000, 1  # the contracts' defaults for the slashes
SETTLE = 24 * 3600  # TaskManager.settlementWindow default
AGG_SHARE_BPS, FEE_BPS, CLAIM_WINDOW = 300, 100, 2 * 24 * 3600  # RewardVault terms set before the task
ROUND_FIELDS = ("phase", "phaseDeadline", "committed", "revealed", "roundBudget", "failedPhase", "failureReason",
                "acceptedKey", "finalizedAt", "settledAt")
REACHED: Counter = Counter()  # outcomes seen in the whole run, so the invariants were not checked vacuously
Err = tuple[Any, ...] | None  # ("ErrorName", *args), or None for success



class Iface:
    """ABI encoding and decoding for one deployed contract, from ape's compiled contract type."""

    def __init__(self, contract: Any) -> None:
        self.address: str = contract.address
        abi = [e.model_dump(by_alias=True, mode="json") for e in contract.contract_type.abi]
        self.fns = {e["name"]: e for e in abi if e["type"] == "function"}
        self.errors = {keccak(text=abi_to_signature(e))[:4]: e for e in abi if e["type"] == "error"}

    def calldata(self, fn: str, *args: Any) -> str:
        f = self.fns[fn]
        return "0x" + (keccak(text=abi_to_signature(f))[:4] + encode(types(f["inputs"]), args)).hex()

    def result(self, fn: str, data: str) -> Any:
        outs = self.fns[fn]["outputs"]
        values = list(named(outs, decode(types(outs), bytes.fromhex(data[2:]))).values())
        return values[0] if len(values) == 1 else values


def types(params: list[dict]) -> list[str]:
    return [collapse_if_tuple(p) for p in params]


def named(params: list[dict], values: Any) -> dict:
    return {p["name"] or i: named(p["components"], v) if p["type"] == "tuple" else v
            for i, (p, v) in enumerate(zip(params, values, strict=True))}


class Env:
    """The deployed contracts, the accounts around them and a raw JSON-RPC line to ape's anvil."""

    def __init__(self, chain: Any, contracts: list[Any], accounts: Any) -> None:
        self.chain, self.url, self.http = chain, chain.provider.web3.provider.endpoint_uri, requests.Session()
        self.token, self.staking, self.tm, self.committee, self.vault = (Iface(c) for c in contracts)
        self.everyone = [a.address for a in accounts[:11]]
        self.admin, self.treasury, self.sponsor, self.outsider = (self.everyone[i] for i in (0, 1, 2, 10))
        self.trainers, self.aggregators = self.everyone[3:7], self.everyone[7:10]

    def batch(self, calls: list[tuple[str, list]]) -> list:
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        replies = sorted(self.http.post(self.url, json=payload, timeout=60).json(), key=lambda r: r["id"])
        assert all("error" not in r for r in replies), replies
        return [r["result"] for r in replies]

    def rpc(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def read(self, calls: list[tuple[Iface, str, tuple]]) -> list:
        """Many view calls in one HTTP round trip."""
        raw = self.batch([("eth_call", [{"to": c.address, "data": c.calldata(f, *a)}, "latest"]) for c, f, a in calls])
        return [c.result(f, out) for (c, f, _), out in zip(calls, raw, strict=True)]

    def send(self, sender: str, contract: Iface, fn: str, *args: Any) -> tuple[int, Err]:
        """Mine one transaction; return its block timestamp and None or the decoded custom error."""
        tx = {"from": sender, "to": contract.address, "data": contract.calldata(fn, *args), "gas": hex(3_000_000)}
        txh = self.rpc("eth_sendTransaction", tx)
        while (receipt := self.rpc("eth_getTransactionReceipt", txh)) is None:  # anvil mines asynchronously
            time.sleep(0.002)
        ts = receipt["blockTimestamp"]  # anvil answers an int here (hex in logs)
        ts = int(ts, 16) if isinstance(ts, str) else ts
        if int(receipt["status"], 16) == 1:
            return ts, None
        data = bytes.fromhex(self.rpc("debug_traceTransaction", txh, {"tracer": "callTracer"})["output"][2:])
        ifaces = (self.tm, self.committee, self.vault, self.staking, self.token)
        abi = next(i.errors[data[:4]] for i in ifaces if data[:4] in i.errors)
        values = decode(types(abi["inputs"]), data[4:])
        return ts, (abi["name"], *(v.lower() if isinstance(v, str) else v for v in values))


@dataclass
class Entry:
    """A trainer's or an aggregator's part in one round."""

    status: int
    samples: int = 0  # trainer: the sample count it committed to
    honest: bool = True  # trainer: False for a garbage commitment that no reveal opens
    result: AggregateResult | None = None  # aggregator: what it committed to, its score tree and result key
    tree: ScoreTree | None = None
    key: bytes = b""
    bond: int = 0  # stake reserved for this commitment, until released, claimed or slashed


@dataclass
class RoundModel:
    phase: int = NONE
    deadline: int = 0
    failed_phase: int = NONE
    reason: bytes = bytes(32)
    trainers: dict[str, Entry] = field(default_factory=dict)
    drawn: bool = False
    members: list[str] = field(default_factory=list)  # the drawn committee (read from the chain at the draw)
    aggs: dict[str, Entry] = field(default_factory=dict)
    revealed: int = 0
    agg_revealed: int = 0
    votes: Counter = field(default_factory=Counter)
    accepted: Entry | None = None
    budget: int = 0
    finalized_at: int = 0
    settled_at: int = 0
    paid: int = 0  # to trainers
    agg_paid: int = 0  # to committee members
    fee_collected: bool = False
    swept: bool = False

    def split(self) -> tuple[int, int, int]:
        """RewardVault.splitOf: (trainers, aggregators, fee) of the round budget."""
        share, fee = self.budget * AGG_SHARE_BPS // 10_000, self.budget * FEE_BPS // 10_000
        return self.budget - share - fee, share, fee

    def owed(self) -> int:
        """What the vault still holds for this round."""
        if self.phase != FIN or self.swept:
            return 0
        return self.budget - self.paid - self.agg_paid - (self.split()[2] if self.fee_collected else 0)


def first(*checks: tuple[Any, Err]) -> Err:
    """The error of the first check whose condition holds (the contract's order of checks), else None."""
    return next((err for cond, err in checks if cond), None)


def update_of(who: str, rnd: int) -> tuple[str, bytes, bytes]:
    """(cid, updateDigest, salt) of a trainer's update in a round."""
    digest = hashlib.sha256(f"{who}:{rnd}".encode()).digest()
    return f"bafkreiupdate{who[2:10].lower()}r{rnd}", digest, keccak(text=f"salt:{who}:{rnd}")


def legal_step(prev: tuple[int, int, int], cur: tuple[int, int, int], left: int, num_rounds: int) -> bool:
    """Is (round, phase, status) ``prev`` -> ``cur`` at most one legal step? ``left``: round prev[0]'s phase now."""
    (r0, p0, s0), (r1, p1, s1) = prev, cur
    if prev == cur:
        return True
    ended = s0 == ACTIVE and ((left == FIN and p0 == AR) or (left == FAIL and p0 in (TC, TR, AC, AR)))
    if r1 == r0:
        if s0 == s1 == ACTIVE and p0 in (TC, TR, AC):
            return p1 == p0 + 1
        return ended and s1 == COMPLETED and r1 == num_rounds
    return ended and r1 == r0 + 1 and p1 == TC and s1 == ACTIVE


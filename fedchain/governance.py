"""DAO governance over any chain reader: proposals by parameter name, proposal status and history.

Everything here reads (``fedchain.chainview.ChainReader``, over ape or web3) or encodes calldata; sending the
transactions (delegate, propose, vote, queue, execute) is ``fedchain.ape.governance``. Proposals live only on
chain: ``list_proposals`` and ``proposal_status`` read the governor's ``ProposalCreated`` events and views.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, is_address, keccak, to_checksum_address

from fedchain.chainview import ChainReader
from fedchain.errors import FedchainError
from fedchain.protocol import ONE_TOKEN, VOTE_SUPPORT, ProposalState

SUPPORT = VOTE_SUPPORT
CONTRACT_ALIASES = {"token": "token", "fedtoken": "token", "staking": "staking", "tasks": "tasks",
                    "taskmanager": "tasks", "policy": "policy", "protocolpolicy": "policy", "governor": "governor",
                    "fedgovernor": "governor", "timelock": "timelock", "fedtimelock": "timelock",
                    "rejection_slasher": "rejection_slasher", "rejectionslasher": "rejection_slasher",
                    "retention": "retention", "taskretention": "retention", "vault": "vault",
                    "rewardvault": "vault", "committee": "committee", "aggregatorcommittee": "committee"}


class GovernanceError(FedchainError):
    """A governance action that cannot work, explained for the person at the terminal."""


@dataclass(frozen=True)
class Action:
    """One call the timelock will make if the proposal passes."""

    target: str
    value: int
    calldata: bytes
    summary: str


@dataclass(frozen=True)
class Parameter:
    """A protocol parameter changeable by proposal: where it lives and how to encode a new value."""

    name: str
    contract: str  # role in the deployment record: token, staking, tasks, policy, governor, timelock
    getter: str
    kind: str  # tokens | int | address
    group: tuple[str, ...]  # parameters set together by one setter, in argument order
    setter: str  # Solidity signature
    default: str  # human description of the deployment default


PARAMETERS: dict[str, Parameter] = {p.name: p for p in [
    Parameter("minTrainerStake", "policy", "minTrainerStake", "tokens", ("minTrainerStake", "minAggregatorStake"),
              "setStakeFloors(uint256,uint256)",
              "10 FED (local: 1 FED); above 0; the larger of it and a task's own minimum is each commit's bond"),
    Parameter("minAggregatorStake", "policy", "minAggregatorStake", "tokens",
              ("minTrainerStake", "minAggregatorStake"), "setStakeFloors(uint256,uint256)",
              "100 FED (local: 1 FED); above 0"),
    Parameter("minAggregatorQuorum", "policy", "minAggregatorQuorum", "int",
              ("minAggregatorQuorum", "maxAggregatorQuorum"), "setAggregatorQuorumBounds(uint32,uint32)",
              "2 (committees of at least 3: a task's committee is a strict majority above its quorum)"),
    Parameter("maxAggregatorQuorum", "policy", "maxAggregatorQuorum", "int",
              ("minAggregatorQuorum", "maxAggregatorQuorum"), "setAggregatorQuorumBounds(uint32,uint32)", "64"),
    Parameter("maxModelBytes", "policy", "maxModelBytes", "int", ("maxModelBytes",), "setMaxModelBytes(uint64)",
              "4 GiB (4294967296): the largest model file a new task may declare; cap 1 TiB"),
    Parameter("maxPauseDuration", "policy", "maxPauseDuration", "int", ("maxPauseDuration",),
              "setMaxPauseDuration(uint64)", "7 days (local: 1 hour); cap 30 days"),
    Parameter("trainerSlashBps", "tasks", "trainerSlashBps", "int", ("trainerSlashBps", "aggregatorSlashBps"),
              "setSlashFractions(uint16,uint16)", "10000 (a non-revealing trainer forfeits its whole bond)"),
    Parameter("aggregatorSlashBps", "tasks", "aggregatorSlashBps", "int", ("trainerSlashBps", "aggregatorSlashBps"),
              "setSlashFractions(uint16,uint16)", "5000 (half the bond of a silent or dissenting member)"),
    Parameter("settlementWindow", "tasks", "settlementWindow", "int", ("settlementWindow",),
              "setSettlementWindow(uint64)",
              "1 day: rejection slashes stay open and bonds reserved this long after a round finalizes; "
              "1 minute to 30 days"),
    Parameter("minPhaseDuration", "tasks", "minPhaseDuration", "int", ("minPhaseDuration", "maxPhaseDuration"),
              "setPhaseDurationBounds(uint64,uint64)", "1 s"),
    Parameter("maxPhaseDuration", "tasks", "maxPhaseDuration", "int", ("minPhaseDuration", "maxPhaseDuration"),
              "setPhaseDurationBounds(uint64,uint64)", "30 days; at most 365 days"),
    Parameter("rejectionSlashBps", "rejection_slasher", "slashBps", "int", ("rejectionSlashBps",),
              "setSlashBps(uint16)", "5000 (half the round's bond per rejected update)"),
    Parameter("unbondingDelay", "staking", "unbondingDelay", "int", ("unbondingDelay",),
              "setUnbondingDelay(uint64)", "7 days (local: 1 hour); 1 hour to 365 days"),
    Parameter("aggregatorRewardBps", "vault", "aggregatorRewardBps", "int",
              ("aggregatorRewardBps", "protocolFeeBps", "claimWindow"), "setTerms(uint16,uint16,uint64)",
              "300 (3% of each round's budget to the committee members whose reveal matched); at most 2000"),
    Parameter("protocolFeeBps", "vault", "protocolFeeBps", "int",
              ("aggregatorRewardBps", "protocolFeeBps", "claimWindow"), "setTerms(uint16,uint16,uint64)",
              "0 (the treasury's fee per round); at most 1000"),
    Parameter("claimWindow", "vault", "claimWindow", "int", ("aggregatorRewardBps", "protocolFeeBps", "claimWindow"),
              "setTerms(uint16,uint16,uint64)",
              "180 days, after which a round's unclaimed rewards can be swept to the sponsor; 1 hour to 5 years"),
    Parameter("treasury", "staking", "treasury", "address", ("treasury",), "setTreasury(address)",
              "the timelock"),
    Parameter("votingDelay", "governor", "votingDelay", "int", ("votingDelay",), "setVotingDelay(uint48)",
              "1 day (local: 1 s)"),
    Parameter("votingPeriod", "governor", "votingPeriod", "int", ("votingPeriod",), "setVotingPeriod(uint32)",
              "7 days (local: 300 s)"),
    Parameter("proposalThreshold", "governor", "proposalThreshold", "tokens", ("proposalThreshold",),
              "setProposalThreshold(uint256)", "1000 FED (local: 100 FED)"),
    Parameter("quorumPercent", "governor", "quorumNumerator", "int", ("quorumPercent",),
              "updateQuorumNumerator(uint256)", "4"),
    Parameter("timelockDelay", "timelock", "getMinDelay", "int", ("timelockDelay",), "updateDelay(uint256)",
              "2 days (local: 60 s)"),
]}


def _split_types(types: str) -> list[str]:
    """Top-level comma-separated ABI types ('uint256,(uint32,bool)' -> ['uint256', '(uint32,bool)'])."""
    out, depth, current = [], 0, ""
    for ch in types:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return [t for t in [*out, current] if t]


def encode_call(signature: str, args: list[Any]) -> bytes:
    """Calldata for ``signature`` (e.g. 'setSlashFractions(uint16,uint16)') with ``args``."""
    type_list = _split_types(signature[signature.index("(") + 1:-1])
    if len(type_list) != len(args):
        raise GovernanceError(f"{signature} takes {len(type_list)} arguments, got {len(args)}")
    return function_signature_to_4byte_selector(signature) + abi_encode(type_list, args)


def parse_value(param: Parameter, text: str) -> Any:
    """A parameter value from the command line: tokens as decimal FED, seconds/bps as integers."""
    try:
        if param.kind == "tokens":
            amount = Decimal(text)
            if amount < 0:
                raise InvalidOperation
            return int(amount * ONE_TOKEN)
        if param.kind == "address":
            if not is_address(text):
                raise InvalidOperation
            return to_checksum_address(text)
        value = int(text)
        if value < 0:
            raise InvalidOperation
        return value
    except (InvalidOperation, ValueError):
        unit = {"tokens": "an amount of FED", "address": "an address", "int": "a non-negative integer"}[param.kind]
        raise GovernanceError(f"{param.name}={text!r}: expected {unit}") from None


def contract_role(reader: ChainReader, name: str) -> str:
    """The deployment role of a contract name (token, staking, tasks, policy, governor, timelock, ...)."""
    role = CONTRACT_ALIASES.get(name.lower())
    if role is None or role not in reader.deployment.addresses:
        raise GovernanceError(f"unknown contract {name!r}; use one of token, staking, tasks, policy, governor, "
                              "timelock, or an address")
    return role


def contract_address(reader: ChainReader, name: str) -> str:
    return to_checksum_address(reader.deployment.addresses[contract_role(reader, name)])


def require_governor(reader: ChainReader) -> None:
    if "governor" not in reader.deployment.addresses:
        raise GovernanceError("this deployment has no DAO; deploy with `ape run deploy --governance`")


def current_value(reader: ChainReader, param: Parameter) -> Any:
    return reader.call(contract_role(reader, param.contract), param.getter)


def parameter_actions(reader: ChainReader, changes: dict[str, str]) -> list[Action]:
    """One Action per setter for ``{name: value}`` changes; paired values not given keep their current value."""
    unknown = sorted(set(changes) - set(PARAMETERS))
    if unknown:
        raise GovernanceError(f"unknown parameter {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    actions: list[Action] = []
    for group in dict.fromkeys(PARAMETERS[name].group for name in changes):
        params = [PARAMETERS[n] for n in group]
        values = [parse_value(p, changes[p.name]) if p.name in changes else current_value(reader, p) for p in params]
        summary = ", ".join(f"{p.name} {_show(p, current_value(reader, p))} -> {_show(p, v)}"
                            for p, v in zip(params, values, strict=True) if p.name in changes)
        actions.append(Action(contract_address(reader, params[0].contract), 0, encode_call(params[0].setter, values),
                              summary))
    return actions


def call_action(reader: ChainReader, target: str, signature: str, args: list[Any], value: int = 0) -> Action:
    """An arbitrary call: ``target`` is a contract name (token, staking, tasks, policy, governor, timelock) or an
    address."""
    address = target if is_address(target) else contract_address(reader, target)
    return Action(to_checksum_address(address), value, encode_call(signature, args), f"{target}.{signature} {args}")


def role_action(reader: ChainReader, contract: str, role: str, account: str, grant: bool) -> Action:
    """Grant or revoke ``role`` (e.g. AGGREGATOR_ROLE) on a fedchain contract."""
    role_id = bytes(reader.call(contract_role(reader, contract), role))
    verb = "grantRole" if grant else "revokeRole"
    calldata = encode_call(f"{verb}(bytes32,address)", [role_id, to_checksum_address(account)])
    return Action(contract_address(reader, contract), 0, calldata, f"{contract}.{verb}({role}, {account})")


def strategy_action(reader: ChainReader, strategy: str, allowed: bool) -> Action:
    data = encode_call("setStrategyAllowed(string,bool)", [strategy, allowed])
    return Action(contract_address(reader, "policy"), 0, data,
                  f"{'allow' if allowed else 'disallow'} strategy {strategy!r}")


def list_proposals(reader: ChainReader) -> list[dict]:
    """Every proposal of the governor, oldest first, from its ProposalCreated events."""
    require_governor(reader)
    out = []
    for event in reader.events("governor", "ProposalCreated", reader.deployment.block):
        args = event.args
        out.append({
            "id": int(args["proposalId"]), "proposer": args["proposer"], "targets": list(args["targets"]),
            "values": [int(v) for v in args["values"]], "calldatas": [bytes(c) for c in args["calldatas"]],
            "description": args["description"], "description_hash": keccak(text=args["description"]),
            "vote_start": int(args["voteStart"]), "vote_end": int(args["voteEnd"]),
        })
    return out


def find_proposal(reader: ChainReader, proposal_id: int) -> dict:
    for p in list_proposals(reader):
        if p["id"] == proposal_id:
            return p
    raise GovernanceError(f"no proposal {short_id(proposal_id)} on this deployment's governor")


def proposal_state(reader: ChainReader, proposal_id: int) -> ProposalState:
    return ProposalState(int(reader.call("governor", "state", proposal_id)))


def proposal_status(reader: ChainReader, proposal_id: int) -> dict:
    """State, votes, quorum progress and deadlines of one proposal."""
    p = find_proposal(reader, proposal_id)
    state = proposal_state(reader, proposal_id)
    against, for_, abstain = (int(v) for v in reader.call("governor", "proposalVotes", proposal_id))
    snapshot = int(reader.call("governor", "proposalSnapshot", proposal_id))
    deadline = int(reader.call("governor", "proposalDeadline", proposal_id))
    now = reader.block_timestamp()
    if snapshot < now:
        quorum = int(reader.call("governor", "quorum", snapshot))
    else:  # the snapshot is in the future: estimate from today's supply
        quorum = (int(reader.call("token", "totalSupply")) * int(reader.call("governor", "quorumNumerator"))
                  // int(reader.call("governor", "quorumDenominator")))
    eta = int(reader.call("governor", "proposalEta", proposal_id))
    return {**p, "state": state, "for": for_, "against": against, "abstain": abstain, "quorum": quorum,
            "quorum_votes": for_ + abstain, "snapshot": snapshot, "deadline": deadline, "eta": eta or None,
            "now": now, "title": p["description"].strip().splitlines()[0] if p["description"].strip() else ""}


def require_state(reader: ChainReader, proposal_id: int, wanted: ProposalState, action: str) -> None:
    """``GovernanceError`` saying why ``action`` cannot happen unless the proposal is in state ``wanted``."""
    require_governor(reader)
    find_proposal(reader, proposal_id)
    state = proposal_state(reader, proposal_id)
    if state == wanted:
        return
    now = reader.block_timestamp()
    hint = ""
    if state == ProposalState.PENDING:
        hint = f"; voting opens {human_time(int(reader.call('governor', 'proposalSnapshot', proposal_id)) + 1, now)}"
    elif state == ProposalState.ACTIVE:
        hint = f"; voting closes {human_time(int(reader.call('governor', 'proposalDeadline', proposal_id)), now)}"
    elif state == ProposalState.DEFEATED:
        hint = " (not enough votes for, or quorum not reached)"
    raise GovernanceError(f"cannot {action} proposal {short_id(proposal_id)}: it is {state.label}, "
                          f"{action} needs {wanted.label}{hint}")


def format_status(s: dict) -> str:
    """Readable multi-line status of `proposal_status`."""
    now = s["now"]
    progress = s["quorum_votes"] / s["quorum"] if s["quorum"] else 1.0
    lines = [
        f"proposal {s['id']}",
        f"  title     {s['title']}",
        f"  state     {s['state'].label}",
        f"  votes     for {_tok(s['for'])} · against {_tok(s['against'])} · abstain {_tok(s['abstain'])}",
        f"  quorum    {_tok(s['quorum_votes'])} of {_tok(s['quorum'])} ({min(progress, 9.99):.0%})",
        f"  voting    opens {human_time(s['snapshot'], now)}, closes {human_time(s['deadline'], now)}",
    ]
    if s["eta"]:
        lines.append(f"  ETA       {human_time(s['eta'], now)}")
    lines += ["  actions"] + [f"    {line[2:]}" for line in s["description"].splitlines() if line.startswith("- ")]
    return "\n".join(lines)


def human_time(timestamp: int, now: int | None = None) -> str:
    """'2026-01-01 12:00:00 UTC (in 5m 3s)' for a unix timestamp, relative to chain time `now`."""
    now = int(time.time()) if now is None else now
    absolute = datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = timestamp - now
    return f"{absolute} ({'in ' + _span(delta) if delta > 0 else _span(-delta) + ' ago' if delta else 'now'})"


def _span(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def short_id(proposal_id: int) -> str:
    text = str(proposal_id)
    return text if len(text) <= 14 else f"{text[:6]}…{text[-6:]}"


def _tok(amount: int) -> str:
    return f"{amount / ONE_TOKEN:,.2f}"


def _show(param: Parameter, value: Any) -> str:
    return f"{int(value) / ONE_TOKEN:g} FED" if param.kind == "tokens" else str(value)

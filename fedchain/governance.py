"""DAO governance library: build proposals by parameter name, vote, queue, execute, and read proposal status.

The `ape run governance` script (scripts/governance.py), the demo and the tests call these functions.
Proposals live only on chain: everything `list` and `status` show is read from the governor's
`ProposalCreated` events and views, never from local files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, is_address, keccak, to_checksum_address

from fedchain.chain import ONE_TOKEN, REVERT_HINTS, Fedchain, FedchainError, explain_revert

SUPPORT = {"against": 0, "for": 1, "abstain": 2}


class ProposalState(IntEnum):
    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7

    @property
    def label(self) -> str:
        return self.name.capitalize()


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
    contract: str  # attribute of Fedchain: token, staking, tasks, policy, governor, timelock
    getter: str
    kind: str  # tokens | int | address
    group: tuple[str, ...]  # parameters set together by one setter, in argument order
    setter: str  # Solidity signature
    default: str  # human description of the deployment default


PARAMETERS: dict[str, Parameter] = {p.name: p for p in [
    Parameter("minTrainerStake", "policy", "minTrainerStake", "tokens", ("minTrainerStake", "minAggregatorStake"),
              "setStakeFloors(uint256,uint256)", "0 (each task's own minimum applies)"),
    Parameter("minAggregatorStake", "policy", "minAggregatorStake", "tokens",
              ("minTrainerStake", "minAggregatorStake"), "setStakeFloors(uint256,uint256)", "0"),
    Parameter("minAggregatorQuorum", "policy", "minAggregatorQuorum", "int",
              ("minAggregatorQuorum", "maxAggregatorQuorum"), "setAggregatorQuorumBounds(uint32,uint32)", "1"),
    Parameter("maxAggregatorQuorum", "policy", "maxAggregatorQuorum", "int",
              ("minAggregatorQuorum", "maxAggregatorQuorum"), "setAggregatorQuorumBounds(uint32,uint32)", "64"),
    Parameter("maxPauseDuration", "policy", "maxPauseDuration", "int", ("maxPauseDuration",),
              "setMaxPauseDuration(uint64)", "7 days (local: 1 hour); cap 30 days"),
    Parameter("trainerSlashBps", "tasks", "trainerSlashBps", "int", ("trainerSlashBps", "aggregatorSlashBps"),
              "setSlashFractions(uint16,uint16)", "500 (5%)"),
    Parameter("aggregatorSlashBps", "tasks", "aggregatorSlashBps", "int", ("trainerSlashBps", "aggregatorSlashBps"),
              "setSlashFractions(uint16,uint16)", "2000 (20%)"),
    Parameter("minPhaseDuration", "tasks", "minPhaseDuration", "int", ("minPhaseDuration", "maxPhaseDuration"),
              "setPhaseDurationBounds(uint64,uint64)", "1 s"),
    Parameter("maxPhaseDuration", "tasks", "maxPhaseDuration", "int", ("minPhaseDuration", "maxPhaseDuration"),
              "setPhaseDurationBounds(uint64,uint64)", "30 days"),
    Parameter("rejectionSlashBps", "rejection_slasher", "slashBps", "int", ("rejectionSlashBps",),
              "setSlashBps(uint16)", "500 (5% per rejected update)"),
    Parameter("unbondingDelay", "staking", "unbondingDelay", "int", ("unbondingDelay",),
              "setUnbondingDelay(uint64)", "7 days (local: 1 hour)"),
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


def encode_call(signature: str, args: list[Any]) -> bytes:
    """Calldata for `signature` (e.g. 'setSlashFractions(uint16,uint16)') with `args`."""
    types = signature[signature.index("(") + 1:-1]
    type_list = [t for t in types.split(",") if t] if types else []
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


def current_value(fed: Fedchain, param: Parameter) -> Any:
    contract = _contract(fed, param.contract)
    return getattr(contract, param.getter)()


def parameter_actions(fed: Fedchain, changes: dict[str, str]) -> list[Action]:
    """One Action per setter for `{name: value}` changes; paired values not given keep their current value."""
    unknown = sorted(set(changes) - set(PARAMETERS))
    if unknown:
        raise GovernanceError(f"unknown parameter {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    actions: list[Action] = []
    for group in dict.fromkeys(PARAMETERS[name].group for name in changes):
        params = [PARAMETERS[n] for n in group]
        values = [parse_value(p, changes[p.name]) if p.name in changes else current_value(fed, p) for p in params]
        setter = params[0].setter
        contract = _contract(fed, params[0].contract)
        summary = ", ".join(f"{p.name} {_show(p, current_value(fed, p))} -> {_show(p, v)}"
                            for p, v in zip(params, values, strict=True) if p.name in changes)
        actions.append(Action(contract.address, 0, encode_call(setter, values), summary))
    return actions


def call_action(fed: Fedchain, target: str, signature: str, args: list[Any], value: int = 0) -> Action:
    """An arbitrary call: `target` is a contract name (token, staking, tasks, policy, governor, timelock) or address."""
    address = target if is_address(target) else _contract(fed, target).address
    return Action(to_checksum_address(address), value, encode_call(signature, args), f"{target}.{signature} {args}")


def role_action(fed: Fedchain, contract: str, role: str, account: str, grant: bool) -> Action:
    """Grant or revoke `role` (e.g. AGGREGATOR_ROLE) on a fedchain contract."""
    c = _contract(fed, contract)
    role_id = bytes(getattr(c, role)())
    verb = "grantRole" if grant else "revokeRole"
    calldata = encode_call(f"{verb}(bytes32,address)", [role_id, to_checksum_address(account)])
    return Action(c.address, 0, calldata, f"{contract}.{verb}({role}, {account})")


def strategy_action(fed: Fedchain, strategy: str, allowed: bool) -> Action:
    data = encode_call("setStrategyAllowed(string,bool)", [strategy, allowed])
    return Action(_policy(fed).address, 0, data, f"{'allow' if allowed else 'disallow'} strategy {strategy!r}")


def delegate(fed: Fedchain, account: Any, to: str | None = None) -> Any:
    """Delegate `account`'s voting power (to itself by default): votes count from the next snapshot on."""
    _governor(fed)
    return fed.token.invoke_transaction("delegate", to or account.address, sender=account)


def propose(fed: Fedchain, proposer: Any, actions: list[Action], description: str) -> int:
    """Submit a proposal; returns its id. Checks the proposer's votes first for a clear error."""
    governor = _governor(fed)
    if not actions:
        raise GovernanceError("nothing to propose: give --set NAME=VALUE, --call, or another action")
    threshold = int(governor.proposalThreshold())
    votes = int(governor.getVotes(proposer.address, int(fed.token.clock()) - 1)) if threshold else 0
    if votes < threshold:
        raise GovernanceError(f"not enough votes to propose: {proposer.address} has {votes / ONE_TOKEN:g} votes, "
                              f"the threshold is {threshold / ONE_TOKEN:g} (delegate tokens first: "
                              "`ape run governance delegate`)")
    full = description.strip() + "\n\n" + "\n".join(f"- {a.summary}" for a in actions)
    receipt = _transact(governor.propose, [a.target for a in actions], [a.value for a in actions],
                        [a.calldata for a in actions], full, sender=proposer)
    return int(next(iter(receipt.events.filter(governor.ProposalCreated))).proposalId)


def vote(fed: Fedchain, voter: Any, proposal_id: int, support: str, reason: str = "") -> Any:
    """Cast a vote: support is for / against / abstain."""
    governor = _governor(fed)
    if support not in SUPPORT:
        raise GovernanceError(f"vote must be one of {', '.join(SUPPORT)}, not {support!r}")
    _require_state(fed, proposal_id, ProposalState.ACTIVE, "vote")
    if governor.hasVoted(proposal_id, voter.address):
        raise GovernanceError(f"{voter.address} already voted on proposal {_short(proposal_id)}")
    if reason:
        return _transact(governor.castVoteWithReason, proposal_id, SUPPORT[support], reason, sender=voter)
    return _transact(governor.castVote, proposal_id, SUPPORT[support], sender=voter)


def queue(fed: Fedchain, sender: Any, proposal_id: int) -> Any:
    """Queue a succeeded proposal in the timelock."""
    _require_state(fed, proposal_id, ProposalState.SUCCEEDED, "queue")
    p = find_proposal(fed, proposal_id)
    return _transact(_governor(fed).queue, p["targets"], p["values"], p["calldatas"], p["description_hash"],
                     sender=sender)


def execute(fed: Fedchain, sender: Any, proposal_id: int) -> Any:
    """Execute a queued proposal once its ETA has passed."""
    governor = _governor(fed)
    _require_state(fed, proposal_id, ProposalState.QUEUED, "execute")
    eta = int(governor.proposalEta(proposal_id))
    now = _now(fed)
    if now < eta:
        raise GovernanceError(f"too early: the timelock delay ends at {human_time(eta, now)}")
    p = find_proposal(fed, proposal_id)
    return _transact(governor.execute, p["targets"], p["values"], p["calldatas"], p["description_hash"],
                     sender=sender)


def find_proposal(fed: Fedchain, proposal_id: int) -> dict:
    for p in list_proposals(fed):
        if p["id"] == proposal_id:
            return p
    raise GovernanceError(f"no proposal {_short(proposal_id)} on this deployment's governor")


def list_proposals(fed: Fedchain) -> list[dict]:
    """Every proposal of the governor, oldest first, from its ProposalCreated events."""
    from ape import chain

    governor = _governor(fed)
    out = []
    for log in governor.ProposalCreated.range(fed.deployment.block, int(chain.blocks.height) + 1):
        args = log.event_arguments
        out.append({
            "id": int(args["proposalId"]), "proposer": args["proposer"], "targets": list(args["targets"]),
            "values": [int(v) for v in args["values"]], "calldatas": [bytes(c) for c in args["calldatas"]],
            "description": args["description"], "description_hash": keccak(text=args["description"]),
            "vote_start": int(args["voteStart"]), "vote_end": int(args["voteEnd"]),
        })
    return out


def proposal_status(fed: Fedchain, proposal_id: int) -> dict:
    """State, votes, quorum progress and deadlines of one proposal."""
    governor = _governor(fed)
    p = find_proposal(fed, proposal_id)
    state = ProposalState(int(governor.state(proposal_id)))
    against, for_, abstain = (int(v) for v in governor.proposalVotes(proposal_id))
    snapshot, deadline = int(governor.proposalSnapshot(proposal_id)), int(governor.proposalDeadline(proposal_id))
    now = _now(fed)
    if snapshot < now:
        quorum = int(governor.quorum(snapshot))
    else:  # the snapshot is in the future: estimate from today's supply
        quorum = int(fed.token.totalSupply()) * int(governor.quorumNumerator()) // int(governor.quorumDenominator())
    eta = int(governor.proposalEta(proposal_id))
    return {**p, "state": state, "for": for_, "against": against, "abstain": abstain, "quorum": quorum,
            "quorum_votes": for_ + abstain, "snapshot": snapshot, "deadline": deadline, "eta": eta or None,
            "now": now, "title": p["description"].strip().splitlines()[0] if p["description"].strip() else ""}


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


def _require_state(fed: Fedchain, proposal_id: int, wanted: ProposalState, action: str) -> None:
    governor = _governor(fed)
    find_proposal(fed, proposal_id)
    state = ProposalState(int(governor.state(proposal_id)))
    if state == wanted:
        return
    now = _now(fed)
    hint = ""
    if state == ProposalState.PENDING:
        hint = f"; voting opens {human_time(int(governor.proposalSnapshot(proposal_id)) + 1, now)}"
    elif state == ProposalState.ACTIVE:
        hint = f"; voting closes {human_time(int(governor.proposalDeadline(proposal_id)), now)}"
    elif state == ProposalState.DEFEATED:
        hint = " (not enough votes for, or quorum not reached)"
    raise GovernanceError(f"cannot {action} proposal {_short(proposal_id)}: it is {state.label}, "
                          f"{action} needs {wanted.label}{hint}")


def _transact(method: Any, *args: Any, sender: Any) -> Any:
    from ape.exceptions import ContractLogicError

    try:
        return method(*args, sender=sender)
    except ContractLogicError as exc:
        raise GovernanceError(explain_revert(exc, GOVERNOR_HINTS)) from exc


GOVERNOR_HINTS = REVERT_HINTS | {
    "GovernorInsufficientProposerVotes": "not enough votes to propose",
    "GovernorUnexpectedProposalState": "the proposal is in the wrong state for this action",
    "GovernorAlreadyCastVote": "this account already voted",
    "GovernorNonexistentProposal": "no such proposal",
    "GovernorUnexpectedProposalStateNotQueued": "the proposal is not queued",
    "TimelockUnexpectedOperationState": "the timelock operation is not ready (too early, or already done)",
    "GovernorOnlyExecutor": "only the DAO (the timelock) may do this",
    "AccessControlUnauthorizedAccount": "only the DAO (the timelock) may do this",
}


def _contract(fed: Fedchain, name: str) -> Any:
    aliases = {"token": "token", "fedtoken": "token", "staking": "staking", "tasks": "tasks",
               "taskmanager": "tasks", "policy": "policy", "protocolpolicy": "policy", "governor": "governor",
               "fedgovernor": "governor", "timelock": "timelock", "fedtimelock": "timelock",
               "rejection_slasher": "rejection_slasher", "rejectionslasher": "rejection_slasher"}
    attr = aliases.get(name.lower())
    contract = getattr(fed, attr, None) if attr else None
    if contract is None:
        raise GovernanceError(f"unknown contract {name!r}; use one of token, staking, tasks, policy, governor, "
                              "timelock, or an address")
    return contract


def _governor(fed: Fedchain) -> Any:
    if fed.governor is None:
        raise GovernanceError("this deployment has no DAO; deploy with `ape run deploy --governance`")
    return fed.governor


def _policy(fed: Fedchain) -> Any:
    return _contract(fed, "policy")


def _now(fed: Fedchain) -> int:
    from ape import chain

    return int(chain.blocks.head.timestamp)


def _short(proposal_id: int) -> str:
    text = str(proposal_id)
    return text if len(text) <= 14 else f"{text[:6]}…{text[-6:]}"


def _tok(amount: int) -> str:
    return f"{amount / ONE_TOKEN:,.2f}"


def _show(param: Parameter, value: Any) -> str:
    return f"{int(value) / ONE_TOKEN:g} FED" if param.kind == "tokens" else str(value)

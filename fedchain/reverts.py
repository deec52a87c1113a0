"""One table of revert explanations, keyed by contract and custom error, for every interface that shows reverts.

``explain(error, args, contract)`` gives one line for a person: what went wrong and what to do, followed by the
error's name and arguments (amounts in FED). The CLI (over ape), the dashboard's wallet (over web3) and the demos
all use it. ``tests/core/test_reverts.py`` checks that every custom error in every compiled fedchain contract has
an explanation here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from fedchain.protocol import ONE_TOKEN, Phase, TrainerStatus

ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
PANIC = function_signature_to_4byte_selector("Panic(uint256)")

ANY = "*"  # explanations that hold for the error whichever contract raised it

HINTS: dict[str, dict[str, str]] = {
    ANY: {
        # fedchain's own errors (interfaces/*.sol, TaskManagerBase, RejectionSlasher, TaskRetention, ValidationKeys)
        "ZeroAddress": "an address must not be the zero address",
        "ZeroAmount": "the amount must be positive",
        "InsufficientStake": "not enough tokens staked; stake more with `fedchain client stake AMOUNT`",
        "NothingToWithdraw": "nothing is unbonding; request an unstake first",
        "StillUnbonding": "the unbonding delay has not passed yet; withdraw after the release time",
        "BondTooLarge": "the bond is larger than the stake reserved for it",
        "InvalidUnbondingDelay": "the unbonding delay must lie within the protocol's bounds",
        "UnknownTask": "no such task",
        "TaskNotActive": "the task is completed",
        "TaskNotCompleted": "the task still has rounds to run",
        "InvalidTaskParams": "the task parameters are invalid",
        "WrongPhase": "the round is not in the phase this action needs",
        "PhaseClosed": "the deadline of this phase has passed",
        "PhaseNotOver": "the phase is still running; it can be advanced after its deadline",
        "ZeroCommitment": "a commitment must not be zero",
        "StaleRound": "the task moved on to another round: train for the current round and commit again",
        "AlreadyCommitted": "this account already committed in this round",
        "NotCommitted": "this account did not commit in this round",
        "AlreadyRevealed": "this account already revealed in this round",
        "NotRevealed": "this account did not reveal in this round",
        "CommitmentMismatch": "the reveal does not match the commitment (different update, sample count or salt)",
        "TrainerLimitReached": "the round already has the maximum number of trainers",
        "AggregatorLimitReached": "the round already has the maximum number of aggregators",
        "InvalidCid": "the CID is empty or longer than 128 bytes",
        "ZeroSamples": "an update must report at least one training sample",
        "InvalidProof": "the Merkle proof does not match the round's scores",
        "AlreadyClaimed": "the reward of this round was already claimed",
        "NoRoundBudget": "this round allocated no rewards (every update was rejected)",
        "RoundOverpaid": "the round's reward budget is exhausted",
        "NotSponsor": "only the task's sponsor can do this",
        "NothingToReclaim": "the task has no unallocated budget left",
        "SlashingNotOpen": "this round cannot be slashed in its current phase",
        "NotSlashable": "this participant did nothing slashable in this round",
        "AlreadySlashed": "this participant was already slashed in this round",
        "InvalidSlashFraction": "a slash fraction must be at most 10000 basis points (100%)",
        "InvalidDurationBounds": "the phase duration bounds must satisfy 0 < min <= max",
        "NewRoundsPaused": "the guardian paused new rounds; try again after the pause ends",
        "RoundNotFinalized": "the round is not finalized, so its rejections are not settled yet",
        "NotRejected": "the trainer's update was not rejected (its score is not 0)",
        "InvalidRetention": "model rounds must be 1..100000 or all; update rounds 0..100000 or all",
        "NoTaskRetention": "the task has no retention policy of its own (it follows the default)",
        "ZeroKey": "a validation key must not be zero (zero means \"not published\")",
        "TrainersStillOpen": "the round's trainers can still commit or reveal: its validation key is published once "
                             "the round reaches its aggregator phases (advance it after the reveal deadline)",
        "KeyAlreadyRevealed": "this round's validation key is already published (the first key stands)",
        "InvalidQuorumBounds": "the aggregator quorum bounds must satisfy 1 <= min <= max",
        "InvalidPauseDuration": "the pause duration must be positive and at most the allowed maximum",
        "PauseCapExceeded": "the maximum pause duration may not exceed the protocol's cap",
        "PauseCooldown": "the guardian must wait for the cooldown after the last pause",
        "EmptyStrategy": "a strategy id must not be empty",
        "AlreadyConnected": "the contracts are already connected (this is done once, at deployment)",
        "InvalidSettlementWindow": "the settlement window must lie within its bounds (1 minute to 30 days)",
        "NoBond": "no bond of this account is held for this round (already released, claimed or slashed, or it "
                  "did not reveal)",
        "NotSettled": "the round is not settled yet; the bond is released after its settlement time",
        "NotVault": "only the RewardVault may do this",
        "SettlementClosed": "the round is settled: it can no longer be slashed",
        "TooManySamples": "the update reports more samples than the task allows per trainer",
        "InvalidStakeFloors": "stake floors must be above zero",
        "InvalidMaxModelBytes": "the largest model file must be above zero and at most the protocol's cap (1 TiB)",
        "DrawTooEarly": "the committee is drawn from the hash of the block that opened the phase: wait one block",
        "NotInCommittee": "this aggregator was not drawn for this round's committee",
        "TooManyAggregators": "the committee already has the maximum number of approved aggregators",
        "AlreadySwept": "the round's unclaimed rewards were already returned to the sponsor",
        "ClaimWindowClosed": "the claim window of this round has closed; its unclaimed rewards go to the sponsor",
        "ClaimWindowOpen": "the round's claim window is still open; sweep it after it closes",
        "InvalidTerms": "the reward terms are out of bounds (aggregator share <= 20%, fee <= 10%, window 1 hour "
                        "to 5 years)",
        "LengthMismatch": "the rounds, scores, weights and proofs must have the same length",
        "NotInAcceptedQuorum": "this aggregator's reveal did not match the accepted result",
        "NotTaskManager": "only the TaskManager may do this",
        "NothingToClaim": "nothing to claim: the update scored 0 (it was rejected)",
        # OpenZeppelin: access control, ERC20, permit and votes, utilities
        "AccessControlUnauthorizedAccount": "this account lacks the role this action needs",
        "AccessControlBadConfirmation": "renouncing a role must name the caller's own address",
        "ERC20InsufficientBalance": "the token balance is too low",
        "ERC20InsufficientAllowance": "the spender may not spend that much FED yet: approve first",
        "ERC20InvalidApprover": "the approver must not be the zero address",
        "ERC20InvalidReceiver": "tokens cannot be sent to the zero address",
        "ERC20InvalidSender": "tokens cannot be sent from the zero address",
        "ERC20InvalidSpender": "the spender must not be the zero address",
        "ERC20ExceededSafeSupply": "the amount exceeds the token's supply limit for vote checkpoints",
        "ERC2612ExpiredSignature": "the permit signature has expired",
        "ERC2612InvalidSigner": "the permit was not signed by the token owner",
        "ERC5805FutureLookup": "voting power can only be read for past timepoints",
        "ERC6372InconsistentClock": "the token's clock is inconsistent",
        "VotesExpiredSignature": "the delegation signature has expired",
        "InvalidAccountNonce": "the signature's nonce was already used",
        "ECDSAInvalidSignature": "the signature is invalid",
        "ECDSAInvalidSignatureLength": "the signature has the wrong length",
        "ECDSAInvalidSignatureS": "the signature is malleable (its s value is too high)",
        "CheckpointUnorderedInsertion": "a vote checkpoint would be out of order",
        "SafeCastOverflowedUintDowncast": "a value is too large for its on-chain field",
        "SafeERC20FailedOperation": "a token transfer failed",
        "ReentrancyGuardReentrantCall": "a reentrant call was refused",
        "InvalidShortString": "a short string is invalid",
        "StringTooLong": "a string is too long",
        "FailedCall": "a call made by the contract failed",
        # OpenZeppelin governor and timelock
        "GovernorInsufficientProposerVotes": "not enough votes to propose (delegate tokens first)",
        "GovernorUnexpectedProposalState": "the proposal is in the wrong state for this action",
        "GovernorAlreadyCastVote": "this account already voted on this proposal",
        "GovernorNonexistentProposal": "no such proposal",
        "GovernorAlreadyQueuedProposal": "the proposal is already queued",
        "GovernorNotQueuedProposal": "the proposal is not queued",
        "GovernorOnlyExecutor": "only the DAO (the timelock) may do this",
        "GovernorDisabledDeposit": "the governor does not accept ether",
        "GovernorInvalidProposalLength": "targets, values and calldatas must have the same non-zero length",
        "GovernorInvalidQuorumFraction": "the quorum numerator must not exceed the denominator",
        "GovernorInvalidSignature": "the vote signature is invalid",
        "GovernorInvalidVoteParams": "this governor takes no vote parameters",
        "GovernorInvalidVoteType": "a vote must be for, against or abstain",
        "GovernorInvalidVotingPeriod": "the voting period must be positive",
        "GovernorQueueNotImplemented": "this governor has no queue",
        "GovernorRestrictedProposer": "the description restricts who may propose it",
        "GovernorUnableToCancel": "only the proposer may cancel, and only while the proposal is pending",
        "TimelockUnexpectedOperationState": "the timelock operation is not ready (too early, or already done)",
        "TimelockInsufficientDelay": "the delay is shorter than the timelock's minimum",
        "TimelockInvalidOperationLength": "targets, values and payloads must have the same length",
        "TimelockUnauthorizedCaller": "only the timelock itself may do this",
        "TimelockUnexecutedPredecessor": "a predecessor operation has not been executed yet",
    },
    "RejectionSlasher": {
        "NotRevealed": "the trainer has no revealed update in this round",
    },
    "RewardVault": {
        "RoundNotFinalized": "the round is not finalized: nothing of it can be claimed, swept or collected yet",
        "NotRevealed": "this account has no revealed update (or committee reveal) in this round to be paid for",
    },
    "AggregatorCommittee": {
        "NotCommitted": "this aggregator did not commit in this round",
    },
    "FedGovernor": {
        "AccessControlUnauthorizedAccount": "only the DAO (the timelock) may do this",
    },
    "FedTimelock": {
        "AccessControlUnauthorizedAccount": "only the DAO's governor may schedule, cancel or execute",
    },
}

_ENUM_ARGS = {"expected": Phase, "actual": Phase, "phase": Phase}
_STATUS_ARGS = {("RejectionSlasher", "status"): TrainerStatus, ("RewardVault", "status"): TrainerStatus}
_AMOUNT_ARGS = {"available", "requested", "required", "reward", "balance", "needed", "allowance", "reserved",
                "trainerFloor", "aggregatorFloor"}


def hint(error: str, contract: str | None = None) -> str | None:
    """The explanation of ``error`` as ``contract`` raises it (falls back to the contract-independent one)."""
    specific = HINTS.get(contract or "", {})
    return specific.get(error) or HINTS[ANY].get(error)


def format_arg(name: str, value: Any, contract: str | None = None) -> str:
    """An error argument for people: phases and statuses by name, token amounts in FED, labels as text."""
    enum = _STATUS_ARGS.get((contract or "", name)) or _ENUM_ARGS.get(name)
    if enum is not None and isinstance(value, int):
        member = enum.parse(value)
        return member.label if member is not None else str(value)
    if isinstance(value, bytes | bytearray):
        text = bytes(value).rstrip(b"\0")
        return text.decode() if text.isascii() and text.replace(b"_", b"").isalnum() else "0x" + bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool) and (name in _AMOUNT_ARGS or value > 10**15):
        return f"{value / ONE_TOKEN:g} FED"
    return str(value)


def explain(error: str, args: Mapping[str, Any] | None = None, contract: str | None = None) -> str:
    """'what went wrong and what to do (ErrorName: arg=value, ...)'."""
    details = ", ".join(f"{k}={format_arg(k, v, contract)}" for k, v in sorted((args or {}).items()))
    what = f"{error}: {details}" if details else error
    text = hint(error, contract)
    return f"{text} ({what})" if text else f"the transaction reverted ({what})"


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of an ABI parameter (tuples spelled out)."""
    if param["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param.get("components", []))
        return f"({inner}){param['type'][5:]}"
    return param["type"]


class RevertDecoder:
    """Custom errors of a set of contracts by selector: revert data -> (contract, error, arguments) and its line.

    ``abis`` maps a contract name to its ABI (e.g. ``fedchain.web3chain.load_abis()``); an error several contracts
    define alike is attributed to the first of ``prefer`` that defines it.
    """

    def __init__(self, abis: Mapping[str, list[dict[str, Any]]], prefer: tuple[str, ...] = ()) -> None:
        self.errors: dict[bytes, tuple[str, str, list[dict[str, Any]]]] = {}
        order = [name for name in prefer if name in abis] + [name for name in abis if name not in prefer]
        for contract in order:
            for item in abis[contract]:
                if item.get("type") == "error":
                    types = ",".join(abi_type(i) for i in item.get("inputs", []))
                    selector = function_signature_to_4byte_selector(f"{item['name']}({types})")
                    self.errors.setdefault(selector, (contract, item["name"], item.get("inputs", [])))

    def decode(self, data: bytes) -> tuple[str | None, str, dict[str, Any]]:
        """(contract, error name, arguments) of revert data; (None, '', {}) when it is empty or unknown."""
        selector, body = bytes(data[:4]), bytes(data[4:])
        try:
            if selector == ERROR_STRING:
                return None, "Error", {"message": abi_decode(["string"], body)[0]}
            if selector == PANIC:
                return None, "Panic", {"code": abi_decode(["uint256"], body)[0]}
            known = self.errors.get(selector)
            if known is None:
                return None, "", {}
            contract, name, inputs = known
            values = abi_decode([abi_type(i) for i in inputs], body)
            return contract, name, {(i.get("name") or f"arg{n}"): v
                                    for n, (i, v) in enumerate(zip(inputs, values, strict=True))}
        except Exception:  # noqa: BLE001 - malformed revert data is reported as unknown, never raised
            return None, "", {}

    def explain(self, data: bytes, contract: str | None = None) -> str:
        """One line for revert data (``contract``: who reverted, when the caller knows)."""
        found, name, args = self.decode(data)
        if name == "Error":
            return f"the transaction reverted: {args['message']}"
        if name == "Panic":
            return f"the transaction reverted with panic code {args['code']:#x}"
        if not name:
            return "the transaction reverted" + (f" (error data 0x{bytes(data).hex()[:72]})" if data else "")
        return explain(name, args, contract or found)

    def signature(self, data: bytes) -> str:
        """'Name(arg=value, ...)' of revert data, or 'reverted (0x<selector>)' when unknown."""
        contract, name, args = self.decode(data)
        if not name:
            return "reverted (0x" + bytes(data[:4]).hex() + ")"
        return f"{name}({', '.join(f'{k}={format_arg(k, v, contract)}' for k, v in args.items())})"

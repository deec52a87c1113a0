"""Event handlers that turn decoded logs into the read model (tasks, rounds, contributions, accounts, proposals).

Each handler runs inside the indexer's transaction for a block range, in chain order; the range's cursor moves in
the same transaction, so every event is applied exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Account, Contribution, Proposal, Round, Setting, Task, Vote
from fedchain.chainview import ChainEvent as DecodedLog
from fedchain.protocol import ONE_TOKEN, Phase, ProposalState
from fedchain.web3chain import Web3Chain, jsonable

DEADLINE_COLUMNS = {Phase.TRAINER_COMMIT: "commit_deadline", Phase.TRAINER_REVEAL: "reveal_deadline",
                    Phase.AGGREGATOR_COMMIT: "aggregator_commit_deadline",
                    Phase.AGGREGATOR_REVEAL: "aggregator_reveal_deadline"}
SUPPORT = {0: "against", 1: "for", 2: "abstain"}
ZERO_ADDRESS = "0x" + "0" * 40


def tokens(wei: int) -> float:
    return wei / ONE_TOKEN


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def label(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode("utf-8", "replace")


class Projector:
    """Applies one decoded log at a time; needs the chain for a few immutable facts (task params, stakes)."""

    def __init__(self, session: Session, source: Web3Chain) -> None:
        self.session = session
        self.source = source
        self._timestamps: dict[int, int] = {}
        self.finalized_rounds: list[tuple[int, int]] = []
        self.failed_rounds: list[tuple[int, int]] = []
        self.handlers: dict[tuple[str, str], Callable[[DecodedLog], None]] = {
            ("tasks", "TaskCreated"): self.task_created,
            ("tasks", "RoundStarted"): self.round_started,
            ("tasks", "PhaseAdvanced"): self.phase_advanced,
            ("tasks", "UpdateCommitted"): self.update_committed,
            ("tasks", "UpdateRevealed"): self.update_revealed,
            ("committee", "AggregateCommitted"): self.aggregate_committed,
            ("committee", "AggregateRevealed"): self.aggregate_revealed,
            ("tasks", "RoundFinalized"): self.round_finalized,
            ("tasks", "RoundFailed"): self.round_failed,
            ("tasks", "TaskCompleted"): self.task_completed,
            ("tasks", "RewardClaimed"): self.reward_claimed,
            ("tasks", "TrainerSlashed"): self.trainer_slashed,
            ("tasks", "BondReleased"): self.bond_released,
            ("vault", "BudgetReclaimed"): self.budget_reclaimed,
            ("vault", "AggregatorRewardClaimed"): self.aggregator_reward_claimed,
            ("vault", "RoundSwept"): self.round_swept,
            ("vault", "FeeCollected"): self.fee_collected,
            ("token", "Transfer"): self.transfer,
            ("staking", "Staked"): self.stake_changed,
            ("staking", "UnstakeRequested"): self.stake_changed,
            ("staking", "Withdrawn"): self.stake_changed,
            ("staking", "Slashed"): self.stake_slashed,
            ("staking", "BondReserved"): self.reserved_changed,
            ("staking", "BondReleased"): self.reserved_changed,
            ("staking", "TreasuryChanged"): self.treasury_changed,
            ("governor", "ProposalCreated"): self.proposal_created,
            ("governor", "VoteCast"): self.vote_cast,
            ("governor", "VoteCastWithParams"): self.vote_cast,
            ("governor", "ProposalQueued"): self.proposal_queued,
            ("governor", "ProposalExecuted"): self.proposal_state_event,
            ("governor", "ProposalCanceled"): self.proposal_state_event,
        }

    def apply(self, log: DecodedLog) -> None:
        handler = self.handlers.get((log.contract, log.name))
        if handler is not None:
            handler(log)

    # --- helpers ---------------------------------------------------------------------------------
    def timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            self._timestamps[block] = self.source.block_timestamp(block)
        return self._timestamps[block]

    def _round(self, task_id: int, round_: int) -> Round | None:
        return self.session.get(Round, (task_id, round_))

    def _contribution(self, task_id: int, round_: int, trainer: str) -> Contribution | None:
        return self.session.get(Contribution, (task_id, round_, trainer.lower()))

    def _account(self, address: str) -> Account:
        address = address.lower()
        account = self.session.get(Account, address)
        if account is None:
            account = Account(address=address, balance_wei="0", staked_wei="0", unbonding_wei="0", slashed_wei="0")
            self.session.add(account)
        return account

    def _set(self, key: str, value: str) -> None:
        row = self.session.get(Setting, key)
        if row is None:
            self.session.add(Setting(key=key, value=value))
        else:
            row.value = value

    # --- TaskManager -----------------------------------------------------------------------------
    def task_created(self, log: DecodedLog) -> None:
        a = log.args
        info = self.source.call("tasks", "getTask", a["taskId"], block=log.block_number)
        params = info["params"]
        eps_milli = int(params.get("dpEpsilonMilli", 0))
        self.session.add(Task(
            task_id=a["taskId"], sponsor=a["sponsor"].lower(), status="active", architecture=a["architecture"],
            strategy=params.get("strategy", ""), initial_model_cid=a["initialModelCid"],
            global_model_cid=a["initialModelCid"], validation_cid=params.get("validationCid", ""),
            reward_budget_wei=str(a["rewardBudget"]), remaining_budget_wei=str(a["rewardBudget"]),
            reclaimed_wei="0", num_rounds=a["numRounds"], current_round=1,
            min_trainers=int(params.get("minTrainers", 0)), max_trainers=int(params.get("maxTrainers", 0)),
            dp_epsilon=eps_milli / 1000 if eps_milli else None,
            created_block=log.block_number, created_at=self.timestamp(log.block_number),
        ))
        self.session.flush()

    def round_started(self, log: DecodedLog) -> None:
        a = log.args
        task = self.session.get(Task, a["taskId"])
        if task is not None:
            task.current_round = a["round"]
        self.session.add(Round(
            task_id=a["taskId"], round=a["round"], phase=Phase.TRAINER_COMMIT.key, commit_deadline=a["commitDeadline"],
            started_block=log.block_number, started_at=self.timestamp(log.block_number),
            parent_model_cid=task.global_model_cid if task else "", round_budget_wei="0", paid_wei="0",
            details_status="none", committed=0, revealed=0, aggregators_committed=0, aggregators_revealed=0,
        ))
        self.session.flush()

    def phase_advanced(self, log: DecodedLog) -> None:
        a = log.args
        rnd = self._round(a["taskId"], a["round"])
        if rnd is None:
            return
        phase = Phase.parse(a["phase"])
        rnd.phase = phase.key if phase is not None else str(a["phase"])
        if phase in DEADLINE_COLUMNS:
            setattr(rnd, DEADLINE_COLUMNS[phase], a["deadline"])
        if phase is not None and phase.is_final:
            rnd.ended_block = log.block_number

    def update_committed(self, log: DecodedLog) -> None:
        a = log.args
        self.session.add(Contribution(
            task_id=a["taskId"], round=a["round"], trainer=a["trainer"].lower(), status="committed",
            committed_block=log.block_number, reward_wei="0", reward_tokens=0.0, claimed=False, slashed_wei="0",
            bond_wei=str(a.get("bond", 0)),
        ))
        rnd = self._round(a["taskId"], a["round"])
        if rnd is not None:
            rnd.committed += 1
        self.session.flush()

    def update_revealed(self, log: DecodedLog) -> None:
        a = log.args
        contribution = self._contribution(a["taskId"], a["round"], a["trainer"])
        if contribution is None:
            return
        contribution.status = "revealed"
        contribution.update_cid = a["cid"]
        contribution.update_digest = hex32(a["updateDigest"])
        contribution.samples = int(a["numSamples"])
        rnd = self._round(a["taskId"], a["round"])
        if rnd is not None:
            rnd.revealed += 1

    def aggregate_committed(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.aggregators_committed += 1

    def aggregate_revealed(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.aggregators_revealed += 1

    def round_finalized(self, log: DecodedLog) -> None:
        a = log.args
        rnd = self._round(a["taskId"], a["round"])
        if rnd is None:
            return
        info = self.source.call("tasks", "getRound", a["taskId"], a["round"], block=log.block_number)
        rnd.phase = Phase.FINALIZED.key
        rnd.result_cid = a["resultCid"]
        rnd.result_digest = hex32(a["resultDigest"])
        rnd.scores_root = hex32(a["scoresRoot"])
        rnd.total_weight = str(a["totalWeight"])
        rnd.round_budget_wei = str(a["roundBudget"])
        if "vault" in self.source.contracts:
            rnd.trainer_budget_wei = str(self.source.call("vault", "splitOf", a["taskId"], a["round"],
                                                          block=log.block_number)[0])
        rnd.accepted, rnd.rejected = int(info["accepted"]), int(info["rejected"])
        rnd.accuracy, rnd.loss = int(info["accuracyPpm"]) / 1e6, int(info["lossMicro"]) / 1e6
        rnd.details_status = "pending"
        task = self.session.get(Task, a["taskId"])
        if task is not None:
            task.global_model_cid = a["resultCid"]
            task.remaining_budget_wei = str(int(task.remaining_budget_wei) - int(a["roundBudget"]))
        self.finalized_rounds.append((a["taskId"], a["round"]))

    def round_failed(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.phase = Phase.FAILED.key
            rnd.failure_reason = label(log.args["reason"])
            rnd.ended_block = log.block_number
            rnd.details_status = "pending"  # the epsilon of its revealed updates
            self.failed_rounds.append((rnd.task_id, rnd.round))

    def task_completed(self, log: DecodedLog) -> None:
        task = self.session.get(Task, log.args["taskId"])
        if task is not None:
            task.status = "completed"

    def reward_claimed(self, log: DecodedLog) -> None:
        a = log.args
        contribution = self._contribution(a["taskId"], a["round"], a["trainer"])
        if contribution is not None:
            contribution.status = "claimed"
            contribution.claimed = True
            contribution.reward_wei = str(a["amount"])
            contribution.reward_tokens = tokens(a["amount"])
        rnd = self._round(a["taskId"], a["round"])
        if rnd is not None:
            rnd.paid_wei = str(int(rnd.paid_wei) + int(a["amount"]))

    def trainer_slashed(self, log: DecodedLog) -> None:
        a = log.args
        contribution = self._contribution(a["taskId"], a["round"], a["trainer"])
        if contribution is not None:
            contribution.status = "slashed"
            contribution.slashed_wei = str(a["amount"])
            contribution.bond_wei = "0"

    def bond_released(self, log: DecodedLog) -> None:
        a = log.args
        contribution = self._contribution(a["taskId"], a["round"], a["trainer"])
        if contribution is not None:
            contribution.bond_wei = "0"

    def aggregator_reward_claimed(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.aggregator_paid_wei = str(int(rnd.aggregator_paid_wei) + int(log.args["amount"]))

    def round_swept(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.swept_wei = str(int(rnd.swept_wei) + int(log.args["amount"]))

    def fee_collected(self, log: DecodedLog) -> None:
        rnd = self._round(log.args["taskId"], log.args["round"])
        if rnd is not None:
            rnd.fee_wei = str(int(rnd.fee_wei) + int(log.args["amount"]))

    def budget_reclaimed(self, log: DecodedLog) -> None:
        task = self.session.get(Task, log.args["taskId"])
        if task is not None:
            task.reclaimed_wei = str(int(task.reclaimed_wei) + int(log.args["amount"]))
            task.remaining_budget_wei = str(max(0, int(task.remaining_budget_wei) - int(log.args["amount"])))

    # --- FedToken and Staking --------------------------------------------------------------------
    def transfer(self, log: DecodedLog) -> None:
        sender, receiver, value = log.args["from"].lower(), log.args["to"].lower(), int(log.args["value"])
        if sender != ZERO_ADDRESS:
            account = self._account(sender)
            account.balance_wei = str(int(account.balance_wei) - value)
        else:
            supply = self.session.get(Setting, "total_supply_wei")
            self._set("total_supply_wei", str((int(supply.value) if supply else 0) + value))
        if receiver != ZERO_ADDRESS:
            account = self._account(receiver)
            account.balance_wei = str(int(account.balance_wei) + value)
        else:
            supply = self.session.get(Setting, "total_supply_wei")
            self._set("total_supply_wei", str((int(supply.value) if supply else 0) - value))
        self.session.flush()

    def stake_changed(self, log: DecodedLog) -> None:
        account = self._account(log.args["account"])
        account.staked_wei = str(self.source.call("staking", "stakeOf", log.args["account"], block=log.block_number))
        unbonding = self.source.call("staking", "unbondingOf", log.args["account"], block=log.block_number)
        account.unbonding_wei = str(unbonding[0] if isinstance(unbonding, tuple | list) else unbonding)
        self.session.flush()

    def stake_slashed(self, log: DecodedLog) -> None:
        self.stake_changed(log)
        self.reserved_changed(log)
        account = self._account(log.args["account"])
        account.slashed_wei = str(int(account.slashed_wei) + int(log.args["amount"]))

    def reserved_changed(self, log: DecodedLog) -> None:
        account = self._account(log.args["account"])
        account.reserved_wei = str(self.source.call("staking", "reservedOf", log.args["account"],
                                                    block=log.block_number))

    def treasury_changed(self, log: DecodedLog) -> None:
        self._set("treasury", log.args["newTreasury"].lower())

    # --- Governor --------------------------------------------------------------------------------
    def proposal_created(self, log: DecodedLog) -> None:
        a = log.args
        self.session.add(Proposal(
            proposal_id=str(a["proposalId"]), proposer=a["proposer"].lower(), description=a["description"],
            targets=json.dumps([t.lower() for t in a["targets"]]), vote_start=int(a["voteStart"]),
            vote_end=int(a["voteEnd"]), state="pending", created_block=log.block_number,
            for_votes_wei="0", against_votes_wei="0", abstain_votes_wei="0",
        ))
        self.session.flush()

    def vote_cast(self, log: DecodedLog) -> None:
        a = log.args
        proposal_id = str(a["proposalId"])
        support = SUPPORT.get(int(a["support"]), str(a["support"]))
        self.session.add(Vote(proposal_id=proposal_id, voter=a["voter"].lower(), support=support,
                              weight_wei=str(a["weight"]), reason=a.get("reason", ""), block_number=log.block_number))
        proposal = self.session.get(Proposal, proposal_id)
        if proposal is not None and support in ("for", "against", "abstain"):
            column = f"{support}_votes_wei"
            setattr(proposal, column, str(int(getattr(proposal, column)) + int(a["weight"])))
        self.session.flush()

    def proposal_queued(self, log: DecodedLog) -> None:
        proposal = self.session.get(Proposal, str(log.args["proposalId"]))
        if proposal is not None:
            proposal.eta = int(log.args["etaSeconds"])
            proposal.state = ProposalState.QUEUED.key

    def proposal_state_event(self, log: DecodedLog) -> None:
        proposal = self.session.get(Proposal, str(log.args["proposalId"]))
        if proposal is not None:
            proposal.state = (ProposalState.EXECUTED if log.name == "ProposalExecuted" else ProposalState.CANCELED).key


def refresh_proposal_states(session: Session, source: Web3Chain, block: int) -> None:
    """Time moves proposals between states without events: read `state(id)` for the ones not final yet."""
    if "governor" not in source.contracts:
        return
    final = [s.key for s in ProposalState if s.is_final]
    for proposal in session.scalars(select(Proposal).where(Proposal.state.notin_(final))):
        raw = int(source.call("governor", "state", int(proposal.proposal_id), block=block))
        state = ProposalState.parse(raw)
        proposal.state = state.key if state is not None else str(raw)


def event_args_json(args: dict[str, Any]) -> str:
    return json.dumps(jsonable(args), sort_keys=True, separators=(",", ":"))

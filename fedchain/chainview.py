"""The one chain-reading interface: typed views of tasks, rounds and entries, and the reads everybody needs.

``ChainReader`` is implemented over ape (``fedchain.ape.chain.Fedchain``, for the roles and the face) and over
plain web3 (``fedchain.web3chain.Web3Chain``, for the backend and the dashboard). Both return the same views, built
here from the contracts' structs (an ape struct, a web3 tuple or a dict of Solidity names, read by position).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fedchain.deployment import Deployment
from fedchain.errors import UnknownTask
from fedchain.protocol import AggregatorStatus, Phase, TaskStatus, TrainerStatus
from fedchain.taskspec import TaskSpec


def _fields(raw: Any, names: tuple[str, ...]) -> list[Any]:
    if isinstance(raw, Mapping):
        return [raw[name] for name in names]
    return [raw[i] for i in range(len(names))]


@dataclass(frozen=True)
class TaskView:
    """``getTask(taskId)``: Solidity ``TaskInfo``."""

    task_id: int
    sponsor: str
    status: TaskStatus
    current_round: int
    global_model_cid: str
    global_model_digest: bytes
    remaining_budget: int
    spec: TaskSpec

    NAMES = ("sponsor", "status", "currentRound", "globalModelCid", "globalModelDigest", "remainingBudget", "params")

    @classmethod
    def from_chain(cls, task_id: int, raw: Any) -> TaskView:
        sponsor, status, current, cid, digest, remaining, params = _fields(raw, cls.NAMES)
        return cls(int(task_id), str(sponsor), TaskStatus(int(status)), int(current), str(cid), bytes(digest),
                   int(remaining), TaskSpec.from_chain(params))

    @property
    def active(self) -> bool:
        return self.status == TaskStatus.ACTIVE


@dataclass(frozen=True)
class RoundView:
    """``getRound(taskId, round)``: Solidity ``RoundInfo`` (the result fields are the accepted result's)."""

    phase: Phase
    phase_deadline: int  # as stored at phase entry; a pause extends it (``ChainReader.phase_view`` has the live one)
    paused_at_entry: int  # ProtocolPolicy.pausedTotal() when the phase began
    committed: int
    revealed: int
    draw_block: int  # the block whose hash seeds the committee draw (0 before the aggregator commit phase)
    finalized_at: int
    settled_at: int  # bonds are released and rejection slashes closed from this time on
    accepted_key: bytes
    result_cid: str
    result_digest: bytes
    scores_root: bytes
    total_weight: int
    accepted: int
    rejected: int
    accuracy_ppm: int
    loss_micro: int
    round_budget: int
    failure_reason: bytes
    failed_phase: Phase

    NAMES = ("phase", "phaseDeadline", "pausedAtEntry", "committed", "revealed", "drawBlock", "finalizedAt",
             "settledAt", "acceptedKey", "resultCid", "resultDigest", "scoresRoot", "totalWeight", "accepted",
             "rejected", "accuracyPpm", "lossMicro", "roundBudget", "failureReason", "failedPhase")

    @classmethod
    def from_chain(cls, raw: Any) -> RoundView:
        v = _fields(raw, cls.NAMES)
        return cls(Phase(int(v[0])), *(int(x) for x in v[1:8]), bytes(v[8]), str(v[9]), bytes(v[10]), bytes(v[11]),
                   *(int(x) for x in v[12:18]), bytes(v[18]), Phase(int(v[19])))

    @property
    def aggregation_reached(self) -> bool:
        """The round reached the aggregator commit phase, even if it failed later: aggregators may have published
        a result in it (what central DP counts as a released round)."""
        phase = self.failed_phase if self.phase == Phase.FAILED else self.phase
        return phase >= Phase.AGGREGATOR_COMMIT

    @property
    def failure_label(self) -> str:
        return self.failure_reason.rstrip(b"\0").decode("utf-8", "replace")


@dataclass(frozen=True)
class RevealView:
    """An ``UpdateRevealed`` event: the update a trainer revealed (the chain keeps its CID and digest only in
    the event; storage holds one word per trainer and round)."""

    trainer: str
    cid: str
    update_digest: bytes
    num_samples: int

    @classmethod
    def from_event(cls, event: ChainEvent) -> RevealView:
        a = event.args
        return cls(str(a["trainer"]), str(a["cid"]), bytes(a["updateDigest"]), int(a["numSamples"]))


@dataclass(frozen=True)
class TrainerEntryView:
    """``getTrainerEntry(taskId, round, trainer)``, with the revealed update's CID and digest from its
    ``UpdateRevealed`` event (empty before the reveal)."""

    status: TrainerStatus
    commitment: bytes  # the commitment's top 240 bits while committed, else zero
    num_samples: int  # set by the reveal; 0: never revealed
    bond: int  # stake reserved for this commitment (0 once released or slashed)
    cid: str = ""
    update_digest: bytes = b""

    NAMES = ("status", "commitment", "numSamples", "bond")

    @classmethod
    def from_chain(cls, raw: Any, reveal: RevealView | None = None) -> TrainerEntryView:
        status, commitment, samples, bond = _fields(raw, cls.NAMES)
        return cls(TrainerStatus(int(status)), bytes(commitment), int(samples), int(bond),
                   reveal.cid if reveal else "", reveal.update_digest if reveal else b"")

    @property
    def revealed(self) -> bool:
        """The trainer revealed an update in the round, whatever happened since (claimed, or slashed for a
        rejected update: the round's inputs never change after the reveal phase)."""
        return self.status in (TrainerStatus.REVEALED, TrainerStatus.CLAIMED, TrainerStatus.SLASHED) and (
            self.num_samples > 0)


@dataclass(frozen=True)
class AggregatorEntryView:
    """``AggregatorCommittee.getAggregatorEntry(taskId, round, aggregator)``."""

    status: AggregatorStatus
    commitment: bytes
    result_key: bytes
    bond: int

    NAMES = ("status", "commitment", "resultKey", "bond")

    @classmethod
    def from_chain(cls, raw: Any) -> AggregatorEntryView:
        status, commitment, key, bond = _fields(raw, cls.NAMES)
        return cls(AggregatorStatus(int(status)), bytes(commitment), bytes(key), int(bond))


@dataclass(frozen=True)
class CommitteeTally:
    """``AggregatorCommittee.tally(taskId, round)``: the drawn committee's progress."""

    drawn: bool
    size: int
    committed: int
    revealed: int
    accepted_key: bytes

    @classmethod
    def from_chain(cls, raw: Any) -> CommitteeTally:
        drawn, size, committed, revealed, key = (raw[i] for i in range(5))
        return cls(bool(drawn), int(size), int(committed), int(revealed), bytes(key))


@dataclass(frozen=True)
class PhaseView:
    """``TaskManager.phaseView(taskId)``: the current round, its phase and its deadline extended by any pause."""

    round: int
    phase: Phase
    deadline: int

    @classmethod
    def from_chain(cls, raw: Any) -> PhaseView:
        return cls(int(raw[0]), Phase(int(raw[1])), int(raw[2]))


@dataclass(frozen=True)
class VaultTerms:
    """A task's reward terms, fixed at its creation (``RewardVault.termsOf``)."""

    aggregator_reward_bps: int
    protocol_fee_bps: int
    claim_window: int


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract event."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str  # the role in the deployment record: tasks, staking, token, governor, ...
    address: str
    name: str
    args: dict[str, Any]


class ChainReader(ABC):
    """Reads one fedchain deployment: typed views, raw view calls and events."""

    deployment: Deployment

    @abstractmethod
    def call(self, role: str, function: str, *args: Any, block: int | None = None) -> Any:
        """A view call on the deployment's contract ``role`` (``tasks``, ``staking``, ``token``, ...)."""

    @abstractmethod
    def events(self, role: str, name: str, from_block: int, to_block: int | None = None,
               filters: Mapping[str, Any] | None = None) -> list[ChainEvent]:
        """Events ``name`` of contract ``role`` in [from_block, to_block] (head by default), in chain order;
        ``filters`` match indexed arguments by name."""

    @abstractmethod
    def chain_id(self) -> int: ...

    @abstractmethod
    def head(self) -> int:
        """The latest block number."""

    @abstractmethod
    def block_timestamp(self, number: int | None = None) -> int:
        """A block's timestamp (the latest block's by default)."""

    @abstractmethod
    def pending_timestamp(self) -> int:
        """The timestamp the next block will carry: what the contracts compare deadlines with."""

    # --- typed views, defined once for every implementation ----------------------------------------------
    def task_count(self) -> int:
        return int(self.call("tasks", "taskCount"))

    def task(self, task_id: int, block: int | None = None) -> TaskView:
        """The task; ``UnknownTask`` (one line with the valid ids) when the chain has no task ``task_id``."""
        try:
            raw = self.call("tasks", "getTask", task_id, block=block)
        except Exception:
            count = self.task_count()
            if not 1 <= task_id <= count:
                raise UnknownTask(f"there is no task {task_id}: the chain has {count} task(s)"
                                  + (f", ids 1 to {count}" if count else "")) from None
            raise
        return TaskView.from_chain(task_id, raw)

    def round(self, task_id: int, round_: int, block: int | None = None) -> RoundView:
        return RoundView.from_chain(self.call("tasks", "getRound", task_id, round_, block=block))

    def current_round(self, task_id: int) -> tuple[TaskView, RoundView]:
        """The task and its current round, whose ``phase_deadline`` is the live one (extended by any pause)."""
        task = self.task(task_id)
        rnd = self.round(task_id, task.current_round)
        if rnd.phase.is_open:
            rnd = replace(rnd, phase_deadline=self.phase_view(task_id).deadline)
        return task, rnd

    def trainer_entry(self, task_id: int, round_: int, trainer: str, *, with_reveal: bool = True
                      ) -> TrainerEntryView:
        """The trainer's entry; a revealed one carries its update's CID and digest (one event query more, skipped
        with ``with_reveal=False`` where status and bond are all that is needed)."""
        raw = self.call("tasks", "getTrainerEntry", task_id, round_, trainer)
        samples = int(_fields(raw, TrainerEntryView.NAMES)[2])
        reveal = None
        if samples and with_reveal:
            reveal = self.round_reveals(task_id, round_, trainer).get(str(trainer).lower())
        return TrainerEntryView.from_chain(raw, reveal)

    def round_reveals(self, task_id: int, round_: int, trainer: str | None = None) -> dict[str, RevealView]:
        """The round's revealed updates (``UpdateRevealed`` events), keyed by lower-case trainer address in reveal
        order; only ``trainer``'s when given."""
        filters: dict[str, Any] = {"taskId": task_id, "round": round_}
        if trainer is not None:
            filters["trainer"] = trainer
        out: dict[str, RevealView] = {}
        for event in self.events("tasks", "UpdateRevealed", self.deployment.block, None, filters):
            reveal = RevealView.from_event(event)
            out.setdefault(reveal.trainer.lower(), reveal)  # the contract accepts one reveal per trainer
        return out

    def aggregator_entry(self, task_id: int, round_: int, aggregator: str) -> AggregatorEntryView:
        return AggregatorEntryView.from_chain(
            self.call("committee", "getAggregatorEntry", task_id, round_, aggregator))

    def phase_view(self, task_id: int) -> PhaseView:
        """The current round's phase with its live deadline (a guardian pause extends it)."""
        return PhaseView.from_chain(self.call("tasks", "phaseView", task_id))

    def tally(self, task_id: int, round_: int) -> CommitteeTally:
        return CommitteeTally.from_chain(self.call("committee", "tally", task_id, round_))

    def committee_members(self, task_id: int, round_: int) -> list[str]:
        """The round's drawn committee (empty before the draw)."""
        return [str(a) for a in self.call("committee", "membersOf", task_id, round_)]

    def is_committee_member(self, task_id: int, round_: int, account: str) -> bool:
        return bool(self.call("committee", "isMember", task_id, round_, account))

    def is_approved_aggregator(self, account: str) -> bool:
        role = self.call("committee", "AGGREGATOR_ROLE")
        return bool(self.call("committee", "hasRole", role, account))

    def trainer_bond(self, task_id: int) -> int:
        """The stake a commitment reserves in the task now (the larger of its minimum and the policy floor)."""
        return int(self.call("tasks", "trainerBond", task_id))

    def aggregator_bond(self, task_id: int) -> int:
        return int(self.call("tasks", "aggregatorBond", task_id))

    def free_stake(self, account: str) -> int:
        """Stake not reserved by a bond: what a new commitment can reserve, and what can be unstaked."""
        return int(self.call("staking", "freeStakeOf", account))

    def reserved_stake(self, account: str) -> int:
        return int(self.call("staking", "reservedOf", account))

    def vault_terms(self, task_id: int) -> VaultTerms:
        raw = self.call("vault", "termsOf", task_id)
        return VaultTerms(int(raw[0]), int(raw[1]), int(raw[2]))

    def round_split(self, task_id: int, round_: int) -> tuple[int, int, int]:
        """A finalized round's budget split: (trainers, aggregators, protocol fee)."""
        raw = self.call("vault", "splitOf", task_id, round_)
        return int(raw[0]), int(raw[1]), int(raw[2])

    def round_trainers(self, task_id: int, round_: int) -> list[str]:
        """Trainers that committed in the round (``UpdateCommitted`` events), in commit order."""
        seen: dict[str, str] = {}
        for event in self.events("tasks", "UpdateCommitted", self.deployment.block, None,
                                 {"taskId": task_id, "round": round_}):
            trainer = str(event.args["trainer"])
            seen.setdefault(trainer.lower(), trainer)
        return list(seen.values())

    def phase_reached_block(self, task_id: int, round_: int, phase: Phase) -> ChainEvent:
        """The ``PhaseAdvanced`` event that moved the round into ``phase``; ``LookupError`` if it has not."""
        for event in self.events("tasks", "PhaseAdvanced", self.deployment.block, None,
                                 {"taskId": task_id, "round": round_}):
            if int(event.args["phase"]) == phase:
                return event
        raise LookupError(f"task {task_id} round {round_} has not reached the {phase.label} phase")

    def round_aggregators(self, task_id: int, round_: int) -> list[str]:
        """Aggregators that committed in the round (``AggregateCommitted`` events), in commit order."""
        seen: list[str] = []
        for event in self.events("committee", "AggregateCommitted", self.deployment.block, None,
                                 {"taskId": task_id, "round": round_}):
            if event.args["aggregator"] not in seen:
                seen.append(event.args["aggregator"])
        return seen

    def released_rounds(self, task_id: int, up_to_round: int) -> int:
        """Rounds 1..up_to_round whose aggregation phase was reached (each may have published a result)."""
        return sum(self.round(task_id, r).aggregation_reached for r in range(1, up_to_round + 1))

    def validation_key(self, task_id: int, round_: int) -> bytes | None:
        """The key the sponsor published for the round's sealed validation section (None: not yet, or the
        deployment has no ValidationKeys contract)."""
        if not self.deployment.validation_keys:
            return None
        key = bytes(self.call("validation_keys", "keyOf", task_id, round_))
        return key if any(key) else None

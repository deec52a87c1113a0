"""The one chain-reading interface: typed views of tasks, rounds and entries, and the reads everybody needs.

``ChainReader`` is implemented over ape (``fedchain.ape.chain.Fedchain``, for the roles and the face) and over
plain web3 (``fedchain.web3chain.Web3Chain``, for the backend and the dashboard). Both return the same views, built
here from the contracts' structs (an ape struct, a web3 tuple or a dict of Solidity names, read by position).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedchain.deployment import Deployment
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
    phase_deadline: int
    committed: int
    revealed: int
    agg_committed: int
    agg_revealed: int
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
    paid: int
    failure_reason: bytes
    failed_phase: Phase

    NAMES = ("phase", "phaseDeadline", "committed", "revealed", "aggCommitted", "aggRevealed", "acceptedKey",
             "resultCid", "resultDigest", "scoresRoot", "totalWeight", "accepted", "rejected", "accuracyPpm",
             "lossMicro", "roundBudget", "paid", "failureReason", "failedPhase")

    @classmethod
    def from_chain(cls, raw: Any) -> RoundView:
        v = _fields(raw, cls.NAMES)
        return cls(Phase(int(v[0])), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), bytes(v[6]), str(v[7]),
                   bytes(v[8]), bytes(v[9]), int(v[10]), int(v[11]), int(v[12]), int(v[13]), int(v[14]), int(v[15]),
                   int(v[16]), bytes(v[17]), Phase(int(v[18])))

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
class TrainerEntryView:
    """``getTrainerEntry(taskId, round, trainer)``."""

    status: TrainerStatus
    commitment: bytes
    update_digest: bytes
    num_samples: int
    cid: str

    NAMES = ("status", "commitment", "updateDigest", "numSamples", "cid")

    @classmethod
    def from_chain(cls, raw: Any) -> TrainerEntryView:
        status, commitment, digest, samples, cid = _fields(raw, cls.NAMES)
        return cls(TrainerStatus(int(status)), bytes(commitment), bytes(digest), int(samples), str(cid))

    @property
    def revealed(self) -> bool:
        """The trainer revealed an update in the round (claimed counts: it revealed first)."""
        return self.status in (TrainerStatus.REVEALED, TrainerStatus.CLAIMED)


@dataclass(frozen=True)
class AggregatorEntryView:
    """``getAggregatorEntry(taskId, round, aggregator)``."""

    status: AggregatorStatus
    commitment: bytes
    result_key: bytes

    NAMES = ("status", "commitment", "resultKey")

    @classmethod
    def from_chain(cls, raw: Any) -> AggregatorEntryView:
        status, commitment, key = _fields(raw, cls.NAMES)
        return cls(AggregatorStatus(int(status)), bytes(commitment), bytes(key))


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
        return TaskView.from_chain(task_id, self.call("tasks", "getTask", task_id, block=block))

    def round(self, task_id: int, round_: int, block: int | None = None) -> RoundView:
        return RoundView.from_chain(self.call("tasks", "getRound", task_id, round_, block=block))

    def current_round(self, task_id: int) -> tuple[TaskView, RoundView]:
        task = self.task(task_id)
        return task, self.round(task_id, task.current_round)

    def trainer_entry(self, task_id: int, round_: int, trainer: str) -> TrainerEntryView:
        return TrainerEntryView.from_chain(self.call("tasks", "getTrainerEntry", task_id, round_, trainer))

    def aggregator_entry(self, task_id: int, round_: int, aggregator: str) -> AggregatorEntryView:
        return AggregatorEntryView.from_chain(self.call("tasks", "getAggregatorEntry", task_id, round_, aggregator))

    def round_trainers(self, task_id: int, round_: int) -> list[str]:
        """Trainers that committed in the round, in commit order."""
        return [str(t) for t in self.call("tasks", "getRoundTrainers", task_id, round_)]

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
        for event in self.events("tasks", "AggregateCommitted", self.deployment.block, None,
                                 {"taskId": task_id, "round": round_}):
            if event.args["aggregator"] not in seen:
                seen.append(event.args["aggregator"])
        return seen

    def released_rounds(self, task_id: int, up_to_round: int) -> int:
        """Rounds 1..up_to_round whose aggregation phase was reached (each may have published a result)."""
        return sum(self.round(task_id, r).aggregation_reached for r in range(1, up_to_round + 1))

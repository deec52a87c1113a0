"""Tasks and rounds."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.api.schemas import (
    NOT_FOUND,
    AddressFilter,
    Limit,
    Offset,
    RoundNumber,
    RoundOut,
    RoundPage,
    TaskId,
    TaskOut,
    TaskPage,
    tokens,
)
from backend.models import Round, Task
from backend.projections import DEADLINE_COLUMNS
from fedchain.protocol import Phase

PhaseName = Literal[tuple(p.key for p in Phase if p is not Phase.NONE)]  # type: ignore[valid-type]


def task_out(t: Task) -> TaskOut:
    return TaskOut(
        task_id=t.task_id, sponsor=t.sponsor, status=t.status, architecture=t.architecture, strategy=t.strategy,
        initial_model_cid=t.initial_model_cid, global_model_cid=t.global_model_cid, validation_cid=t.validation_cid,
        reward_budget_wei=t.reward_budget_wei, reward_budget_tokens=tokens(t.reward_budget_wei),
        remaining_budget_wei=t.remaining_budget_wei, reclaimed_wei=t.reclaimed_wei, num_rounds=t.num_rounds,
        current_round=t.current_round, min_trainers=t.min_trainers, max_trainers=t.max_trainers,
        dp_epsilon=t.dp_epsilon, created_block=t.created_block, created_at=t.created_at,
        central_epsilon_total=t.central_epsilon_total, central_delta=t.central_delta,
        central_dp_rounds=t.central_dp_rounds,
    )


def round_out(r: Round) -> RoundOut:
    metrics = {k: v for k, v in (("accuracy", r.accuracy), ("loss", r.loss)) if v is not None}
    return RoundOut(
        task_id=r.task_id, round=r.round, phase=r.phase,
        deadlines={phase.key: getattr(r, column) for phase, column in DEADLINE_COLUMNS.items()},
        started_block=r.started_block, started_at=r.started_at, ended_block=r.ended_block,
        trainers_committed=r.committed, trainers_revealed=r.revealed, aggregators_committed=r.aggregators_committed,
        aggregators_revealed=r.aggregators_revealed, parent_model_cid=r.parent_model_cid, result_cid=r.result_cid,
        result_digest=r.result_digest, scores_root=r.scores_root, total_weight=r.total_weight, accepted=r.accepted,
        rejected=r.rejected, metrics=metrics, central_epsilon=r.central_epsilon, round_budget_wei=r.round_budget_wei,
        paid_wei=r.paid_wei, failure_reason=r.failure_reason, details_status=r.details_status,
        central_epsilon_total=r.central_epsilon_total, central_delta=r.central_delta,
        central_noise_multiplier=r.central_noise_multiplier,
    )


def get_task_or_404(db: Session, task_id: int) -> Task:
    task = db.get(Task, task_id)
    if task is None:
        raise NotFoundException(f"task {task_id} is not known (not created, or not indexed yet)")
    return task


class TaskController(Controller):
    path = "/tasks"
    tags = ["tasks"]

    @get("/", sync_to_thread=True, summary="List tasks")
    def list_tasks(self, db: Session, limit: Limit = 50, offset: Offset = 0,
                   status: Literal["active", "completed"] | None = None, sponsor: AddressFilter = None) -> TaskPage:
        query = select(Task)
        if status is not None:
            query = query.where(Task.status == status)
        if sponsor is not None:
            query = query.where(Task.sponsor == sponsor.lower())
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(Task.task_id).limit(limit).offset(offset))
        return TaskPage(items=[task_out(t) for t in rows], total=total, limit=limit, offset=offset)

    @get("/{task_id:int}", sync_to_thread=True, responses=NOT_FOUND, summary="One task")
    def get_task(self, db: Session, task_id: TaskId) -> TaskOut:
        return task_out(get_task_or_404(db, task_id))

    @get("/{task_id:int}/rounds", sync_to_thread=True, responses=NOT_FOUND, summary="Rounds of a task")
    def list_rounds(self, db: Session, task_id: TaskId, limit: Limit = 50, offset: Offset = 0,
                    phase: PhaseName | None = None) -> RoundPage:
        get_task_or_404(db, task_id)
        query = select(Round).where(Round.task_id == task_id)
        if phase is not None:
            query = query.where(Round.phase == phase)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(Round.round).limit(limit).offset(offset))
        return RoundPage(items=[round_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{task_id:int}/rounds/{round_number:int}", sync_to_thread=True, responses=NOT_FOUND, summary="One round")
    def get_round(self, db: Session, task_id: TaskId, round_number: RoundNumber) -> RoundOut:
        rnd = db.get(Round, (task_id, round_number))
        if rnd is None:
            raise NotFoundException(f"round {round_number} of task {task_id} is not known")
        return round_out(rnd)

"""Contributions (one trainer in one round) and the leaderboard."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from litestar import Controller, get
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from backend.api.schemas import (
    AddressFilter,
    ContributionOut,
    ContributionPage,
    LeaderboardEntry,
    LeaderboardPage,
    Limit,
    Offset,
    RoundFilter,
    TaskFilter,
)
from backend.models import Contribution

Status = Literal["committed", "revealed", "claimed", "slashed"]


def contribution_out(c: Contribution) -> ContributionOut:
    return ContributionOut(
        task_id=c.task_id, round=c.round, trainer=c.trainer, status=c.status, samples=c.samples, score=c.score,
        weight=c.weight, bond_wei=c.bond_wei or "0", accepted=c.accepted, reject_code=c.reject_code,
        reject_message=c.reject_message, reward_wei=c.reward_wei,
        reward_tokens=c.reward_tokens, claimed=c.claimed, slashed_wei=c.slashed_wei, epsilon=c.epsilon,
        local_dp=c.local_dp, update_cid=c.update_cid,
    )


class ContributionController(Controller):
    path = "/contributions"
    tags = ["contributions"]

    @get("/", sync_to_thread=True, summary="Contributions, filtered by task, round, trainer, status, outcome")
    def list_contributions(self, db: Session, limit: Limit = 50, offset: Offset = 0, task_id: TaskFilter = None,
                           round: RoundFilter = None,
                           trainer: AddressFilter = None,
                           status: Status | None = None, accepted: bool | None = None) -> ContributionPage:
        query = select(Contribution)
        if task_id is not None:
            query = query.where(Contribution.task_id == task_id)
        if round is not None:
            query = query.where(Contribution.round == round)
        if trainer is not None:
            query = query.where(Contribution.trainer == trainer.lower())
        if status is not None:
            query = query.where(Contribution.status == status)
        if accepted is not None:
            query = query.where(Contribution.accepted == accepted)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        order = (Contribution.task_id, Contribution.round, Contribution.trainer)
        rows = db.scalars(query.order_by(*order).limit(limit).offset(offset))
        return ContributionPage(items=[contribution_out(c) for c in rows], total=total, limit=limit, offset=offset)


class LeaderboardController(Controller):
    path = "/leaderboard"
    tags = ["contributions"]

    @get("/", sync_to_thread=True, summary="Trainers ranked by rewards earned")
    def leaderboard(self, db: Session, limit: Limit = 50, offset: Offset = 0,
                    task_id: TaskFilter = None) -> LeaderboardPage:
        filters = [] if task_id is None else [Contribution.task_id == task_id]
        reward = func.sum(Contribution.reward_tokens)
        grouped = (
            select(Contribution.trainer, func.count().label("n"),
                   func.sum(case((Contribution.accepted.is_(True), 1), else_=0)).label("ok"),
                   func.sum(case((Contribution.accepted.is_(False), 1), else_=0)).label("bad"),
                   func.coalesce(func.sum(Contribution.score), 0).label("score"), reward.label("reward"))
            .where(*filters).group_by(Contribution.trainer)
        )
        total = db.scalar(select(func.count()).select_from(grouped.subquery())) or 0
        rows = db.execute(grouped.order_by(reward.desc(), Contribution.trainer).limit(limit).offset(offset)).all()
        exact: dict[str, int] = defaultdict(int)
        if rows:  # exact uint256 sums for the trainers on this page
            wei_rows = db.execute(select(Contribution.trainer, Contribution.reward_wei).where(
                *filters, Contribution.trainer.in_([r.trainer for r in rows])))
            for trainer, wei in wei_rows:
                exact[trainer] += int(wei)
        items = [
            LeaderboardEntry(rank=offset + i + 1, trainer=r.trainer, contributions=int(r.n), accepted=int(r.ok or 0),
                             rejected=int(r.bad or 0), total_score=int(r.score or 0),
                             total_reward_wei=str(exact[r.trainer]), total_reward_tokens=exact[r.trainer] / 10**18)
            for i, r in enumerate(rows)
        ]
        return LeaderboardPage(items=items, total=total, limit=limit, offset=offset)

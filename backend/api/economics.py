"""Token economics: supply, staked, treasury, rewards per round, claimable per address."""

from __future__ import annotations

from litestar import Controller, get
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.api.contributions import contribution_out
from backend.api.schemas import (
    AccountOut,
    Address,
    Economics,
    Limit,
    Offset,
    RoundRewards,
    RoundRewardsPage,
    TaskFilter,
    tokens,
)
from backend.models import Account, Contribution, Round, Setting, Task
from fedchain.protocol import Phase


def claimable_query():  # noqa: ANN201 - a SQLAlchemy select
    """Rewards of finalized rounds that were computed from the result file and not claimed yet."""
    return select(Contribution).join(Round, (Round.task_id == Contribution.task_id) & (
        Round.round == Contribution.round)).where(
        Round.phase == Phase.FINALIZED.key, Contribution.claimed.is_(False), Contribution.accepted.is_(True),
        Contribution.status == "revealed", Contribution.reward_tokens > 0)


def wei_sum(values) -> int:  # noqa: ANN001 - any iterable of decimal strings
    return sum(int(v) for v in values)


class EconomicsController(Controller):
    path = "/economics"
    tags = ["economics"]

    @get("/", sync_to_thread=True, summary="Supply, stakes, treasury and reward totals")
    def economics(self, db: Session) -> Economics:
        supply_row = db.get(Setting, "total_supply_wei")
        supply = int(supply_row.value) if supply_row else 0
        staked = wei_sum(db.scalars(select(Account.staked_wei)))
        unbonding = wei_sum(db.scalars(select(Account.unbonding_wei)))
        treasury_row = db.get(Setting, "treasury")
        treasury = treasury_row.value if treasury_row else None
        treasury_account = db.get(Account, treasury) if treasury else None
        treasury_balance = int(treasury_account.balance_wei) if treasury_account else 0
        allocated = wei_sum(db.scalars(select(Round.round_budget_wei)))
        paid = wei_sum(db.scalars(select(Round.paid_wei)))
        claimable = wei_sum(c.reward_wei for c in db.scalars(claimable_query()))
        remaining = wei_sum(db.scalars(select(Task.remaining_budget_wei)))
        return Economics(
            total_supply_wei=str(supply), total_supply_tokens=tokens(supply), staked_wei=str(staked),
            staked_tokens=tokens(staked), unbonding_wei=str(unbonding), treasury=treasury,
            treasury_balance_wei=str(treasury_balance), treasury_balance_tokens=tokens(treasury_balance),
            rewards_allocated_wei=str(allocated), rewards_paid_wei=str(paid), rewards_claimable_wei=str(claimable),
            task_budgets_remaining_wei=str(remaining),
        )

    @get("/rounds", sync_to_thread=True, summary="Rewards allocated and paid per round")
    def rewards_per_round(self, db: Session, limit: Limit = 50, offset: Offset = 0,
                          task_id: TaskFilter = None) -> RoundRewardsPage:
        query = select(Round)
        if task_id is not None:
            query = query.where(Round.task_id == task_id)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(Round.task_id, Round.round).limit(limit).offset(offset))
        items = [RoundRewards(
            task_id=r.task_id, round=r.round, phase=r.phase, round_budget_wei=r.round_budget_wei,
            trainer_budget_wei=r.trainer_budget_wei, paid_wei=r.paid_wei, aggregator_paid_wei=r.aggregator_paid_wei,
            fee_wei=r.fee_wei, swept_wei=r.swept_wei,
            unclaimed_wei=str(int(r.round_budget_wei) - sum(int(v) for v in (
                r.paid_wei, r.aggregator_paid_wei, r.fee_wei, r.swept_wei))))
            for r in rows]
        return RoundRewardsPage(items=items, total=total, limit=limit, offset=offset)


class AccountController(Controller):
    path = "/accounts"
    tags = ["economics"]

    @get("/{address:str}", sync_to_thread=True, summary="Balance, stake and claimable rewards of an address")
    def account(self, db: Session, address: Address) -> AccountOut:
        address = address.lower()
        row = db.get(Account, address)
        claimable = list(db.scalars(claimable_query().where(Contribution.trainer == address).order_by(
            Contribution.task_id, Contribution.round)))
        total = wei_sum(c.reward_wei for c in claimable)
        return AccountOut(
            address=address, balance_wei=row.balance_wei if row else "0",
            balance_tokens=tokens(row.balance_wei) if row else 0.0, staked_wei=row.staked_wei if row else "0",
            unbonding_wei=row.unbonding_wei if row else "0", reserved_wei=row.reserved_wei if row else "0",
            slashed_wei=row.slashed_wei if row else "0",
            claimable_wei=str(total), claimable_tokens=tokens(total),
            claimable=[contribution_out(c) for c in claimable],
        )

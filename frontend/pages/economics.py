"""Token economics: supply, stakes, treasury, rewards over rounds and trainers; the connected wallet's account."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from frontend.backend_client import BackendError
from frontend.context import DashboardContext
from frontend.layout import frame, problem, short, stat, tokens, wallet_slot

ONE_TOKEN = 10**18


async def render(ctx: DashboardContext) -> None:
    if not await frame(ctx, "Token economics"):
        return
    try:
        economics = await ctx.backend.economics()
        per_round = await ctx.backend.rewards_per_round()
        board = await ctx.backend.leaderboard()
    except BackendError as exc:
        problem(f"token economics unavailable: {exc}")
    else:
        with ui.row().classes("gap-4"):
            stat("Total supply", tokens(economics["total_supply_wei"]), "stat-supply")
            stat("Staked", tokens(economics["staked_wei"]), "stat-staked")
            stat("Unbonding", tokens(economics["unbonding_wei"]), "stat-unbonding")
            stat("Treasury", tokens(economics["treasury_balance_wei"]), "stat-treasury")
            stat("Rewards allocated", tokens(economics["rewards_allocated_wei"]), "stat-allocated")
            stat("Rewards paid", tokens(economics["rewards_paid_wei"]), "stat-paid")
            stat("Rewards claimable", tokens(economics["rewards_claimable_wei"]), "stat-claimable")
        if economics.get("treasury"):
            ui.label(f"treasury account: {economics['treasury']}").classes("text-xs font-mono")
        with ui.row().classes("w-full gap-4"):
            ui.echart(rounds_chart(per_round)).classes("h-72 min-w-96 flex-1").mark("rewards-per-round")
            ui.echart(trainers_chart(board["items"])).classes("h-72 min-w-96 flex-1").mark("rewards-per-trainer")
    with ui.column().classes("w-full mt-4").mark("wallet-account"):
        await wallet_slot("account_panel", ctx)


def _fed(wei: str | int) -> float:
    return round(int(wei) / ONE_TOKEN, 2)


def rounds_chart(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """Budget allocated to each round and how much of it was paid out (claimed)."""
    labels = [f"t{r['task_id']} r{r['round']}" for r in per_round]
    return {
        "title": {"text": "Rewards per round (FED)", "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "legend": {"right": 10, "top": 0},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value"},
        "series": [
            {"name": "budget", "type": "bar", "data": [_fed(r["round_budget_wei"]) for r in per_round]},
            {"name": "paid", "type": "bar", "data": [_fed(r["paid_wei"]) for r in per_round]},
        ],
        "grid": {"left": 60, "right": 20, "top": 60, "bottom": 30},
    }


def trainers_chart(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Rewards earned per trainer (leaderboard order)."""
    return {
        "title": {"text": "Rewards per trainer (FED)", "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": [short(e["trainer"]) for e in entries]},
        "yAxis": {"type": "value"},
        "series": [{"name": "rewards", "type": "bar", "data": [_fed(e["total_reward_wei"]) for e in entries],
                    "label": {"show": True, "position": "top"}}],
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30},
    }

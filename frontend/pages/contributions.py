"""Contributions: a filterable, paginated table (task, round, trainer, outcome) read page by page from the backend."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from frontend.backend_client import BackendError
from frontend.context import DashboardContext
from frontend.layout import frame, problem, tokens

PAGE_SIZE = 20
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
OUTCOMES = {"all": "all", "accepted": "accepted", "rejected": "rejected"}
COLUMNS = [
    {"name": "task", "label": "Task", "field": "task", "align": "right"},
    {"name": "round", "label": "Round", "field": "round", "align": "right"},
    {"name": "trainer", "label": "Trainer", "field": "trainer", "align": "left"},
    {"name": "samples", "label": "Samples", "field": "samples", "align": "right"},
    {"name": "score", "label": "Score (0-1)", "field": "score", "align": "right"},
    {"name": "outcome", "label": "Outcome", "field": "outcome", "align": "left"},
    {"name": "reason", "label": "Reason", "field": "reason", "align": "left"},
    {"name": "reward", "label": "Reward", "field": "reward", "align": "right"},
    {"name": "epsilon", "label": "Epsilon", "field": "epsilon", "align": "right"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
]


@dataclass
class Filters:
    task: int | None = None
    round: int | None = None
    trainer: str = ""
    outcome: str = "all"
    offset: int = 0


SCORE_PPM = 1_000_000  # scores are quantised to parts per million on chain (aggregator/scoring.py)


def contribution_row(c: dict[str, Any]) -> dict[str, Any]:
    """One backend contribution as a table row."""
    outcome = "pending" if c["accepted"] is None else "accepted" if c["accepted"] else "rejected"
    reason = ""
    if c["accepted"] is False:
        reason = ": ".join(x for x in (c["reject_code"], c["reject_message"]) if x)
    return {"key": f"{c['task_id']}-{c['round']}-{c['trainer']}", "task": c["task_id"], "round": c["round"],
            "trainer": c["trainer"], "samples": c["samples"] if c["samples"] is not None else "-",
            "score": f"{c['score'] / SCORE_PPM:.4f}" if c["score"] is not None else "-",
            "outcome": outcome, "reason": reason,
            "reward": tokens(c["reward_wei"]) + (" (claimed)" if c["claimed"] else ""),
            "epsilon": epsilon_cell(c), "status": c["status"]}


def epsilon_cell(c: dict[str, Any]) -> str:
    """The trainer's reported local epsilon; an update that reports none carries no DP guarantee."""
    if c["epsilon"] is not None:
        return f"{c['epsilon']:.3g}"
    return "∞ (no DP)" if c.get("local_dp") is False else "-"


async def render(ctx: DashboardContext) -> None:
    if not await frame(ctx, "Contributions"):
        return
    filters = Filters()

    with ui.row().classes("items-end gap-4"):
        task_input = ui.number("Task", min=1, precision=0, format="%d").classes("w-24").mark("filter-task")
        round_input = ui.number("Round", min=1, precision=0, format="%d").classes("w-24").mark("filter-round")
        trainer_input = ui.input("Trainer address", placeholder="0x…").classes("w-96").mark("filter-trainer")
        outcome_select = ui.select(OUTCOMES, value="all", label="Outcome").classes("w-36").mark("filter-outcome")
        ui.button("Apply", on_click=lambda: apply()).mark("apply-filters")

    @ui.refreshable
    async def table_view() -> None:
        trainer = filters.trainer.strip()
        if trainer and not ADDRESS.match(trainer):
            problem(f"trainer must be a 0x-prefixed 20-byte address, not {trainer[:60]!r}")
            return
        try:
            page = await ctx.backend.contributions(
                limit=PAGE_SIZE, offset=filters.offset, task_id=filters.task, round_=filters.round,
                trainer=trainer or None, accepted=None if filters.outcome == "all" else filters.outcome == "accepted")
        except BackendError as exc:
            problem(f"contributions unavailable: {exc}")
            return
        rows = [contribution_row(c) for c in page["items"]]
        ui.table(columns=COLUMNS, rows=rows, row_key="key", pagination=0).props(
            "dense flat wrap-cells hide-bottom").classes("w-full text-xs").mark("contributions")
        total = int(page["total"])
        first = filters.offset + 1 if rows else 0
        with ui.row().classes("items-center gap-4"):
            ui.button("Previous", on_click=lambda: turn(-PAGE_SIZE)).props("flat").mark("previous-page").set_enabled(
                filters.offset > 0)
            ui.label(f"{first}–{filters.offset + len(rows)} of {total}").mark("page-info")
            ui.button("Next", on_click=lambda: turn(PAGE_SIZE)).props("flat").mark("next-page").set_enabled(
                filters.offset + len(rows) < total)

    def apply() -> None:
        filters.task = int(task_input.value) if task_input.value is not None else None
        filters.round = int(round_input.value) if round_input.value is not None else None
        filters.trainer = trainer_input.value or ""
        filters.outcome = outcome_select.value or "all"
        filters.offset = 0
        table_view.refresh()

    def turn(step: int) -> None:
        filters.offset = max(0, filters.offset + step)
        table_view.refresh()

    await table_view()

"""Overview: tasks, contributions and trainers (backend), the live round and phase with a countdown (chain)."""

from __future__ import annotations

import time

from nicegui import ui

from frontend.backend_client import BackendError
from frontend.context import DashboardContext
from frontend.layout import frame, percent, problem, stat
from frontend.live import LiveRound, format_countdown, read_live_round_async

CHAIN_REFRESH_SECONDS = 5.0


async def render(ctx: DashboardContext) -> None:
    if not await frame(ctx, "Overview"):
        return
    live_box = ui.row().classes("gap-4 items-stretch")
    history_box = ui.row().classes("gap-4 items-stretch")
    await _live_section(ctx, live_box)
    await _history_section(ctx, history_box)


async def _live_section(ctx: DashboardContext, box: ui.row) -> None:
    """The round happening now, from view calls; the countdown ticks every second and re-reads every 5 s."""
    try:
        live = await read_live_round_async(ctx.chain)
    except Exception as exc:  # noqa: BLE001 - any RPC failure: say so, keep the page
        with box:
            problem(f"the chain at {ctx.config.rpc_url} could not be read: {type(exc).__name__}: {exc}"[:300])
        return
    state: dict[str, LiveRound] = {"live": live}
    with box:
        if live.task_id is None:
            ui.label("no task has been created on this deployment yet").mark("no-task")
            return
        labels = {mark: stat(title, text, mark) for mark, (title, text) in _live_texts(live).items()
                  if mark != "live-trainers"}
        with ui.card().classes("min-w-40"):
            ui.label("Phase ends in").classes("text-xs text-gray-500 uppercase")
            countdown = ui.label(format_countdown(live.seconds_left())).classes("text-xl font-semibold font-mono")
            countdown.mark("countdown")
        title, text = _live_texts(live)["live-trainers"]
        labels["live-trainers"] = stat(title, text, "live-trainers")
    refresh = {"busy": False}

    async def tick() -> None:
        current = state["live"]
        if time.monotonic() - current.read_at >= CHAIN_REFRESH_SECONDS and not refresh["busy"]:
            refresh["busy"] = True
            try:
                state["live"] = current = await read_live_round_async(ctx.chain)
            except Exception:  # noqa: BLE001 - keep counting on the last read; the next tick retries
                pass
            finally:
                refresh["busy"] = False
            for mark, (_, text) in _live_texts(current).items():
                labels[mark].set_text(text)
        countdown.set_text(format_countdown(current.seconds_left()))

    ui.timer(1.0, tick)


def _live_texts(live: LiveRound) -> dict[str, tuple[str, str]]:
    """Mark -> (card title, value) of the live cards."""
    return {"live-task": ("Task (live)", f"#{live.task_id} · {live.task_status}"),
            "live-round": ("Current round", str(live.round or "-")),
            "live-phase": ("Phase", live.phase or "-"),
            "live-trainers": ("Trainers this round",
                              f"{live.trainers_committed} committed · {live.trainers_revealed} revealed")}


async def _history_section(ctx: DashboardContext, box: ui.row) -> None:
    """Totals and the latest accuracy from the backend's index."""
    try:
        tasks = await ctx.backend.tasks()
        contributions = await ctx.backend.contributions(limit=1)
        board = await ctx.backend.leaderboard()
        latest = await _latest_accuracy(ctx, tasks)
    except BackendError as exc:
        with box:
            problem(f"history unavailable: {exc}")
        return
    active = sum(1 for t in tasks if t["status"] == "active")
    active_trainers = sum(1 for e in board["items"] if e["accepted"] > 0)
    with box:
        stat("Tasks", f"{len(tasks)} ({active} active)", "stat-tasks")
        stat("Contributions", contributions["total"], "stat-contributions")
        stat("Trainers", f"{board['total']} ({active_trainers} with accepted updates)", "stat-trainers")
        stat("Latest accuracy", latest, "stat-accuracy")


async def _latest_accuracy(ctx: DashboardContext, tasks: list[dict]) -> str:
    """Accuracy of the most recent finalized round that reported one, with its task and round."""
    for task in sorted(tasks, key=lambda t: t["task_id"], reverse=True):
        rounds = await ctx.backend.rounds(task["task_id"])
        for rnd in sorted(rounds, key=lambda r: r["round"], reverse=True):
            if "accuracy" in rnd["metrics"]:
                return f"{percent(rnd['metrics']['accuracy'])} (task {task['task_id']}, round {rnd['round']})"
    return "no finalized round yet"

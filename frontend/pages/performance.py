"""Model performance: accuracy and loss per round per task (charts) and the model lineage by CID."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from frontend.backend_client import BackendError
from frontend.context import DashboardContext
from frontend.layout import frame, problem


async def render(ctx: DashboardContext, task_id: int | None = None) -> None:
    """`task_id` (the page's ?task= query) picks the task; default the latest."""
    if not await frame(ctx, "Model performance"):
        return
    try:
        tasks = await ctx.backend.tasks()
    except BackendError as exc:
        problem(f"history unavailable: {exc}")
        return
    if not tasks:
        ui.label("no task has been indexed yet").mark("no-task")
        return
    by_id = {t["task_id"]: t for t in tasks}

    @ui.refreshable
    async def task_view(task_id: int) -> None:
        try:
            rounds = await ctx.backend.rounds(task_id)
        except BackendError as exc:
            problem(f"rounds of task {task_id} unavailable: {exc}")
            return
        _charts(task_id, rounds)
        _lineage(by_id[task_id], rounds)

    options = {t["task_id"]: f"task {t['task_id']} ({t['architecture']}, {t['strategy']}, {t['status']})"
               for t in tasks}
    latest = max(by_id)
    if task_id is not None and task_id not in by_id:
        problem(f"task {task_id} is not known to the backend (not created, or not indexed yet); "
                f"showing task {latest}")
    elif task_id is not None:
        latest = task_id
    ui.select(options, value=latest, label="Task",
              on_change=lambda e: task_view.refresh(int(e.value))).classes("min-w-80").mark("task-select")
    await task_view(latest)


def _charts(task_id: int, rounds: list[dict[str, Any]]) -> None:
    measured = [r for r in rounds if r["metrics"]]
    if not measured:
        ui.label(f"task {task_id} has no finalized round with metrics yet").mark("no-metrics")
        return
    labels = [f"round {r['round']}" for r in measured]
    accuracy = [round(r["metrics"].get("accuracy", 0.0) * 100, 2) for r in measured]
    loss = [round(r["metrics"].get("loss", 0.0), 4) for r in measured]
    with ui.row().classes("w-full gap-4"):
        ui.echart(_line_chart(f"Test accuracy (%) · task {task_id}", labels, "accuracy", accuracy, "#2e7d32")
                  ).classes("h-64 min-w-96 flex-1").mark("accuracy-chart")
        ui.echart(_line_chart(f"Test loss · task {task_id}", labels, "loss", loss, "#c62828")
                  ).classes("h-64 min-w-96 flex-1").mark("loss-chart")


def _line_chart(title: str, labels: list[str], name: str, values: list[float], color: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "scale": True},
        "series": [{"name": name, "type": "line", "data": values, "color": color, "label": {"show": True}}],
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
    }


def _lineage(task: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
    """Each round's parent model CID -> the global model it produced (failed rounds keep their parent)."""
    ui.label("Model lineage").classes("text-lg font-semibold mt-4")
    rows = [{"round": "initial", "parent": "-", "child": task["initial_model_cid"], "phase": "-", "accuracy": "-"}]
    for r in rounds:
        rows.append({"round": str(r["round"]), "parent": r["parent_model_cid"], "child": r["result_cid"] or "-",
                     "phase": r["phase"].replace("_", " "),
                     "accuracy": f"{r['metrics']['accuracy'] * 100:.1f}%" if "accuracy" in r["metrics"] else "-"})
    columns = [{"name": "round", "label": "Round", "field": "round", "align": "left"},
               {"name": "parent", "label": "Parent model CID", "field": "parent", "align": "left"},
               {"name": "child", "label": "Global model CID after the round", "field": "child", "align": "left"},
               {"name": "phase", "label": "Phase", "field": "phase", "align": "left"},
               {"name": "accuracy", "label": "Accuracy", "field": "accuracy", "align": "right"}]
    table = ui.table(columns=columns, rows=rows, row_key="round", pagination=0)
    table.props("dense flat wrap-cells hide-bottom").classes("w-full text-xs").mark("lineage")
    ui.label(f"current global model: {task['global_model_cid']}").classes("text-xs font-mono").mark("global-model")

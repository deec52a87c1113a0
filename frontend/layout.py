"""The frame every page shares (header, navigation, the wallet's header slot) and small display helpers."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from nicegui import ui
from nicegui.client import ClientConnectionTimeout

from frontend.context import DashboardContext

PAGES = (("/", "Overview"), ("/performance", "Model performance"), ("/contributions", "Contributions"),
         ("/economics", "Token economics"), ("/governance", "Governance"))
ONE_TOKEN = 10**18
CONNECT_TIMEOUT_SECONDS = 30.0
log = logging.getLogger(__name__)


async def wallet_slot(name: str, *args: Any) -> None:
    """Render `frontend.wallet_ui.<name>(*args)` (the wallet part); nothing when the wallet module is absent."""
    try:
        from frontend import wallet_ui
    except ModuleNotFoundError as exc:
        if exc.name not in ("frontend.wallet_ui", "frontend"):
            raise
        return
    render = getattr(wallet_ui, name, None)
    if render is None:
        return
    try:
        result = render(*args)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # noqa: BLE001 - the read-only page must survive a broken wallet part
        log.exception("wallet_ui.%s failed", name)
        problem(f"wallet controls unavailable: {type(exc).__name__}")


async def frame(ctx: DashboardContext, title: str) -> bool:
    """Header with the navigation and the wallet controls, and the page's title.

    Returns once the browser is connected (the page shows at once; data arrives over the websocket), or False
    when it never connects, so the page can skip its reads.
    """
    ui.page_title(f"fedchain · {title}")
    with ui.header().classes("items-center justify-between bg-slate-800 px-4 py-2"):
        with ui.row().classes("items-center gap-4"):
            ui.label("fedchain").classes("text-lg font-bold text-white")
            for path, label in PAGES:
                ui.link(label, path).classes(
                    "text-white no-underline" + (" font-bold underline" if label == title else " opacity-80"))
        with ui.row().classes("items-center gap-2").mark("wallet-header"):
            await wallet_slot("header_controls", ctx)
    ui.label(title).classes("text-2xl font-semibold")
    try:
        await ui.context.client.connected(timeout=CONNECT_TIMEOUT_SECONDS)
    except ClientConnectionTimeout:
        return False
    return True


def problem(message: str) -> ui.label:
    """A visible, readable error in place of the data that could not be read."""
    return ui.label(message).classes("text-negative").mark("problem")


def stat(label: str, value: Any, mark: str) -> ui.label:
    """One headline number in a card; `mark` names it for tests. Returns the value's label."""
    with ui.card().classes("min-w-40"):
        ui.label(label).classes("text-xs text-gray-500 uppercase")
        return ui.label(str(value)).classes("text-xl font-semibold").mark(mark)


def tokens(wei: str | int | None) -> str:
    """A wei amount as FED with thousands separators (exact integer part, 2 decimals)."""
    if wei is None:
        return "-"
    value = int(wei)
    whole, frac = divmod(abs(value), ONE_TOKEN)
    cents = frac * 100 // ONE_TOKEN
    return f"{'-' if value < 0 else ''}{whole:,}.{cents:02d} FED"


def short(address: str | None) -> str:
    return "-" if not address else f"{address[:6]}…{address[-4:]}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"

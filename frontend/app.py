"""The dashboard application: every page registered on NiceGUI, and `run_dashboard` to serve them."""

from __future__ import annotations

from nicegui import ui

from frontend.context import DashboardConfig, DashboardContext
from frontend.pages import contributions, economics, governance, overview, performance

TITLE = "fedchain dashboard"


def build_dashboard(ctx: DashboardContext) -> None:
    """Register the pages (/, /performance, /contributions, /economics, /governance) for `ctx`."""

    @ui.page("/", title=TITLE)
    async def overview_page() -> None:
        await overview.render(ctx)

    @ui.page("/performance", title=TITLE)
    async def performance_page(task: int | None = None) -> None:
        await performance.render(ctx, task)

    @ui.page("/contributions", title=TITLE)
    async def contributions_page() -> None:
        await contributions.render(ctx)

    @ui.page("/economics", title=TITLE)
    async def economics_page() -> None:
        await economics.render(ctx)

    @ui.page("/governance", title=TITLE)
    async def governance_page() -> None:
        await governance.render(ctx)


def run_dashboard(config: DashboardConfig, ctx: DashboardContext | None = None) -> None:
    """Serve the dashboard on config.host:config.port until interrupted (no reload, no browser opened)."""
    build_dashboard(ctx or DashboardContext(config))
    ui.run(host=config.host, port=config.port, title=TITLE, reload=False, show=False, show_welcome_message=False,
           storage_secret=None, favicon="🔗")

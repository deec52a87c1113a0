"""Governance: proposals with state, votes and quorum progress (quorum from the governor); the wallet's controls."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from frontend.backend_client import BackendError
from frontend.context import DashboardContext
from frontend.layout import frame, problem, short, tokens, wallet_slot
from frontend.live import quorum_at

MAX_PROPOSALS_SHOWN = 20  # each one costs a backend read and a quorum() call
STATE_COLORS = {"pending": "grey", "active": "primary", "canceled": "grey", "defeated": "negative",
                "succeeded": "positive", "queued": "warning", "expired": "grey", "executed": "positive"}


def proposal_title(proposal: dict[str, Any]) -> str:
    text = proposal["description"].strip()
    return text.splitlines()[0] if text else "(no description)"


def quorum_progress(proposal: dict[str, Any], quorum: int | None) -> tuple[int, float | None]:
    """Votes that count toward quorum (for + abstain, as OpenZeppelin counts) and their share of the quorum."""
    counted = int(proposal["for_votes_wei"]) + int(proposal["abstain_votes_wei"])
    if quorum is None:
        return counted, None
    return counted, (counted / quorum if quorum else 1.0)


async def render(ctx: DashboardContext) -> None:
    if not await frame(ctx, "Governance"):
        return
    try:
        governed = "governor" in ctx.deployment.addresses
    except LookupError as exc:
        problem(str(exc))
        return
    if not governed:
        ui.label("this deployment has no DAO (it was deployed without --governance): nothing to vote on").mark(
            "no-dao")
        return
    with ui.column().classes("w-full").mark("wallet-propose"):
        await wallet_slot("propose_form", ctx)
    try:
        proposals = await ctx.backend.proposals()
    except BackendError as exc:
        problem(f"proposals unavailable: {exc}")
        return
    if not proposals:
        ui.label("no proposal yet").mark("no-proposals")
        return
    if len(proposals) > MAX_PROPOSALS_SHOWN:
        ui.label(f"the {MAX_PROPOSALS_SHOWN} most recent of {len(proposals)} proposals").classes("text-xs")
    for proposal in proposals[:MAX_PROPOSALS_SHOWN]:  # the backend lists the newest first
        detailed = proposal  # if the detail fails, the list entry is enough to show (without the votes)
        with contextlib.suppress(BackendError):
            detailed = await ctx.backend.proposal(proposal["proposal_id"])
        quorum = await asyncio.to_thread(quorum_at, ctx.chain, detailed["vote_start"])
        await _proposal_card(ctx, detailed, quorum)


async def _proposal_card(ctx: DashboardContext, p: dict[str, Any], quorum: int | None) -> None:
    counted, progress = quorum_progress(p, quorum)
    with ui.card().classes("w-full").mark(f"proposal-{p['proposal_id']}"):
        with ui.row().classes("items-center gap-3"):
            ui.badge(p["state"], color=STATE_COLORS.get(p["state"], "grey")).mark("proposal-state")
            ui.label(proposal_title(p)).classes("text-base font-semibold")
        ui.label(f"#{short(p['proposal_id'])} · by {p['proposer']} · voting "
                 f"{_when(p['vote_start'])} → {_when(p['vote_end'])}"
                 + (f" · ETA {_when(p['eta'])}" if p.get("eta") else "")).classes("text-xs text-gray-500")
        ui.label(f"for {tokens(p['for_votes_wei'])} · against {tokens(p['against_votes_wei'])} · "
                 f"abstain {tokens(p['abstain_votes_wei'])}").mark("proposal-votes")
        if progress is None:
            ui.label(f"quorum: unknown (the governor could not be read); {tokens(counted)} counted").mark(
                "proposal-quorum")
        else:
            ui.label(f"quorum: {tokens(counted)} of {tokens(quorum)} ({min(progress, 9.99):.0%})").mark(
                "proposal-quorum")
            ui.linear_progress(value=min(progress, 1.0), show_value=False).props(
                f"color={'positive' if progress >= 1 else 'primary'}").classes("w-96")
        votes = p.get("votes") or []
        if votes:
            rows = [{"voter": v["voter"], "support": v["support"], "weight": tokens(v["weight_wei"]),
                     "reason": v["reason"]} for v in votes]
            columns = [{"name": k, "label": k.capitalize(), "field": k, "align": "left"}
                       for k in ("voter", "support", "weight", "reason")]
            ui.table(columns=columns, rows=rows, row_key="voter", pagination=0).props(
                "dense flat hide-bottom").classes("w-full text-xs").mark("proposal-vote-list")
        with ui.row().mark("wallet-proposal-actions"):
            await wallet_slot("proposal_actions", ctx, p)


def _when(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

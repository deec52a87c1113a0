"""The dashboard against the real backend (HTTP on loopback) and the test's anvil, one governed federation for the
module: page logic with NiceGUI's simulated `user` (what each page shows equals what the chain and the backend say;
filters, the live countdown, clear messages when the backend is down or an id is unknown), every page in real
Chromium with a screenshot, and `fedchain dashboard` as a process."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess

import httpx
import pytest
from ape import chain
from nicegui import ui
from nicegui.testing import Screen, User

from fedchain.protocol import Phase, ProposalState
from frontend.app import build_dashboard
from frontend.context import DashboardContext
from frontend.layout import PAGES
from frontend.pages import contributions as contributions_page
from tests.support.net import free_port, wait_for

ONE_TOKEN = 10**18


def texts(user: User, marker: str) -> list[str]:
    """Texts of the labels carrying `marker`, in page order."""
    return [e.text for e in user.find(marker=marker).elements if isinstance(e, ui.label)]


def fed_text(wei: int) -> str:
    """How the dashboard writes an amount (computed here independently of frontend.layout.tokens)."""
    return f"{wei // ONE_TOKEN:,}.{wei % ONE_TOKEN * 100 // ONE_TOKEN:02d} FED"


def table_rows(user: User, marker: str) -> list[dict]:
    (table,) = user.find(marker=marker).elements
    return list(table.rows)


async def see(user: User, marker: str, timeout: float = 15.0) -> None:
    """Wait until an element with `marker` is on the page (data arrives after the page connects)."""
    await user.should_see(marker=marker, retries=int(timeout / 0.1))


async def page_info_becomes(user: User, expected: str, timeout: float = 15.0) -> None:
    """Wait until the contributions page shows `expected` ("first–last of total"): the table was re-read."""
    last: list[str] = []
    for _ in range(int(timeout / 0.1)):
        try:
            last = texts(user, "page-info")
        except AssertionError:  # between the old table and the new one
            last = []
        if last == [expected]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"page info stayed {last}, expected {expected!r}")


def seconds(countdown: str) -> int:
    parts = [int(p) for p in re.fullmatch(r"(?:(\d+):)?(\d\d):(\d\d)", countdown).groups(default="0")]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


async def test_governance_shows_state_votes_and_quorum_from_the_governor(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/governance")
    await see(user, "proposal-quorum")
    governor = w.f.fed.governor
    pid = w.proposal_id
    against, for_, abstain = (int(v) for v in governor.proposalVotes(pid))
    (badge,) = user.find(marker="proposal-state").elements
    assert badge.text == ProposalState(int(governor.state(pid))).name.lower() == "active"
    await user.should_see(content=w.proposal_description)
    votes = texts(user, "proposal-votes")[0]
    assert f"for {for_ // ONE_TOKEN:,}." in votes and f"against {against // ONE_TOKEN:,}." in votes
    quorum = int(governor.quorum(int(governor.proposalSnapshot(pid))))
    share = (for_ + abstain) / quorum
    assert texts(user, "proposal-quorum")[0].endswith(f"of {fed_text(quorum)} ({min(share, 9.99):.0%})")
    voters = {r["voter"] for r in table_rows(user, "proposal-vote-list")}
    assert voters == {w.f.people.trainers[0].address.lower(), w.f.people.trainers[1].address.lower()}


async def test_overview_shows_the_live_round_from_the_chain_and_counts_down(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/")
    await see(user, "stat-contributions")
    task = w.f.fed.task(w.f.task_id)
    rnd = w.f.fed.round(w.f.task_id, task.current_round)
    assert texts(user, "live-round") == [str(task.current_round)] and task.current_round == 3
    assert texts(user, "live-phase") == [Phase(int(rnd.phase)).label] == ["trainer commit"]
    assert texts(user, "live-task") == [f"#{w.f.task_id} · active"]
    first = texts(user, "countdown")[0]
    await asyncio.sleep(2.5)
    second = texts(user, "countdown")[0]
    assert 0 < seconds(second) < seconds(first) <= int(rnd.phase_deadline) - int(chain.blocks.head.timestamp) + 2
    assert texts(user, "stat-contributions") == ["6"]  # 3 trainers x 2 finished rounds
    assert texts(user, "stat-tasks") == ["1 (1 active)"]
    assert texts(user, "stat-trainers")[0].startswith("3 ")
    accuracy = w.f.fed.round(w.f.task_id, 2).accuracy_ppm / 1e4
    assert texts(user, "stat-accuracy") == [f"{accuracy:.1f}% (task {w.f.task_id}, round 2)"]


async def test_overview_follows_the_chain_while_open(user: User, dashboard_world):
    """A commit on chain shows up without reloading the page (the live cards re-read the chain every 5 s)."""
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/")
    await see(user, "live-trainers")
    assert texts(user, "live-trainers") == ["0 committed · 0 revealed"]
    w.f.fed.tasks.commitUpdate(w.f.task_id, 3, b"\x33" * 32, sender=w.f.people.trainers[0])  # round 3 is open
    for _ in range(200):  # re-read every 5 s; generous on a loaded machine
        if texts(user, "live-trainers") == ["1 committed · 0 revealed"]:
            break
        await asyncio.sleep(0.1)
    assert texts(user, "live-trainers") == [f"{w.f.fed.round(w.f.task_id, 3).committed} committed · 0 revealed"]


async def test_contributions_filter_by_trainer_and_show_the_rejection_reason(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/contributions")
    await see(user, "contributions")
    rows = table_rows(user, "contributions")
    assert len(rows) == 6 and texts(user, "page-info") == ["1–6 of 6"]
    hostile = w.f.people.trainers[2].address
    user.find(marker="filter-trainer").type(hostile)
    user.find(marker="apply-filters").click()
    await page_info_becomes(user, "1–2 of 2")
    rows = table_rows(user, "contributions")
    assert {r["trainer"] for r in rows} == {hostile.lower()} and len(rows) == 2
    rejected = next(r for r in rows if r["round"] == 1)
    assert rejected["outcome"] == "rejected" and rejected["reason"].startswith("not_safetensors: ")
    assert rejected["reward"].startswith("0.00 FED")
    assert rejected["epsilon"] == "-"  # not a model file: what privacy it had is unknown
    accepted = next(r for r in rows if r["round"] == 2)
    assert accepted["outcome"] == "accepted" and accepted["score"] != "-" and accepted["reason"] == ""
    assert accepted["epsilon"] == "∞ (no DP)"  # trained without DP-SGD: no privacy guarantee, said plainly

    user.find(marker="filter-trainer").clear()
    user.find(marker="filter-outcome").click()
    user.find("rejected").click()
    user.find(marker="apply-filters").click()
    await page_info_becomes(user, "1–1 of 1")
    rows = table_rows(user, "contributions")
    assert [(r["round"], r["trainer"]) for r in rows] == [(1, hostile.lower())]


async def test_contributions_filter_by_task_and_round(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/contributions")
    await see(user, "contributions")
    user.find(marker="filter-task").type(str(w.f.task_id))
    user.find(marker="filter-round").type("2")
    trainers = {t.lower() for t in w.f.fed.round_trainers(w.f.task_id, 2)}
    user.find(marker="apply-filters").click()
    await page_info_becomes(user, f"1–{len(trainers)} of {len(trainers)}")
    rows = table_rows(user, "contributions")
    assert {(r["task"], r["round"]) for r in rows} == {(w.f.task_id, 2)} and {r["trainer"] for r in rows} == trainers
    assert texts(user, "page-info") == [f"1–{len(trainers)} of {len(trainers)}"]


async def test_contributions_pages_through_the_backend(user: User, dashboard_world, monkeypatch):
    monkeypatch.setattr(contributions_page, "PAGE_SIZE", 4)
    build_dashboard(dashboard_world.context())
    await user.open("/contributions")
    await see(user, "contributions")
    first = table_rows(user, "contributions")
    assert len(first) == 4 and texts(user, "page-info") == ["1–4 of 6"]
    user.find(marker="next-page").click()
    await page_info_becomes(user, "5–6 of 6")
    second = table_rows(user, "contributions")
    assert len(second) == 2 and texts(user, "page-info") == ["5–6 of 6"]
    everything = httpx.get(f"{dashboard_world.backend_url}/contributions", params={"limit": 500}).json()["items"]
    assert [r["key"] for r in first + second] == [f"{c['task_id']}-{c['round']}-{c['trainer']}" for c in everything]


async def test_contributions_bad_trainer_address_is_explained(user: User, dashboard_world):
    build_dashboard(dashboard_world.context())
    await user.open("/contributions")
    await see(user, "contributions")
    user.find(marker="filter-trainer").type("0x1234")
    user.find(marker="apply-filters").click()
    await see(user, "problem")
    assert "0x-prefixed 20-byte address" in texts(user, "problem")[0]


async def test_performance_shows_metrics_and_lineage_by_cid(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/performance")
    await see(user, "lineage")
    (accuracy_chart,) = user.find(marker="accuracy-chart").elements
    expected = [round(w.f.fed.round(w.f.task_id, n).accuracy_ppm / 1e4, 2) for n in (1, 2)]
    assert accuracy_chart.options["series"][0]["data"] == expected
    (loss_chart,) = user.find(marker="loss-chart").elements
    assert loss_chart.options["series"][0]["data"] == [
        round(w.f.fed.round(w.f.task_id, n).loss_micro / 1e6, 4) for n in (1, 2)]
    rows = table_rows(user, "lineage")
    initial = w.f.fed.task(w.f.task_id).spec.initial_model_cid
    assert rows[0]["child"] == initial
    for n in (1, 2):
        assert rows[n]["parent"] == rows[n - 1]["child"]
        assert rows[n]["child"] == w.f.fed.round(w.f.task_id, n).result_cid
    assert rows[3]["round"] == "3" and rows[3]["child"] == "-"  # the open round has no result yet


async def test_unknown_task_and_backend_down_give_clear_messages(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/performance?task=999")
    await see(user, "problem")
    assert "task 999 is not known" in texts(user, "problem")[0]
    await see(user, "lineage")  # the page still renders the latest task


async def test_backend_down_keeps_the_live_view(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context(backend_url=f"http://127.0.0.1:{free_port()}"))  # nothing listens there
    await user.open("/")
    await see(user, "problem")
    assert "history unavailable" in texts(user, "problem")[0] and "not reachable" in texts(user, "problem")[0]
    assert texts(user, "live-round") == ["3"]  # the chain part still works
    for path in ("/contributions", "/economics", "/performance", "/governance"):
        await user.open(path)
        await see(user, "problem")
        assert "not reachable" in texts(user, "problem")[0], path


async def test_economics_totals_equal_the_chain(user: User, dashboard_world):
    w = dashboard_world
    build_dashboard(w.context())
    await user.open("/economics")
    await see(user, "rewards-per-trainer")
    fed = w.f.fed
    supply = int(fed.token.totalSupply())
    staked = sum(int(fed.staking.stakeOf(a.address)) for a in [*w.f.people.aggregators, *w.f.people.trainers])
    assert texts(user, "stat-supply") == [fed_text(supply)]
    assert texts(user, "stat-staked") == [fed_text(staked)]
    (per_round,) = user.find(marker="rewards-per-round").elements
    budgets = per_round.options["series"][0]["data"]
    assert budgets == [round(int(fed.round(w.f.task_id, n).round_budget) / ONE_TOKEN, 2) for n in (1, 2, 3)]
    (per_trainer,) = user.find(marker="rewards-per-trainer").elements
    assert len(per_trainer.options["series"][0]["data"]) == 3


# (path, screenshot name, text that shows once the page's data has arrived)
PAGE_CHECKS = (("/", "overview", "Phase ends in"), ("/performance", "performance", "Model lineage"),
               ("/contributions", "contributions", "1–6 of 6"), ("/economics", "economics", "Total supply"),
               ("/governance", "governance", "Raise the trainer stake floor to 150 FED"))


@pytest.mark.usefixtures("require_chromium")
def test_every_page_renders_in_chromium_with_a_screenshot(screen: Screen, dashboard_world):
    """Real Chromium opens every page; a screenshot of each goes to screenshots/<pid>/dashboard-<page>.png."""
    build_dashboard(dashboard_world.context())
    screen.selenium.set_window_size(1400, 1100)
    for path, name, loaded in PAGE_CHECKS:
        screen.open(path, timeout=30)
        screen.wait_for(loaded)
        screen.should_not_contain("unavailable")
        screen.wait(1.0)  # let the charts finish their entry animation
        screen.shot(f"dashboard-{name}", failed=False)
        assert (screen.SCREENSHOT_DIR / f"dashboard-{name}.png").stat().st_size > 10_000


def test_fedchain_dashboard_command_serves_every_page(dashboard_world):
    """`fedchain dashboard` as a user starts it: the recorded deployment, the chain from APE_FOUNDRY_HOST."""
    from tests.support.cli import BIN, REPO, cli_env

    port = free_port()
    proc = subprocess.Popen([str(BIN / "fedchain"), "dashboard", "--port", str(port), "--backend-url",
                             dashboard_world.backend_url, "--network", "ethereum:local:foundry"],
                            cwd=REPO, env=cli_env(dashboard_world.home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: proc.poll() is None and httpx.get(base + "/", timeout=10).status_code == 200, timeout=90)
        for path, title in PAGES:
            page = httpx.get(base + path, timeout=30)
            assert page.status_code == 200 and f"fedchain · {title}" in page.text, path
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"fedchain dashboard on http://127.0.0.1:{port}" in err


def test_fedchain_dashboard_without_a_deployment_says_what_to_do(tmp_path):
    from tests.support.cli import BIN, REPO, cli_env

    proc = subprocess.run([str(BIN / "fedchain"), "dashboard", "--port", str(free_port())], cwd=REPO,
                          env=cli_env(tmp_path / "empty-home"), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no fedchain deployment recorded for ethereum:local" in proc.stderr and "fedchain demo" in proc.stderr


async def test_governance_without_a_dao_says_so(user: User, dashboard_world):
    w = dashboard_world
    ungoverned = dataclasses.replace(w.deployment, governor=None, timelock=None)
    build_dashboard(DashboardContext(w.context().config, ungoverned))
    await user.open("/governance")
    await see(user, "no-dao")
    await user.should_not_see(marker="proposal-votes")


async def test_a_failing_wallet_part_leaves_the_page_readable(user: User, dashboard_world, monkeypatch, caplog):
    from frontend import wallet_ui

    def broken(ctx):  # noqa: ANN001, ANN202
        raise RuntimeError("wallet exploded")

    monkeypatch.setattr(wallet_ui, "account_panel", broken)
    build_dashboard(dashboard_world.context())
    await user.open("/economics")
    await see(user, "stat-supply")
    await see(user, "problem")
    assert texts(user, "problem") == ["wallet controls unavailable: RuntimeError"]
    assert any("wallet_ui.account_panel failed" in r.getMessage() for r in caplog.records)
    caplog.clear()  # the logged error is the expected one

"""Dashboard fixtures: one governed federation per module on the test's anvil (2 finished rounds, one rejected
update, round 3 open for commits, one active proposal with votes), indexed and served by the real backend over HTTP
on loopback, and a DashboardContext pointing at both."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from ape import chain, networks

TESTS = Path(__file__).resolve().parents[1]

from backend.app import BackendConfig, create_app  # noqa: E402
from fedchain.ape import governance as gov  # noqa: E402
from fedchain.ape.chain import network_key
from frontend.context import DashboardConfig, DashboardContext  # noqa: E402
from tests.support.backend import new_indexer, run_honest_round, run_round_with_rejection
from tests.support.federation import Federation, build_federation
from tests.support.net import free_port, wait_for

PROPOSAL_DESCRIPTION = "Raise the trainer stake floor to 150 FED"


@dataclass
class DashboardWorld:
    """What the dashboard tests read: the federation (ape handles), the backend's URL and the dashboard context."""

    f: Federation
    home: Path
    backend_url: str
    deployment: Deployment
    proposal_id: int
    proposal_description: str = PROPOSAL_DESCRIPTION

    def context(self, backend_url: str | None = None) -> DashboardContext:
        """A dashboard context on the test's anvil and (by default) the served backend."""
        config = DashboardConfig(rpc_url=networks.provider.uri, backend_url=backend_url or self.backend_url)
        return DashboardContext(config, self.deployment)


class BackendServer:
    """The real backend app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, database_url: str):
        app = create_app(BackendConfig(database_url=database_url, run_indexer=False, rpc_url=networks.provider.uri,
                                       rate_limit_per_minute=0))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="dashboard-test-backend", daemon=True)

    def __enter__(self) -> BackendServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def open_proposal(f: Federation) -> int:
    """A parameter-change proposal by the sponsor, voting open, two trainers voted (for, against)."""
    actions = gov.parameter_actions(f.fed, {"minTrainerStake": "150"})
    proposal_id = gov.propose(f.fed, f.people.sponsor, actions, PROPOSAL_DESCRIPTION)
    status = gov.proposal_status(f.fed, proposal_id)
    chain.mine(timestamp=max(status["snapshot"] + 1, int(chain.blocks.head.timestamp) + 1))
    gov.vote(f.fed, f.people.trainers[0], proposal_id, "for", reason="more skin in the game")
    gov.vote(f.fed, f.people.trainers[1], proposal_id, "against")
    return proposal_id


@pytest.fixture(scope="module")
def dashboard_world(tmp_path_factory) -> DashboardWorld:
    """Built once per module (ape reverts the chain between tests, not the module's federation)."""
    root = tmp_path_factory.mktemp("dashboard")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDCHAIN_HOME", str(home))
        chain.mine(timestamp=max(int(time.time()), int(chain.blocks.head.timestamp)) + 1)
        f = build_federation(home, trainers=3, rounds=3, governance=True)
        run_round_with_rejection(f)
        run_honest_round(f, 2)  # round 3 is now open for trainer commits
        proposal_id = open_proposal(f)
        url = f"sqlite:///{root / 'indexed.sqlite3'}"
        new_indexer(url, f.store).catch_up()
        deployment = Deployment.load(network_key())
        assert deployment is not None
        with BackendServer(url) as backend:
            yield DashboardWorld(f, home, backend.url, deployment, proposal_id)

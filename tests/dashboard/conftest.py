"""Dashboard fixtures: one governed federation per module on the test's anvil (2 finished rounds, one rejected
update, round 3 open for commits, one active proposal with votes), indexed and served by the real backend over HTTP
on loopback, and a DashboardContext pointing at both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from ape import chain, networks

from fedchain.ape import governance as gov
from fedchain.deployment import Deployment
from frontend.context import DashboardConfig, DashboardContext
from tests.support.backend import BackendServer, indexed_world
from tests.support.chain import resync_chain_clock_after_test as pytest_runtest_teardown  # noqa: F401 - a hook
from tests.support.federation import Federation

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
    opened: list[int] = []
    with (indexed_world(tmp_path_factory.mktemp("dashboard"), rounds=3, governance=True,
                        before_indexing=lambda f: opened.append(open_proposal(f))) as world,
          BackendServer(world.url) as backend):  # round 3 is open for trainer commits
        yield DashboardWorld(world.f, world.home, backend.url, world.f.fed.deployment, opened[0])

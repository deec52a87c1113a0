"""End-to-end fixtures."""

from __future__ import annotations

import pytest

from tests.support.chain import sync_chain_clock
from tests.support.federation import Federation, build_federation


@pytest.fixture(autouse=True)
def chain_clock_at_wall_clock():
    """Snapshot reverts by earlier tests can leave anvil's clock behind the wall clock, which trainers compare
    phase deadlines with; bring the chain's clock up to now before each test."""
    sync_chain_clock()


@pytest.fixture
def federation(fedchain_home) -> Federation:
    """3 trainers, 2 rounds."""
    return build_federation(fedchain_home, trainers=3, rounds=2)

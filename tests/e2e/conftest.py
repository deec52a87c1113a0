"""End-to-end fixtures."""

from __future__ import annotations

import time

import pytest
from ape import chain

from tests.support.federation import Federation, build_federation


@pytest.fixture(autouse=True)
def chain_clock_at_wall_clock():
    """Snapshot reverts by earlier tests can leave anvil's clock behind the wall clock, which trainers compare
    phase deadlines with (``chain_now``); bring the chain's clock up to now before each test."""
    chain.mine(timestamp=max(int(time.time()), int(chain.blocks.head.timestamp)) + 1)


@pytest.fixture
def fedchain_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def federation(fedchain_home) -> Federation:
    """3 trainers, 2 rounds."""
    return build_federation(fedchain_home, trainers=3, rounds=2)

"""End-to-end fixtures."""

from __future__ import annotations

import pytest
from e2e_lib import Federation, build_federation


@pytest.fixture
def fedchain_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def federation(fedchain_home) -> Federation:
    """3 trainers, 2 rounds."""
    return build_federation(fedchain_home, trainers=3, rounds=2)

"""Fixtures for the DAO tests: a full fedchain deployment handed to the Governor + Timelock."""

from __future__ import annotations

import pytest

from tests.support.governance import Dao, build_dao


@pytest.fixture(scope="module")
def dao(accounts, chain) -> Dao:
    """Deployed once per module (ape reverts the chain between tests)."""
    return build_dao(accounts, save=False)

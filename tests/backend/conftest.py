"""Backend fixtures: one federation per module on the test's anvil (2 rounds, one rejected update, one unclaimed
reward), indexed into SQLite."""

from __future__ import annotations

import pytest

from tests.support.backend import IndexedWorld, indexed_world
from tests.support.chain import resync_chain_clock_after_test as pytest_runtest_teardown  # noqa: F401 - a hook

World = IndexedWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> IndexedWorld:
    def leave_two_rewards_unclaimed(f) -> None:  # noqa: ANN001
        f.trainers[0].claim(f.task_id)  # trainers 2 and 3 leave their round-2 rewards unclaimed

    with indexed_world(tmp_path_factory.mktemp("backend"), before_indexing=leave_two_rewards_unclaimed) as w:
        yield w

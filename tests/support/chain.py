"""The test chain's clock: anvil's snapshot reverts (ape's test isolation) wind it back, while trainers and the
dashboard compare deadlines with the wall clock."""

from __future__ import annotations

import time

import pytest
from ape import chain, networks


def sync_chain_clock() -> None:
    """Mine a block at the wall clock (or one second after the head, if the chain is ahead)."""
    chain.mine(timestamp=max(int(time.time()), int(chain.blocks.head.timestamp)) + 1)


def warp(seconds: int) -> None:
    """Move the chain's clock forward and mine a block at the new time."""
    chain.mine(timestamp=int(chain.blocks.head.timestamp) + seconds)


@pytest.hookimpl(hookwrapper=True)
def resync_chain_clock_after_test(item, nextitem):  # noqa: ANN001, ANN201 - a pytest hook
    """After each test (and its isolation revert) set anvil's clock back to now, so long tests do not leave later
    modules' chain clock minutes behind the wall clock."""
    yield
    if networks.active_provider is None:
        return
    now = int(time.time())
    if int(chain.blocks.head.timestamp) < now:
        networks.provider.make_request("evm_setTime", [now])

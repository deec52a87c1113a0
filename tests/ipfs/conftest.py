"""Fixtures: real js-ipfs nodes (one shared, one pair connected over bitswap), started once per session."""

from __future__ import annotations

import pytest

from fedchain.store.kubo import KuboStore
from tests.support.ipfs import IpfsNode
from tests.support.services import require_js_ipfs


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory):
    """A real js-ipfs node serving the Kubo RPC API on a loopback port."""
    require_js_ipfs()
    node = IpfsNode(tmp_path_factory.mktemp("ipfs") / "node").start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def ipfs_pair(tmp_path_factory):
    """(trainer's node, pinning node): the second dials the first, so it can fetch over bitswap."""
    require_js_ipfs()
    base = tmp_path_factory.mktemp("ipfs-pair")
    first = IpfsNode(base / "trainer").start()
    second = IpfsNode(base / "pinner", peers=[first.swarm[0]]).start()
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture
def kubo_store(ipfs_node):
    with KuboStore(ipfs_node.api_url, fetch_timeout=5, retry_seconds=5) as store:
        yield store

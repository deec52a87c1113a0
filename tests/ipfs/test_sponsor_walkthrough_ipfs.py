"""The sponsor's walkthrough with every file moving through real js-ipfs nodes (Kubo RPC API) instead of the local
store, one node per organisation: the sponsor and trainer 1 use one node, the aggregator and trainer 2 the other,
and files cross between them over bitswap. CLI only."""

from __future__ import annotations

from tests.e2e.test_sponsor_cli import walkthrough


def test_the_walkthrough_with_an_ipfs_node_per_organisation(fedchain_home, tmp_path, ipfs_pair):
    first, second = ipfs_pair
    a, b = f"kubo:{first.api_url}", f"kubo:{second.api_url}"
    walkthrough(fedchain_home, tmp_path, {"sponsor": a, "trainer1": a, "aggregator": b, "trainer2": b})
    local = fedchain_home / "store" / "objects"
    assert not local.is_dir() or not any(local.iterdir())  # nothing went through the local store

"""KuboStore against a real js-ipfs node: CIDs equal the embedded store's, checks, pins, errors, retries."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import tracemalloc

import httpx
import numpy as np
import pytest

from fedchain.cid import CHUNK_SIZE, MAX_LINKS, cid_for_bytes
from fedchain.store import (
    ContentNotFound,
    ContentTooLarge,
    DigestMismatch,
    LocalContentStore,
    StoreUnavailable,
    open_store,
)
from fedchain.store.kubo import KuboStore


def _bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 17])
def test_node_cids_equal_embedded_store(kubo_store, tmp_path, size):
    data = _bytes(size, seed=size)
    local = LocalContentStore(tmp_path / "local")
    cid = kubo_store.put(data)
    assert cid == local.put(data) == cid_for_bytes(data)
    assert cid.startswith("bafk" if size <= CHUNK_SIZE else "bafy")
    assert kubo_store.get(cid, sha256=_sha(data), max_bytes=max(size, 1)) == data


def test_multi_level_dag_streams_both_ways(kubo_store, tmp_path):
    """More than 174 chunks: the node builds a two-level DAG; upload and download both stream via files."""
    size = (MAX_LINKS + 3) * CHUNK_SIZE + 12345  # ~46 MB
    src = tmp_path / "big.bin"
    with src.open("wb") as fh:
        for i in range(0, size, 1 << 22):
            fh.write(_bytes(min(1 << 22, size - i), seed=i))
    local = LocalContentStore(tmp_path / "local")
    digest = hashlib.sha256(src.read_bytes()).digest()
    tracemalloc.start()
    try:
        cid = kubo_store.put_file(src)
        out = kubo_store.get_file(cid, tmp_path / "copy.bin", sha256=digest, max_bytes=size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size // 4, f"{peak} bytes held for a {size}-byte file: not streaming"
    assert cid == local.put_file(src)
    assert out.stat().st_size == size
    assert hashlib.sha256(out.read_bytes()).digest() == digest
    with pytest.raises(ContentTooLarge):
        kubo_store.get_file(cid, tmp_path / "small.bin", max_bytes=size - 1)
    assert not (tmp_path / "small.bin").exists()


def test_digest_mismatch_and_size_limit_rejected(kubo_store):
    data = _bytes(1000, seed=1)
    cid = kubo_store.put(data)
    with pytest.raises(DigestMismatch):
        kubo_store.get(cid, sha256=_sha(b"other bytes"), max_bytes=1000)
    with pytest.raises(ContentTooLarge):
        kubo_store.get(cid, max_bytes=999)
    with pytest.raises(ValueError):
        kubo_store.get("not-a-cid", max_bytes=10)


def test_download_verifier_threads_end_with_their_download(kubo_store):
    """Digest and CID are computed in a worker thread beside the download: it ends on success and on errors."""
    data = _bytes(3 * CHUNK_SIZE + 5, seed=2)
    cid = kubo_store.put(data)
    assert kubo_store.get(cid, sha256=_sha(data), max_bytes=len(data)) == data
    with pytest.raises(DigestMismatch):
        kubo_store.get(cid, sha256=_sha(b"other"), max_bytes=len(data))
    with pytest.raises(ContentTooLarge):
        kubo_store.get(cid, max_bytes=len(data) - 1)
    assert not [t for t in threading.enumerate() if t.name == "kubo-verify" and t.is_alive()]


def test_bytes_altered_in_transit_are_rejected(ipfs_node):
    """A node (or proxy) that answers `cat` with other bytes is caught by recomputing the CID."""
    real = httpx.HTTPTransport()

    class Tamper(httpx.BaseTransport):
        def handle_request(self, request):
            response = real.handle_request(request)
            if request.url.path.endswith("/cat"):
                body = bytearray(response.read())
                body[0] ^= 0xFF
                return httpx.Response(response.status_code, headers=response.headers, content=bytes(body))
            return response

    data = _bytes(70000, seed=2)
    with KuboStore(ipfs_node.api_url, transport=Tamper(), retry_seconds=1) as tampered:
        cid = tampered.put(data)
        with pytest.raises(DigestMismatch, match="CID"):
            tampered.get(cid, max_bytes=len(data))
        with pytest.raises(DigestMismatch):  # the digest check alone catches it too
            KuboStore(ipfs_node.api_url, transport=Tamper(), verify_cids=False).get(
                cid, sha256=_sha(data), max_bytes=len(data))


def test_missing_content_is_not_found_after_node_timeout(ipfs_node):
    with KuboStore(ipfs_node.api_url, fetch_timeout=2, retry_seconds=1) as store:
        missing = cid_for_bytes(b"never added anywhere " + _bytes(16, seed=3))
        assert not store.has(missing)
        with pytest.raises(ContentNotFound):
            store.get(missing, max_bytes=100)
        with pytest.raises(ContentNotFound):
            store.pin(missing)


def test_pins(kubo_store):
    cid = kubo_store.put(_bytes(300000, seed=4))
    assert kubo_store.has(cid)
    kubo_store.pin(cid)
    assert cid in kubo_store.pins() and kubo_store.is_pinned(cid)
    assert all(p.startswith("b") for p in kubo_store.pins())  # base32 CIDv1 even for the node's CIDv0 pins
    kubo_store.unpin(cid)
    kubo_store.unpin(cid)  # not pinned: a no-op
    assert cid not in kubo_store.pins() and not kubo_store.is_pinned(cid)


def test_node_info(kubo_store, ipfs_node):
    assert kubo_store.version()["Version"]
    assert kubo_store.node_id()["ID"] == ipfs_node.peer_id


def test_unreachable_node_raises_store_unavailable_after_retries(caplog):
    from tests.support.net import free_port

    store = KuboStore(f"http://127.0.0.1:{free_port()}", retry_seconds=1)
    with caplog.at_level(logging.WARNING, logger="fedchain.store.kubo"), pytest.raises(StoreUnavailable):
        store.put(b"x")
    assert "retrying" in caplog.text


def test_node_down_for_a_while_calls_retry_until_it_returns(tmp_path, caplog):
    from tests.support.ipfs import IpfsNode

    node = IpfsNode(tmp_path / "flaky").start()
    try:
        data = _bytes(400000, seed=5)
        store = KuboStore(node.api_url, retry_seconds=60)
        cid = store.put(data)
        node.stop()
        restart = threading.Timer(3.0, node.start)
        restart.start()
        with caplog.at_level(logging.WARNING, logger="fedchain.store.kubo"):
            assert store.get(cid, sha256=_sha(data), max_bytes=len(data)) == data  # served from the node's repo
        restart.join()
        assert "retrying" in caplog.text
    finally:
        node.stop()


def test_open_store_specs_and_env_precedence(ipfs_node, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path))
    monkeypatch.delenv("FEDCHAIN_IPFS_API", raising=False)
    assert isinstance(open_store(None), LocalContentStore)
    store = open_store(f"kubo:{ipfs_node.api_url}")
    assert isinstance(store, KuboStore) and store.api_url == ipfs_node.api_url
    monkeypatch.setenv("FEDCHAIN_IPFS_API", ipfs_node.api_url + "/api/v0")
    from_env = open_store(None)
    assert isinstance(from_env, KuboStore) and from_env.api_url == ipfs_node.api_url
    assert isinstance(open_store("local"), LocalContentStore)  # an explicit spec wins over the env
    with pytest.raises(ValueError):
        open_store("kubo:ftp://example")


def test_pinning_node_fetches_over_bitswap(ipfs_pair):
    trainer_node, pinning_node = ipfs_pair
    data = _bytes(3 * CHUNK_SIZE + 99, seed=int(time.time()))  # new bytes each run: never in a repo already
    with KuboStore(trainer_node.api_url) as trainer, KuboStore(pinning_node.api_url, fetch_timeout=30) as pinner:
        cid = trainer.put(data)
        assert not pinner.has(cid)
        pinner.pin(cid)  # the pinning node has only the CID: it fetches every block from its peer
        assert pinner.is_pinned(cid) and pinner.has(cid)
        assert pinner.get(cid, sha256=_sha(data), max_bytes=len(data)) == data

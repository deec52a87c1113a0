"""The embedded content store and the ``open_store`` factory."""

from __future__ import annotations

import hashlib
import multiprocessing
import tracemalloc
from pathlib import Path

import pytest

from fedchain.cid import cid_for_bytes
from fedchain.store import (
    ContentError,
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    DigestMismatch,
    LocalContentStore,
    StoreUnavailable,
    open_store,
)

HELLO = b"hello world\n"
HELLO_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
BIG = bytes((i * 31 + 7) % 251 for i in range(262144 * 3 + 5))  # a multi-chunk (dag-pb root) file


@pytest.fixture
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "store")


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_put_get_round_trip(store: LocalContentStore) -> None:
    assert store.put(HELLO) == HELLO_CID
    assert store.has(HELLO_CID)
    assert store.get(HELLO_CID, max_bytes=100) == HELLO
    assert store.get(HELLO_CID, sha256=_sha(HELLO), max_bytes=len(HELLO)) == HELLO


def test_multi_chunk_content_uses_root_cid(store: LocalContentStore) -> None:
    cid = store.put(BIG)
    assert cid == cid_for_bytes(BIG) and cid.startswith("bafybei")
    assert store.get(cid, sha256=_sha(BIG), max_bytes=len(BIG)) == BIG


def test_put_is_idempotent(store: LocalContentStore) -> None:
    assert store.put(HELLO) == store.put(HELLO)
    assert sorted(p.name for p in (store.root / "objects").iterdir()) == [HELLO_CID]
    assert list((store.root / "tmp").iterdir()) == []


def test_put_file_streams_and_matches_put(store: LocalContentStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(BIG)
    cid = store.put_file(src)
    assert cid == cid_for_bytes(BIG)
    assert store.get(cid, max_bytes=len(BIG)) == BIG
    assert store.put_file(str(src)) == cid
    assert list((store.root / "tmp").iterdir()) == []


def test_put_file_missing_source_leaves_no_temp(store: LocalContentStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "nope")
    assert list((store.root / "tmp").iterdir()) == []


def test_get_accepts_other_cid_forms(store: LocalContentStore) -> None:
    store.put(HELLO)
    assert store.get("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY", max_bytes=100) == HELLO
    assert store.has(HELLO_CID.upper())


def test_missing_content(store: LocalContentStore) -> None:
    assert not store.has(HELLO_CID)
    with pytest.raises(ContentNotFound):
        store.get(HELLO_CID, max_bytes=100)


def test_garbage_cid_is_a_value_error(store: LocalContentStore) -> None:
    for bad in ("../../etc/passwd", "hello", ""):
        with pytest.raises(ValueError):
            store.get(bad, max_bytes=100)
        with pytest.raises(ValueError):
            store.has(bad)


def test_too_large_is_refused_before_reading(store: LocalContentStore) -> None:
    cid = cid_for_bytes(b"pretend")
    with (store.root / "objects" / cid).open("wb") as fh:  # a sparse 8 GiB file under a valid name
        fh.truncate(8 * 1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(ContentTooLarge):
            store.get(cid, max_bytes=1024**3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_size_limit_is_inclusive(store: LocalContentStore) -> None:
    store.put(HELLO)
    assert store.get(HELLO_CID, max_bytes=len(HELLO)) == HELLO
    with pytest.raises(ContentTooLarge):
        store.get(HELLO_CID, max_bytes=len(HELLO) - 1)


def test_digest_mismatch(store: LocalContentStore) -> None:
    store.put(HELLO)
    with pytest.raises(DigestMismatch):
        store.get(HELLO_CID, sha256=_sha(b"other"), max_bytes=100)


def test_corrupted_file_is_caught_by_digest(store: LocalContentStore) -> None:
    store.put(HELLO)
    (store.root / "objects" / HELLO_CID).write_bytes(b"hello world!")
    with pytest.raises(DigestMismatch):
        store.get(HELLO_CID, sha256=_sha(HELLO), max_bytes=100)


def test_bad_arguments(store: LocalContentStore) -> None:
    store.put(HELLO)
    with pytest.raises(ValueError):
        store.get(HELLO_CID, sha256=b"short", max_bytes=100)
    with pytest.raises(ValueError):
        store.get(HELLO_CID, max_bytes=-1)
    with pytest.raises(TypeError):
        store.get(HELLO_CID)  # type: ignore[call-arg]  # max_bytes is required


def test_pins(store: LocalContentStore) -> None:
    with pytest.raises(ContentNotFound):
        store.pin(HELLO_CID)
    big = store.put(BIG)
    store.put(HELLO)
    assert store.pins() == []
    store.pin(HELLO_CID)
    store.pin(HELLO_CID)
    store.pin(big)
    assert store.pins() == sorted([HELLO_CID, big])
    store.unpin(big)
    store.unpin(big)
    assert store.pins() == [HELLO_CID]
    assert store.has(big)  # unpinning does not delete


def test_store_shared_by_two_instances(tmp_path: Path) -> None:
    a = LocalContentStore(tmp_path / "s")
    b = LocalContentStore(tmp_path / "s")
    cid = a.put(HELLO)
    a.pin(cid)
    assert b.get(cid, max_bytes=100) == HELLO
    assert b.pins() == [cid]


def _writer(root: str, n: int) -> list[str]:
    s = LocalContentStore(root)
    return [s.put(BIG[: 262144 + k]) for k in range(n)]


def test_concurrent_writers_from_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_writer, [(root, 4)] * 3)
    assert results[0] == results[1] == results[2]
    store = LocalContentStore(root)
    for k, cid in enumerate(results[0]):
        assert store.get(cid, sha256=_sha(BIG[: 262144 + k]), max_bytes=len(BIG)) == BIG[: 262144 + k]
    assert list((Path(root) / "tmp").iterdir()) == []


def test_error_hierarchy() -> None:
    for cls in (ContentNotFound, DigestMismatch, ContentTooLarge, StoreUnavailable):
        assert issubclass(cls, ContentError)
    assert issubclass(LocalContentStore, ContentStore)
    with pytest.raises(TypeError):
        ContentStore()  # type: ignore[abstract]


def test_context_manager(tmp_path: Path) -> None:
    with LocalContentStore(tmp_path / "s") as s:
        assert s.put(b"x") == cid_for_bytes(b"x")


def test_open_store_default_uses_fedchain_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    for spec in (None, "local"):
        s = open_store(spec)
        assert isinstance(s, LocalContentStore)
        assert s.root == tmp_path / "home" / "store"
    s.put(HELLO)
    assert (tmp_path / "home" / "store" / "objects" / HELLO_CID).is_file()


def test_open_store_home_defaults_to_dot_fedchain(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FEDCHAIN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    s = open_store(None)
    assert isinstance(s, LocalContentStore)
    assert s.root == tmp_path / ".fedchain" / "store"


def test_open_store_with_path(tmp_path: Path) -> None:
    s = open_store(f"local:{tmp_path / 'elsewhere'}")
    assert isinstance(s, LocalContentStore)
    assert s.root == tmp_path / "elsewhere"


@pytest.mark.parametrize("spec", ["", "local:", "kubo", "http://127.0.0.1:5001", "LOCAL", "s3://bucket"])
def test_open_store_rejects_unknown_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="local:<path>"):
        open_store(spec)

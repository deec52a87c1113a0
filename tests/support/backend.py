"""Helpers for the backend (and dashboard) tests: indexers on the test's anvil, table snapshots, a throwaway Postgres
server, the rounds the fixtures play, and the hook that keeps anvil's clock at the wall clock."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from typing import Any

import pytest
from ape import chain, networks
from sqlalchemy import Engine, select

from backend.db import make_engine, migrate
from backend.indexer import Indexer, IndexerConfig
from backend.models import Account, ChainEvent, Contribution, Proposal, Round, Setting, Task, Vote
from fedchain.ape.chain import network_key
from fedchain.codec import sha256
from fedchain.commitments import trainer_commitment
from fedchain.protocol import Phase
from tests.support.federation import Federation, advance_to

COMPARED_TABLES = (Task, Round, Contribution, Account, Setting, Proposal, Vote)


def new_indexer(url: str, store: Any, **config: Any) -> Indexer:
    engine = make_engine(url)
    migrate(engine)
    config.setdefault("confirmations", 0)
    cfg = IndexerConfig(rpc_url=networks.provider.uri, network=network_key(), **config)
    return Indexer(engine, cfg, store=store)


def rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every read-model row as plain tuples, sorted, for comparing two databases."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for model in COMPARED_TABLES:
            table = model.__table__
            out[table.name] = sorted(tuple(r) for r in conn.execute(select(table)))
        events = ChainEvent.__table__
        columns = [c for c in events.c if c.name != "id"]
        out["events"] = sorted(tuple(r) for r in conn.execute(select(*columns)))
    return out


def chain_log_count(indexer: Indexer, to_block: int) -> int:
    """How many logs the deployment's contracts emitted, straight from the node."""
    source = indexer.source
    assert source is not None
    logs = source.w3.eth.get_logs({"fromBlock": source.deployment.block, "toBlock": to_block,
                                   "address": list(source.deployment.addresses.values())})
    return len(logs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server():
    """A fresh Postgres cluster on a free loopback port; yields a SQLAlchemy URL. Runs as the `postgres` OS user
    when we are root (postgres refuses to run as root)."""
    bindir = postgres_bin()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="fedchain-pg-"))
    data, port = root / "data", free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        root.chmod(0o700)
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-U", "fedchain", "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "fedchain", "fedchain")
        yield f"postgresql://fedchain@127.0.0.1:{port}/fedchain"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def wait_for(predicate, timeout: float = 60, interval: float = 0.2) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the server may not be up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


SALT = b"\x22" * 32


@pytest.hookimpl(hookwrapper=True)
def resync_chain_clock_after_test(item, nextitem):  # noqa: ANN001, ANN201 - a pytest hook
    """Anvil's evm_revert (ape's test isolation) winds the chain's clock back by the time since the snapshot, so
    long backend tests would leave later modules' chain clock minutes behind the wall clock that trainer nodes
    compare deadlines with. After each backend test (and its isolation revert) set the clock back to now."""
    yield
    if networks.active_provider is None:
        return
    now = int(time.time())
    if int(chain.blocks.head.timestamp) < now:
        networks.provider.make_request("evm_setTime", [now])


def run_round_with_rejection(f: Federation) -> None:
    """Round 1: two honest trainers, one that reveals bytes that are not a model (rejected: not_safetensors)."""
    honest, hostile = f.trainers[:2], f.people.trainers[2]
    for t in honest:
        t.train_and_commit(f.task_id)
    junk = b"not a model at all" * 8
    cid = f.store.put(junk)
    commitment = trainer_commitment(hostile.address, f.task_id, 1, sha256(junk), 40, SALT)
    f.fed.tasks.commitUpdate(f.task_id, commitment, sender=hostile)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(f.task_id, 1)
    f.fed.tasks.revealUpdate(f.task_id, cid, sha256(junk), 40, SALT, sender=hostile)
    while f.fed.task(f.task_id).currentRound == 1:
        assert f.aggregator.step(f.task_id) is not None
    for t in honest:
        t.claim(f.task_id)


def run_honest_round(f: Federation, round_: int) -> None:
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    while f.fed.task(f.task_id).status == 1 and f.fed.task(f.task_id).currentRound == round_:
        assert f.aggregator.step(f.task_id) is not None

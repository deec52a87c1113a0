"""Helpers for the backend and dashboard tests: the indexed federation both build, indexers on the test's anvil,
table snapshots, a throwaway Postgres server and the rounds the fixtures play."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from ape import networks
from sqlalchemy import Engine, select

from backend.app import BackendConfig, create_app
from backend.db import make_engine, migrate
from backend.indexer import Indexer, IndexerConfig
from backend.models import Account, ChainEvent, Contribution, Proposal, Round, Setting, Task, Vote
from fedchain.ape.chain import network_key
from fedchain.codec import sha256
from fedchain.commitments import trainer_commitment
from fedchain.protocol import Phase, TaskStatus
from tests.support.chain import sync_chain_clock
from tests.support.federation import Federation, advance_to, build_federation
from tests.support.net import free_port, wait_for
from tests.support.services import require_postgres

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


@contextmanager
def postgres_server():
    """A fresh Postgres cluster on a free loopback port; yields a SQLAlchemy URL. Runs as the `postgres` OS user
    when we are root (postgres refuses to run as root)."""
    bindir = require_postgres()
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


SALT = b"\x22" * 32


def step_committee(f: Federation) -> bool:
    """One step of every aggregator node (a governed world has a drawn committee of three); whether any acted."""
    return any([node.step(f.task_id) is not None for node in f.aggregators])


def run_round_with_rejection(f: Federation) -> None:
    """Round 1: two honest trainers, one that reveals bytes that are not a model (rejected: not_safetensors)."""
    honest, hostile = f.trainers[:2], f.people.trainers[2]
    for t in honest:
        t.train_and_commit(f.task_id)
    junk = b"not a model at all" * 8
    cid = f.store.put(junk)
    commitment = trainer_commitment(hostile.address, f.task_id, 1, sha256(junk), 40, SALT)
    f.fed.tasks.commitUpdate(f.task_id, 1, commitment, sender=hostile)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(f.task_id, 1)
    f.fed.tasks.revealUpdate(f.task_id, cid, sha256(junk), 40, SALT, sender=hostile)
    while f.fed.task(f.task_id).current_round == 1:
        assert step_committee(f)
    for t in honest:
        t.claim(f.task_id)


def run_honest_round(f: Federation, round_: int) -> None:
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    while f.fed.task(f.task_id).status == TaskStatus.ACTIVE and f.fed.task(f.task_id).current_round == round_:
        assert step_committee(f)


@dataclass
class IndexedWorld:
    """A federation that played two rounds (round 1 with one rejected update), indexed into SQLite."""

    f: Federation
    indexer: Indexer
    url: str
    home: Path


@contextmanager
def indexed_world(root: Path, *, rounds: int = 2, governance: bool = False,
                  before_indexing: Any = None) -> Iterator[IndexedWorld]:
    """Build the world the backend and dashboard tests read, with ``FEDCHAIN_HOME`` under ``root``.

    Round 1 has a rejected update, round 2 is honest; ``before_indexing(f)`` runs last (e.g. open a proposal).
    """
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDCHAIN_HOME", str(home))
        sync_chain_clock()
        f = build_federation(home, trainers=3, rounds=rounds, governance=governance)
        run_round_with_rejection(f)
        run_honest_round(f, 2)
        if before_indexing is not None:
            before_indexing(f)
        url = f"sqlite:///{root / 'indexed.sqlite3'}"
        indexer = new_indexer(url, f.store)
        indexer.catch_up()
        yield IndexedWorld(f, indexer, url, home)


class BackendServer:
    """The real backend app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, database_url: str):
        app = create_app(BackendConfig(database_url=database_url, run_indexer=False, rpc_url=networks.provider.uri,
                                       rate_limit_per_minute=0))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="test-backend", daemon=True)

    def __enter__(self) -> BackendServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)

"""The indexer reads strangers' files (issue 15): a result or update file whose manifest is nested 100,000 deep,
holds a 5000-digit number or is not a model at all is recorded as unreadable, and indexing moves on."""

from __future__ import annotations

import struct

from sqlalchemy.orm import Session

from backend.db import make_engine, migrate
from backend.details import load_round_details
from backend.models import Contribution, Round, Task
from fedchain.codec import sha256
from fedchain.store.local import LocalContentStore


def _file(manifest_json: str) -> bytes:
    header = ('{"__metadata__": {"fedchain": ' + manifest_json + "}}").encode()
    return struct.pack("<Q", len(header)) + header


HOSTILE = {
    "deep": _file('"{\\"format\\": \\"fedchain-model/v1\\", \\"details\\": ' + "[" * 100_000 + "]" * 100_000 + '}"'),
    "digits": _file('"{\\"format\\": \\"fedchain-model/v1\\", \\"kind\\": \\"aggregate\\", \\"task_id\\": '
                    + "9" * 5000 + '}"'),
    "garbage": b"\xff" * 64,
}


def _round(session: Session, store: LocalContentStore, blob: bytes, update: bytes) -> Round:
    session.add(Task(task_id=1, sponsor="0x" + "1" * 40, status="active", architecture="mlp:4-2", strategy="fedavg",
                     initial_model_cid="c", global_model_cid="c", validation_cid="v", reward_budget_wei="1",
                     remaining_budget_wei="1", reclaimed_wei="0", num_rounds=1, current_round=1, min_trainers=1,
                     max_trainers=1, created_block=1, created_at=1))
    rnd = Round(task_id=1, round=1, phase="finalized", started_block=1, started_at=1, parent_model_cid="c",
                round_budget_wei="100", paid_wei="0", details_status="pending", committed=1, revealed=1,
                aggregators_committed=1, aggregators_revealed=1, result_cid=store.put(blob),
                result_digest="0x" + sha256(blob).hex(), scores_root="0x" + "00" * 32, total_weight="1")
    session.add(rnd)
    return _revealed(session, store, rnd, update)


def test_unreadable_manifests_are_recorded_and_indexing_moves_on(tmp_path):
    store = LocalContentStore(tmp_path / "store")
    for name, blob in HOSTILE.items():
        engine = make_engine(f"sqlite:///{tmp_path / name}.sqlite3")
        migrate(engine)
        with Session(engine) as session:
            rnd = _round(session, store, blob, blob)
            load_round_details(session, store, rnd, 1 << 22)  # no RecursionError, no ValueError
            assert rnd.details_status == "invalid", name
            failed = _round_failed(session, store, blob)
            load_round_details(session, store, failed, 1 << 22)
            assert failed.details_status == "ok"  # nothing readable to report, and no retry loop
            contribution = session.get(Contribution, (1, 2, "0x" + "2" * 40))
            assert contribution.local_dp is None and contribution.epsilon is None


def _round_failed(session: Session, store: LocalContentStore, update: bytes) -> Round:
    rnd = Round(task_id=1, round=2, phase="failed", started_block=2, started_at=2, parent_model_cid="c",
                round_budget_wei="0", paid_wei="0", details_status="pending", committed=1, revealed=1,
                aggregators_committed=0, aggregators_revealed=0)
    session.add(rnd)
    return _revealed(session, store, rnd, update)


def _revealed(session: Session, store: LocalContentStore, rnd: Round, update: bytes) -> Round:
    """Add one trainer's revealed update to ``rnd``; the round."""
    session.add(Contribution(task_id=rnd.task_id, round=rnd.round, trainer="0x" + "2" * 40, status="revealed",
                             committed_block=rnd.started_block, reward_wei="0", reward_tokens=0.0, claimed=False,
                             slashed_wei="0", samples=5, update_cid=store.put(update),
                             update_digest="0x" + sha256(update).hex()))
    session.flush()
    return rnd

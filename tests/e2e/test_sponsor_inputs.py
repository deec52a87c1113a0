"""A sponsor cannot create a task nobody could serve (issue 15): an initial model or a validation set that does
not decode, or does not fit the task's architecture, is refused before any transaction, with one line naming
the file and the problem; no task is created and no budget moves. A fitting spec goes through."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
import pytest

from fedchain.architectures import initial_tensors
from fedchain.cid import cid_for_bytes
from fedchain.codec import ModelManifest, encode_dataset, encode_model, sha256
from fedchain.errors import FedchainError
from fedchain.protocol import TaskStatus
from fedchain.taskspec import encode_strategy_params
from sponsor.tasks import create_task, reclaim
from tests.support.byzantine import federation
from tests.support.chain import warp


def _nested_dataset() -> bytes:
    """A dataset file whose safetensors header nests JSON 100,000 deep."""
    nested = "[" * 100_000 + "]" * 100_000
    header = json.dumps({"__metadata__": {"fedchain": "{}"}}).encode()[:-1] + b', "z": ' + nested.encode() + b"}"
    return struct.pack("<Q", len(header)) + header


def _sets(architecture: str, features: int) -> dict[str, bytes]:
    rows = np.zeros((6, features), np.float32)
    return {
        "labels out of range": encode_dataset(rows, np.array([0, 1, 2, 3, 4, 99]), "v"),
        "negative labels": encode_dataset(rows, np.array([0, 1, 2, 3, 4, -1]), "v"),
        "zero rows": encode_dataset(np.zeros((0, features), np.float32), np.zeros(0, np.int64), "v"),
        "wrong feature count": encode_dataset(np.zeros((6, features + 1), np.float32), np.arange(6), "v"),
        "NaN features": encode_dataset(np.full((6, features), np.nan, np.float32), np.arange(6), "v"),
        "Inf features": encode_dataset(np.full((6, features), np.inf, np.float32), np.arange(6), "v"),
        "nested JSON": _nested_dataset(),
        "not a dataset": encode_model(initial_tensors(architecture, 0), ModelManifest(kind="initial",
                                                                                       architecture=architecture)),
    }


def test_unservable_task_inputs_are_refused_before_any_transaction(fedchain_home):
    f = federation(fedchain_home, trainers=2)
    good = f.fed.task(f.task_id).spec
    features = int(good.architecture.split(":")[1].split("-")[0])
    count, balance = f.fed.task_count(), int(f.fed.token.balanceOf(f.people.sponsor.address))

    def refused(spec, *words: str, case: str = "") -> None:
        with pytest.raises(FedchainError) as info:
            create_task(f.fed, f.people.sponsor, spec, f.store)
        message = str(info.value)
        assert "\n" not in message and all(w in message for w in words), (case, message)

    for name, blob in _sets(good.architecture, features).items():
        spec = replace(good, validation_cid=f.store.put(blob), validation_digest=sha256(blob))
        refused(spec, "validation set", spec.validation_cid, case=name)
    # initial models: wrong shapes, float64, NaN, a dataset instead of a model
    tensors = initial_tensors(good.architecture, 1)
    first = sorted(tensors)[0]
    models = {
        "wrong shape": {**tensors, first: np.zeros((2, 2), np.float32)},
        "missing tensor": {k: v for k, v in tensors.items() if k != first},
        "NaN": {**tensors, first: np.full_like(tensors[first], np.nan)},
    }
    for name, bad in models.items():
        blob = encode_model(bad, ModelManifest(kind="initial", architecture=good.architecture))
        refused(replace(good, initial_model_cid=f.store.put(blob), initial_model_digest=sha256(blob)),
                "initial model", case=name)
    # a CID that is not a CID, a digest that does not match, a CID nobody stored
    refused(replace(good, validation_cid="not-a-cid"), "validation set", "not-a-cid")
    refused(replace(good, validation_digest=b"\x01" * 32), "validation set")
    missing = encode_dataset(np.zeros((3, features), np.float32), np.arange(3), "never stored")
    refused(replace(good, validation_cid=cid_for_bytes(missing), validation_digest=sha256(missing)), "validation set")
    # strategy parameters that cannot be used
    refused(replace(good, strategy_params=encode_strategy_params({"max_update_ratio": -1})), "max_update_ratio")
    refused(replace(good, strategy_params=b"[1, 2"), "task spec")
    assert f.fed.task_count() == count  # nothing was created, nothing approved or paid
    assert int(f.fed.token.balanceOf(f.people.sponsor.address)) == balance

    task_id = create_task(f.fed, f.people.sponsor, replace(good, num_rounds=1), f.store)
    assert f.fed.task_count() == count + 1 and f.fed.task(task_id).status == TaskStatus.ACTIVE
    # nobody trains: the round fails, the task completes and the sponsor takes its whole budget back
    warp(f.fed.current_round(task_id)[1].phase_deadline - f.fed.block_timestamp() + 1)
    f.fed.tasks.advance(task_id, sender=f.people.sponsor)
    assert f.fed.task(task_id).status == TaskStatus.COMPLETED
    assert reclaim(f.fed, f.people.sponsor, task_id) == good.reward_budget
    assert int(f.fed.token.balanceOf(f.people.sponsor.address)) == balance
    with pytest.raises(FedchainError, match="reclaim failed"):
        reclaim(f.fed, f.people.sponsor, task_id)

"""A model larger than the old 64 MiB file limit goes through a round on the local chain: trainers stream it from
the store and upload from disk, the aggregator reads every update in chunks, and the result is FedAvg of the
updates with their attested weights, byte for byte what an in-memory aggregation gives."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.service import AggregatorNode
from aggregator.strategies import ClientUpdate, FedAvg
from client.trainer import TrainConfig
from fedchain.architectures import expected_shapes
from fedchain.codec import decode_model, encode_model
from fedchain.errors import FedchainError
from fedchain.modelfile import model_file_bytes, open_model_file
from fedchain.protocol import Phase, TrainerStatus
from fedchain.store.local import LocalContentStore
from tests.support import byzantine
from tests.support.chain import warp
from tests.support.federation import advance_to, build_federation

ARCH = "mlp:4-4200-4200-3"  # 17.7M parameters: a 70.7 MB file
OLD_LIMIT = 64 * 1024 * 1024


def test_a_model_over_the_old_64_mib_limit_goes_through_a_round(fedchain_home, tmp_path) -> None:
    assert model_file_bytes(expected_shapes(ARCH)) > OLD_LIMIT + (1 << 20)
    f = build_federation(fedchain_home, trainers=2, rounds=1, architecture=ARCH, dataset="iris",
                         train=TrainConfig(epochs=1, lr=0.01))
    for trainer in f.trainers:
        trainer.train_and_commit(f.task_id)
    warp(f.cfg.phase_seconds + 1)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for trainer in f.trainers:
        trainer.reveal(f.task_id, 1)
    advance_to(f, 1, Phase.AGGREGATOR_COMMIT)
    first = f.aggregator.compute(f.task_id, 1)
    # a second aggregator (its own store directory holding the same files) computes the same result
    other = LocalContentStore(tmp_path / "other")
    for path in (f.store.root / "objects").iterdir():
        other.put_file(path)
    second = AggregatorNode(f.fed, f.people.deployer, other).compute(f.task_id, 1)
    assert second.result == first.result and first.result.accepted == 2 and first.result.rejected == 0
    while f.fed.round(f.task_id, 1).phase < Phase.FINALIZED:
        assert f.aggregator.step(f.task_id) is not None
    rnd = f.fed.round(f.task_id, 1)
    assert rnd.result_cid == first.result.result_cid
    result = f.store.verified_file(rnd.result_cid, sha256=bytes(rnd.result_digest), max_bytes=1 << 30,
                                   scratch=tmp_path)
    assert result.stat().st_size > OLD_LIMIT
    tensors, manifest = open_model_file(result, 1 << 30)
    weights = manifest.details["weights"]
    updates = []
    for trainer in f.trainers:
        entry = f.fed.trainer_entry(f.task_id, 1, trainer.address)
        blob = f.store.get(entry.cid, sha256=bytes(entry.update_digest), max_bytes=1 << 30)
        assert len(blob) > OLD_LIMIT
        updates.append(ClientUpdate(trainer.address.lower(), decode_model(blob, 1 << 30)[0],
                                    weights[trainer.address.lower()]))
    glob, _ = decode_model(f.store.get(manifest.parent_cid, max_bytes=1 << 30), 1 << 30)  # the round's global
    in_memory = FedAvg().aggregate(glob, updates).tensors  # the blobs held in memory, as before
    assert encode_model(in_memory, manifest) == result.read_bytes() and sorted(tensors) == sorted(glob)


def test_the_tasks_own_file_bound_holds_for_trainers_and_aggregators(fedchain_home) -> None:
    """A task declares its largest model file on chain: an honest trainer whose update would be larger refuses
    before anything is uploaded or committed, and the aggregator rejects a larger update someone committed."""
    f = byzantine.federation(fedchain_home, trainers=3)
    initial = f.store.get(f.fed.task(f.task_id).global_model_cid, max_bytes=1 << 26)
    task_id = byzantine.create_task(f, strategy="fedavg", max_model_bytes=len(initial) + 64)  # updates say more
    assert f.fed.task(task_id).spec.max_model_bytes == len(initial) + 64
    with pytest.raises(FedchainError, match="maxModelBytes"):
        f.trainers[0].train_and_commit(task_id)
    assert f.fed.trainer_entry(task_id, 1, f.trainers[0].address).status == TrainerStatus.NONE
    accounts = f.people.trainers[1:]
    reveals = {a: byzantine.commit_tensors(f, task_id, a, *byzantine.train_shard(f, task_id, i + 1))
               for i, a in enumerate(accounts)}
    warp(byzantine.PHASE_SECONDS + 1)  # two of three trainers committed: the phase ends at its deadline
    byzantine.reveal_all(f, task_id, 1, reveals)  # and advances to the aggregators' commit
    comp = f.aggregator.compute(task_id, 1)
    assert {code.code for code in comp.rejected.values()} == {"ContentTooLarge"} and len(comp.rejected) == 2


def test_a_task_with_float16_updates_runs_a_round_and_refuses_float32_ones(fedchain_home, tmp_path) -> None:
    """A task may choose a compact transport: trainers send float16 updates (half the bytes), the aggregator sums
    their float32 values in float64, and an update in another dtype is rejected."""
    f = byzantine.federation(fedchain_home, trainers=3)
    task_id = byzantine.create_task(f, strategy="fedavg", params={"update_dtype": "float16"})
    honest = f.trainers[:2]
    for trainer in honest:
        trainer.train_and_commit(task_id)
    other = f.people.trainers[2]
    plain = byzantine.commit_tensors(f, task_id, other, *byzantine.train_shard(f, task_id, 2))  # float32
    warp(byzantine.PHASE_SECONDS + 1)
    byzantine.advance_to_task(f, task_id, 1, Phase.TRAINER_REVEAL)
    for trainer in honest:
        trainer.reveal(task_id, 1)
    f.fed.tasks.revealUpdate(task_id, *plain, byzantine.SALT, sender=other)
    byzantine.advance_to_task(f, task_id, 1, Phase.AGGREGATOR_COMMIT)
    comp = f.aggregator.compute(task_id, 1)
    assert {t: r.code for t, r in comp.rejected.items()} == {other.address.lower(): "bad_dtype"}
    updates = []
    for trainer in honest:
        entry = f.fed.trainer_entry(task_id, 1, trainer.address)
        path = f.store.verified_file(entry.cid, sha256=bytes(entry.update_digest), max_bytes=1 << 26, scratch=tmp_path)
        lazy, _ = open_model_file(path, 1 << 26)
        assert {lazy.code(k) for k in lazy} == {"F16"}
        assert path.stat().st_size < 0.6 * len(f.store.get(plain[0], max_bytes=1 << 26))  # about half
        updates.append(ClientUpdate(trainer.address.lower(), {k: lazy[k] for k in lazy},
                                    comp.details.weights[trainer.address.lower()]))
    glob = byzantine.global_model(f, task_id)
    expected = FedAvg().aggregate(glob, updates).tensors
    tensors, _ = decode_model(comp.blob, 1 << 26)
    assert all(np.array_equal(tensors[k], expected[k]) for k in glob)
    while f.fed.round(task_id, 1).phase < Phase.FINALIZED:
        assert f.aggregator.step(task_id) is not None

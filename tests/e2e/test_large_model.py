"""A model larger than the old 64 MiB file limit goes through a round on the local chain: trainers stream it from
the store and upload from disk, the aggregator reads every update in chunks, and the result is FedAvg of the
updates with their attested weights, byte for byte what an in-memory aggregation gives."""

from __future__ import annotations

from aggregator.service import AggregatorNode
from aggregator.strategies import ClientUpdate, FedAvg
from client.trainer import TrainConfig
from fedchain.architectures import expected_shapes
from fedchain.codec import decode_model, encode_model
from fedchain.modelfile import model_file_bytes, open_model_file
from fedchain.protocol import Phase
from fedchain.store.local import LocalContentStore
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

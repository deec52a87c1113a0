"""Updates read from disk one chunk at a time aggregate to the same bytes as updates held in memory, for every
strategy; the aggregator's count sketches decide replays and near copies as the exact comparisons do."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.fingerprints import HASH_BLOCK, SKETCH_BUCKETS, _hashes, sketch_key, sketches
from aggregator.freeriders import FreeRiderCheck, KnownUpdate
from aggregator.strategies import ClientUpdate, RoundContext, ValidationSet, get_strategy, ops, strategy_ids
from aggregator.strategies.ops import cosine, flatten, norm
from aggregator.validation import RejectedUpdate, validate_update_file
from client.trainer import TrainConfig, train_local
from fedchain.architectures import expected_shapes, initial_tensors
from fedchain.codec import CodecError, ModelManifest, encode_model
from fedchain.data import dirichlet_partition, load_dataset
from fedchain.modelfile import LazyTensors, model_file_bytes, open_model_file, write_model_file
from tests.support.subproc import run_with_threads

ARCH = "mlp:64-16-10"


def _updates(rng: np.random.Generator, glob: dict, n: int) -> list[dict]:
    return [{k: (v + rng.normal(0, 0.05 * (i + 1), v.shape)).astype(np.float32) for k, v in glob.items()}
            for i in range(n)]


def _on_disk(tmp_path, tensors: list[dict]) -> list[LazyTensors]:
    out = []
    for i, t in enumerate(tensors):
        path = write_model_file(t, ModelManifest(kind="update", architecture=ARCH), tmp_path / f"u{i}")
        out.append(validate_update_file(path, expected_shapes(ARCH), model_file_bytes(expected_shapes(ARCH)))[0])
    return out


@pytest.mark.parametrize("name", strategy_ids())
def test_every_strategy_gives_the_same_bytes_from_disk_as_from_memory(name, tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(3)
    glob = initial_tensors(ARCH, 1)
    memory = _updates(rng, glob, 5)
    x, y = load_dataset("digits")
    context = RoundContext(task_id=1, round=2, seed=bytes(range(32)), validation=ValidationSet(ARCH, x[:200], y[:200]))
    strategy = get_strategy(name)

    def aggregate(models: list, reverse: bool = False) -> bytes:
        updates = [ClientUpdate(f"0x{i:040x}", m, 10 + i) for i, m in enumerate(models)]
        updates = updates[::-1] if reverse else updates
        result = strategy.aggregate(glob, updates, context)
        return encode_model(result.tensors, ModelManifest(kind="aggregate", architecture=ARCH))

    in_memory = aggregate(memory)
    assert aggregate(_on_disk(tmp_path, memory)) == in_memory
    monkeypatch.setattr(ops, "CHUNK_ELEMENTS", 7)  # many chunks, each crossing rows of the tensors
    assert aggregate(_on_disk(tmp_path, memory)) == in_memory
    assert aggregate(_on_disk(tmp_path, memory), reverse=True) == in_memory  # in any order, as before


def test_a_result_written_to_disk_is_the_encoded_blob(tmp_path) -> None:
    glob = initial_tensors(ARCH, 2)
    out = get_strategy("fedavg").aggregate(glob, [ClientUpdate("0x1", glob, 1)]).tensors
    manifest = ModelManifest(kind="aggregate", architecture=ARCH, details={"note": "ü \" \\"})
    path = write_model_file(out, manifest, tmp_path / "result")
    assert path.read_bytes() == encode_model(out, manifest)
    lazy, read = open_model_file(path, path.stat().st_size)
    assert read == manifest and {k: lazy[k].tolist() for k in lazy} == {k: out[k].tolist() for k in sorted(out)}


# --- fingerprints -----------------------------------------------------------------------------------------
def _trained_updates(rounds_seed: int = 0) -> tuple[dict, list[dict]]:
    x, y = load_dataset("digits")
    parts = dirichlet_partition(y, 6, alpha=0.5, seed=rounds_seed)
    glob = initial_tensors(ARCH, 0)
    config = TrainConfig(epochs=1, seed=1)
    return glob, [train_local(ARCH, glob, x[p], y[p], config).tensors for p in parts]


def _exact_decision(glob: dict, known: list[tuple[str, dict]], trainer: str, tensors: dict) -> str | None:
    """The replay and near-copy rules on the full vectors (the comparison the sketches replace)."""
    g = flatten(glob)
    delta = flatten(tensors) - g
    own = norm(delta)
    for who, other_tensors in known:
        other = flatten(other_tensors) - g
        if norm(delta - other) <= 1e-3 * own:
            return "replayed_update"
        if who != trainer and cosine(delta, other) >= 0.995 and min(own, norm(other)) >= 0.9 * max(own, norm(other)):
            return "near_duplicate"
    return None


def _sketch_decision(check: FreeRiderCheck, trainer: str, tensors: dict) -> str | None:
    try:
        check.check(trainer, 1, tensors)
    except RejectedUpdate as exc:
        return exc.code
    return None


def test_sketches_decide_replays_and_near_copies_as_the_exact_comparison() -> None:
    """Honest non-IID updates, exact and nudged replays, jittered copies at growing noise, rescaled copies and
    mixes of two trainers' updates: every decision of the sketch check is the exact rule's."""
    glob, honest = _trained_updates()
    rng = np.random.default_rng(5)
    cases: list[tuple[str, dict]] = [(f"0xh{i}", u) for i, u in enumerate(honest)]
    base = honest[0]
    delta = {k: base[k] - glob[k] for k in glob}
    size = norm(flatten(delta))
    params = flatten(glob).size
    for j, noise in enumerate((1e-5, 1e-3, 0.02, 0.05, 0.08, 0.12, 0.3)):  # relative to the update's change
        cases.append((f"0xj{j}", {k: (base[k] + rng.normal(0, noise * size / np.sqrt(params), glob[k].shape))
                                  .astype(np.float32) for k in glob}))
    for j, scale in enumerate((0.85, 0.95, 1.05)):
        cases.append((f"0xs{j}", {k: (glob[k] + scale * delta[k]).astype(np.float32) for k in glob}))
    for j, mix in enumerate((0.5, 0.9)):
        cases.append((f"0xm{j}", {k: (mix * base[k] + (1 - mix) * honest[1][k]).astype(np.float32) for k in glob}))
    cases.append(("0xr", dict(honest[2])))
    check = FreeRiderCheck(glob, key=sketch_key(b"round 1"))
    known: list[tuple[str, dict]] = []
    decisions = []
    for trainer, tensors in cases:
        exact = _exact_decision(glob, known, trainer, tensors)
        found = _sketch_decision(check, trainer, tensors)
        decisions.append((trainer, exact, found))
        if exact is None:
            known.append((trainer, tensors))
    assert [d[1] for d in decisions] == [d[2] for d in decisions], decisions
    codes = {d[1] for d in decisions}
    assert {None, "replayed_update", "near_duplicate"} <= codes  # the cases exercise every outcome


def test_sketched_cosines_are_close_to_the_exact_ones() -> None:
    glob, honest = _trained_updates(1)
    key = sketch_key(b"round 7")
    g = sketches(key, [glob])[0]
    found = sketches(key, honest)
    errors = []
    for i in range(len(honest)):
        for j in range(i + 1, len(honest)):
            exact = cosine(flatten(honest[i]) - flatten(glob), flatten(honest[j]) - flatten(glob))
            estimate = cosine(found[i] - g, found[j] - g)
            errors.append(abs(exact - estimate) / max(1e-9, 1 - exact ** 2))
    # the standard deviation of the estimate is about (1 - c^2) / sqrt(buckets): 6 of them bound it safely
    assert max(errors) < 6 / np.sqrt(SKETCH_BUCKETS), max(errors)


def test_a_copy_tuned_against_one_key_is_caught_under_the_rounds_key() -> None:
    """Against a sketch known in advance a copier could hide a near copy with a tiny perturbation concentrated on
    coordinates that share a bucket and a sign (a large model has many per bucket); the round's key is not known
    at commit time, and under it the perturbation is as small as it really is."""
    rng = np.random.default_rng(4)
    size = 2 * HASH_BLOCK + 12345  # several hash blocks
    glob = {"w": rng.normal(0, 1, size).astype(np.float32)}
    victim = {"w": (glob["w"] + rng.normal(0, 0.01, size)).astype(np.float32)}
    change = norm(flatten(victim) - flatten(glob))
    guessed = sketch_key(b"a key the copier guessed")
    push = np.zeros(size)
    for block, start in enumerate(range(0, size, HASH_BLOCK)):
        buckets, signs = _hashes(guessed, block, min(HASH_BLOCK, size - start))
        push[start:start + buckets.size] = (buckets == 0) & (signs > 0)
    push *= 0.02 * change / norm(push)  # 2% of the update's change: a near copy by any measure
    copy = {"w": (victim["w"] + push).astype(np.float32)}
    assert cosine(flatten(copy) - flatten(glob), flatten(victim) - flatten(glob)) > 0.999
    fooled = FreeRiderCheck(glob, [KnownUpdate.of("0xvictim", 1, victim, guessed)], key=guessed)
    assert _sketch_decision(fooled, "0xcopier", copy) is None  # the attack works against a known key ...
    real = sketch_key(b"the round's reveals")
    caught = FreeRiderCheck(glob, [KnownUpdate.of("0xvictim", 1, victim, real)], key=real)
    assert _sketch_decision(caught, "0xcopier", copy) == "near_duplicate"  # ... not against the round's


SKETCH_SNIPPET = """
import numpy as np
from aggregator.fingerprints import sketch_key, sketches
rng = np.random.default_rng(0)
models = [{"a": rng.standard_normal((300, 700)).astype(np.float32), "b": rng.standard_normal(5000).astype(np.float32)}
          for _ in range(3)]
print(b"".join(s.tobytes() for s in sketches(sketch_key(b"k"), models)).hex()[:4000])
"""


def test_sketches_are_identical_across_processes_and_thread_counts() -> None:
    one, two = run_with_threads(SKETCH_SNIPPET, 1), run_with_threads(SKETCH_SNIPPET, 2)
    assert one == two and len(one) == 4000


# --- compact transport ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "torch_dtype"), [("F16", "float16"), ("BF16", "bfloat16")])
def test_compact_updates_round_to_nearest_and_read_back_as_float32(code, torch_dtype, tmp_path) -> None:
    import torch

    rng = np.random.default_rng(8)
    tensors = {"w": rng.standard_normal((300, 70)).astype(np.float32),
               "edge": np.array([1e-40, -0.0, 65504, 1e-7, 1 + 2**-9, 1 + 3 * 2**-9, 3.0e38 if code == "BF16" else 1],
                                np.float32)}
    manifest = ModelManifest(kind="update", architecture="x")
    path = write_model_file(tensors, manifest, tmp_path / "u", code)
    full = write_model_file(tensors, manifest, tmp_path / "f")
    assert path.stat().st_size < 0.52 * full.stat().st_size  # half the bytes (plus the header)
    lazy, _ = validate_update_file(path, {"w": (300, 70), "edge": (7,)}, 1 << 20, code)
    for name, values in tensors.items():
        expected = torch.from_numpy(values).to(getattr(torch, torch_dtype)).float().numpy()  # torch's rounding
        assert lazy[name].dtype == np.float32 and np.array_equal(lazy[name], expected)
    with pytest.raises(RejectedUpdate) as caught:  # a task's updates all travel in its one transport
        validate_update_file(full, {"w": (300, 70), "edge": (7,)}, 1 << 20, code)
    assert caught.value.code == "bad_dtype"
    beyond = write_model_file({"w": tensors["w"], "edge": np.full(7, 3.4e38, np.float32)}, manifest,
                              tmp_path / "big", code)
    with pytest.raises(RejectedUpdate) as caught:  # weights beyond the transport's range arrive as infinities
        validate_update_file(beyond, {"w": (300, 70), "edge": (7,)}, 1 << 20, code)
    assert caught.value.code == "non_finite"
    with pytest.raises(CodecError):  # models other than updates stay float32
        write_model_file(tensors, ModelManifest(kind="aggregate", architecture="x"), tmp_path / "a", code)


def test_compact_updates_aggregate_like_their_float32_values(tmp_path) -> None:
    rng = np.random.default_rng(9)
    glob = initial_tensors(ARCH, 3)
    memory = _updates(rng, glob, 4)
    files = []
    for i, t in enumerate(memory):
        path = write_model_file(t, ModelManifest(kind="update", architecture=ARCH), tmp_path / f"c{i}", "BF16")
        files.append(validate_update_file(path, expected_shapes(ARCH), 1 << 20, "BF16")[0])
    rounded = [{k: f[k] for k in f} for f in files]
    for strategy in ("fedavg", "median", "robust"):
        a = get_strategy(strategy).aggregate(glob, [ClientUpdate(f"0x{i}", f, 5) for i, f in enumerate(files)])
        b = get_strategy(strategy).aggregate(glob, [ClientUpdate(f"0x{i}", f, 5) for i, f in enumerate(rounded)])
        assert all(np.array_equal(a.tensors[k], b.tensors[k]) for k in glob)

"""The default robust strategy ``robust`` (norm bound + capped weights + validation filter); bounded-memory
scoring and free-rider checks."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aggregator.contribution import contributions
from aggregator.fingerprints import SKETCH_BUCKETS, sketch_key
from aggregator.freeriders import FreeRiderCheck
from aggregator.scoring import evaluate
from aggregator.strategies import ClientUpdate, RobustAverage, RoundContext, ValidationSet, get_strategy, ops
from fedchain.architectures import expected_shapes, initial_tensors
from tests.support.attacks import ATTACKS, attack_update, flip_labels
from tests.support.subproc import run_with_threads

ARCH = "logreg:2-2"
X = np.array([[1, 0], [0, 1], [2, 1], [0, 3], [3, 0], [1, 4]], dtype=np.float32)
Y = np.array([0, 1, 0, 1, 0, 1])


def _model(w: list[list[float]], b: list[float]) -> dict[str, np.ndarray]:
    return {"0.weight": np.array(w, np.float32), "0.bias": np.array(b, np.float32)}


def test_norm_bound_and_capped_weights_by_hand() -> None:
    zero = _model([[0, 0], [0, 0]], [0, 0])
    ups = [ClientUpdate("0x1", _model([[1, 0], [0, 0]], [0, 0]), 10),     # norm 1
           ClientUpdate("0x2", _model([[0, 2], [0, 0]], [0, 0]), 10),     # norm 2 = the median: the bound
           ClientUpdate("0x3", _model([[0, 0], [0, 0]], [10, 0]), 1000)]  # norm 10 -> x 0.2; 1000 samples -> cap 20
    assert RobustAverage.capped_weights(ups) == [10, 10, 20]
    out = RobustAverage().aggregate(zero, ups).tensors  # no validation set bound: no filter
    # (10 * d1 + 10 * d2 + 20 * 0.2 * d3) / 40
    assert out["0.weight"].tolist() == [[0.25, 0.5], [0.0, 0.0]] and out["0.bias"].tolist() == [1.0, 0.0]
    doubled = RobustAverage(clip_ratio=2.0).aggregate(zero, ups).tensors  # bound 4 -> d3 x 0.4
    assert doubled["0.bias"].tolist() == [2.0, 0.0]
    even = RobustAverage.capped_weights(ups[:2] + [ClientUpdate("0x4", zero, 7), ClientUpdate("0x5", zero, 0)])
    assert even == [10, 10, 7, 1]  # median of (1, 7, 10, 10) = 8.5 -> cap 17; counts below 1 count as 1


def _honest_and_hostile() -> tuple[dict[str, np.ndarray], list[ClientUpdate]]:
    glob = initial_tensors(ARCH, 0)
    step = _model([[0.5, -0.5], [-0.5, 0.5]], [0, 0])  # the direction that fits the data

    def moved(scale: float, trainer: str, shift: float = 0.0) -> ClientUpdate:
        # ``shift`` moves both biases alike: a different update that leaves every prediction unchanged
        tensors = {k: (glob[k] + scale * step[k]).astype(np.float32) for k in glob}
        tensors["0.bias"] = (tensors["0.bias"] + np.float32(shift)).astype(np.float32)
        return ClientUpdate(trainer, tensors, 10)

    honest = [moved(1.0, "0x1"), moved(1.0, "0x2", 0.01), moved(1.0, "0x3", -0.01), moved(1.0, "0x4", 0.02),
              moved(1.0, "0x5", -0.02)]
    return glob, honest + [moved(-4.0, "0xa"), moved(-1.0, "0xb")]  # two sign flippers


def _with_validation(rejected: int = 0) -> RoundContext:
    return RoundContext(validation=ValidationSet(ARCH, X, Y), rejected=rejected)


def test_validation_filter_drops_what_makes_the_loss_worse() -> None:
    glob, updates = _honest_and_hostile()
    rule = RobustAverage(byzantine=2)  # 7 updates, at most 2 hostile: 2 drops keep 3 honest against 2
    result = rule.aggregate(glob, updates, _with_validation(0))
    out, details = result.tensors, result.report["robust"]
    assert details["excluded"] == ["0xa", "0xb"] and details["exclusion_budget"] == 2
    assert RobustAverage(byzantine=3).exclusion_budget(7, _with_validation(0)) == 0  # 3 of 7: no safe drop
    honest_only = RobustAverage().aggregate(glob, updates[:5]).tensors
    assert evaluate(ARCH, out, X, Y).loss <= evaluate(ARCH, honest_only, X, Y).loss * 1.05
    unfiltered = RobustAverage().aggregate(glob, updates).tensors
    assert evaluate(ARCH, out, X, Y).loss < evaluate(ARCH, unfiltered, X, Y).loss
    # f bounds every hostile update of the round: two already rejected leave a budget of one
    one = RobustAverage(byzantine=3).aggregate(glob, updates, _with_validation(2)).report["robust"]
    assert one["excluded"] == ["0xa"]  # clipped, 0xa and 0xb tie: the lower address goes
    assert one["exclusion_budget"] == 1
    none = RobustAverage(byzantine=3).aggregate(glob, updates, _with_validation(3)).report
    assert none["robust"] == {"exclusion_budget": 0, "excluded": []}
    # an honest majority is never dropped for a minority: 3 updates with one possibly hostile allow none
    assert RobustAverage(byzantine=1).exclusion_budget(3, _with_validation()) == 0
    assert RobustAverage(byzantine=1).exclusion_budget(4, _with_validation()) == 1
    assert RobustAverage(byzantine=5).exclusion_budget(9, None) == 0  # no validation set, no filter
    assert RobustAverage().aggregate(glob, updates).report == {}
    # honest updates only: nothing is dropped (no removal lowers the loss by more than min_gain)
    clean = RobustAverage(byzantine=3).aggregate(glob, updates[:5], _with_validation()).report
    assert clean["robust"]["excluded"] == []
    again = rule.aggregate(glob, list(reversed(updates)), _with_validation(0))
    assert again.tensors["0.weight"].tolist() == out["0.weight"].tolist() and again.report == result.report


def test_the_filter_never_drops_an_honest_majority_for_a_minority() -> None:
    """For every round size, bound and rejection count: were every drop an honest update, the honest updates
    kept still outnumber the hostile ones that may remain; and one more drop would break that."""
    for n in range(1, 31):
        for f in range(0, 16):
            for rejected in range(0, f + 1):
                b = RobustAverage(byzantine=f).exclusion_budget(n, _with_validation(rejected))
                hostile = min(n, f - rejected)
                assert 0 <= b <= hostile, (n, f, rejected, b)
                if b:
                    assert n - hostile - b > hostile, (n, f, rejected, b)
                if b < hostile:
                    assert n - hostile - (b + 1) <= hostile, (n, f, rejected, b)  # the budget is the largest safe


def test_registry_and_bad_parameters() -> None:
    assert get_strategy("robust", {"byzantine": 3, "clip_ratio": 1.5, "min_gain": 0.01}).name == "robust"
    for bad in ({"byzantine": -1}, {"byzantine": True}, {"clip_ratio": 0}, {"min_gain": 1.0}):
        with pytest.raises(ValueError, match="bad parameters"):
            get_strategy("robust", bad)
    assert RobustAverage.uses_validation and not get_strategy("median", {}).uses_validation


def test_attack_builders() -> None:
    glob = {"w": np.ones(3, np.float32)}
    honest = {"w": np.array([2.0, 1.0, 0.0], np.float32)}
    rng = np.random.default_rng(0)
    built = {kind: attack_update(kind, honest, glob, rng)["w"].tolist() for kind in ATTACKS}
    assert built["sign_flip"] == [-3.0, 1.0, 5.0] and built["scaling"] == [21.0, 1.0, -19.0]
    assert built["zero_update"] == [0.0] * 3 and built["global_replay"] == [1.0] * 3
    assert built["label_flip"] == honest["w"].tolist() and built["noise"] != glob["w"].tolist()
    assert flip_labels(np.array([0, 3, 9]), 10).tolist() == [9, 6, 0]
    with pytest.raises(ValueError, match="unknown attack"):
        attack_update("bribery", honest, glob, rng)


GUARDED_SNIPPET = """
import numpy as np
from aggregator.strategies import ClientUpdate, RoundContext, ValidationSet, get_strategy
from fedchain.codec import ModelManifest, encode_model, sha256
from fedchain.architectures import expected_shapes
rng = np.random.default_rng(11)
shapes = expected_shapes("mlp:64-128-10")
glob = {k: rng.normal(scale=0.1, size=s).astype(np.float32) for k, s in shapes.items()}
updates = [ClientUpdate(f"0x{i:040x}", {k: (glob[k] + rng.normal(scale=0.05 * (1 + 3 * (i < 2)), size=s))
                                        .astype(np.float32) for k, s in shapes.items()}, int(rng.integers(1, 100)))
           for i in range(8)]
x_val = rng.normal(size=(60, 64))
y_val = rng.integers(0, 10, size=60)
rule = get_strategy("robust", {"byzantine": 3, "min_gain": 0.0})
result = rule.aggregate(glob, updates, RoundContext(validation=ValidationSet("mlp:64-128-10", x_val, y_val)))
print(sha256(encode_model(result.tensors, ModelManifest(kind="aggregate", architecture="x"))).hex(), result.report)
"""


def test_robust_identical_across_thread_counts() -> None:
    one = run_with_threads(GUARDED_SNIPPET, 1)
    assert one == run_with_threads(GUARDED_SNIPPET, 2) and "'excluded'" in one


def _peak(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_scoring_and_free_rider_memory_bounds(monkeypatch) -> None:
    arch = "mlp:64-512-10"
    params = sum(int(np.prod(s)) for s in expected_shapes(arch).values())
    rng = np.random.default_rng(5)
    glob = initial_tensors(arch, 0)
    x_val, y_val = rng.normal(size=(20, 64)), rng.integers(0, 10, size=20)
    monkeypatch.setattr(ops, "CHUNK_ELEMENTS", 1 << 12)  # the median's own buffers stay small

    def updates(n: int) -> list[ClientUpdate]:
        return [ClientUpdate(f"0x{i:02x}", {k: (v + rng.normal(scale=0.01, size=v.shape)).astype(np.float32)
                                            for k, v in glob.items()}, 5) for i in range(n)]

    few, many = updates(3), updates(24)
    small = _peak(lambda: contributions(arch, glob, few, x_val, y_val))
    large = _peak(lambda: contributions(arch, glob, many, x_val, y_val))
    # streamed: a dozen model-sized float64 vectors at most (the sum, the public basis, one delta and its
    # temporaries) whatever the count; holding 24 deltas would be 24 * 8 * P
    assert large < 12 * 8 * params and large < 1.5 * small + 8 * params, (small, large, params)
    check = FreeRiderCheck(glob, key=sketch_key(b"seed"))
    for u in many:
        check.check(u.trainer, 1, u.tensors)
    # what the check keeps of each update it has seen is its sketch, whatever the model's size
    assert len(check.known) == len(many) and all(k.sketch.size == SKETCH_BUCKETS < params for k in check.known)

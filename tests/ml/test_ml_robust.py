"""Robust rules and server optimizers against hand-computed results; chunking; determinism across threads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aggregator.strategies import (
    ClientUpdate,
    CoordinateMedian,
    FedAdagrad,
    FedAdam,
    FedAvgM,
    FedProx,
    FedYogi,
    Krum,
    MultiKrum,
    NormBoundedAverage,
    RoundContext,
    TrimmedMean,
    get_strategy,
    ops,
)
from aggregator.strategies.byzantine import krum_scores
from tests.support.specs import spec
from tests.support.subproc import run_with_threads

GLOBAL = {"b": np.zeros(1, np.float32), "w": np.zeros(2, np.float32)}


def _with_state(strategy, g, updates, state):  # noqa: ANN001, ANN202
    """(new global, new server state) from the state carried in from the last round."""
    result = strategy.aggregate(g, updates, RoundContext(server_state=state))
    return result.tensors, result.server_state


def _u(trainer: str, n: int, w: list[float], b: list[float]) -> ClientUpdate:
    return ClientUpdate(trainer, {"w": np.array(w, np.float32), "b": np.array(b, np.float32)}, n)


# five updates: three honest near (1, 2), one boosted, one sign-flipped
FIVE = [
    _u("0x5", 1, [1.0, 2.0], [0.0]),
    _u("0x4", 1, [2.0, 3.0], [1.0]),
    _u("0x3", 1, [3.0, 1.0], [2.0]),
    _u("0x2", 1, [100.0, 100.0], [50.0]),
    _u("0x1", 1, [-10.0, -20.0], [-5.0]),
]


def test_median_by_hand() -> None:
    out = CoordinateMedian().aggregate(GLOBAL, FIVE).tensors
    # w0: sorted -10, 1, 2, 3, 100 -> 2;  w1: -20, 1, 2, 3, 100 -> 2;  b: -5, 0, 1, 2, 50 -> 1
    assert out["w"].tolist() == [2.0, 2.0] and out["b"].tolist() == [1.0]
    even = CoordinateMedian().aggregate(GLOBAL, FIVE[:4]).tensors  # w0: 1, 2, 3, 100 -> 2.5
    assert even["w"].tolist() == [2.5, 2.5] and even["b"].tolist() == [1.5]


def test_trimmed_mean_by_hand() -> None:
    out = TrimmedMean(beta=0.2).aggregate(GLOBAL, FIVE).tensors  # drop 1 each side -> mean of the middle three
    assert out["w"].tolist() == [2.0, 2.0] and out["b"].tolist() == [1.0]
    assert TrimmedMean(beta=0.2).trim_count(5) == 1 and TrimmedMean(beta=0.45).trim_count(10) == 4
    plain = TrimmedMean(beta=0.0).aggregate(GLOBAL, FIVE).tensors  # no trimming: the plain mean
    assert plain["w"].tolist() == pytest.approx([96 / 5, 86 / 5]) and plain["b"].tolist() == pytest.approx([48 / 5])
    with pytest.raises(ValueError):
        TrimmedMean(beta=0.5)


def test_krum_scores_and_selection_by_hand() -> None:
    one_d = [np.array([0.0]), np.array([1.0]), np.array([3.0]), np.array([10.0])]
    # f = 1 -> n - f - 2 = 1 nearest neighbour: squared distances 1, 1, 4, 49
    assert krum_scores(one_d, 1) == [1.0, 1.0, 4.0, 49.0]
    # f = 0 -> 2 neighbours: 0: 1+9, 1: 1+4, 3: 4+9, 10: 49+81
    assert krum_scores(one_d, 0) == [10.0, 5.0, 13.0, 130.0]
    chosen = Krum(byzantine=2).aggregate(GLOBAL, FIVE).tensors  # 1 neighbour each; ties broken by address
    # honest pairs: (1,2,0)-(2,3,1): 1+1+1 = 3; (3,1,2)-(2,3,1): 1+4+1 = 6 -> 0x4 and 0x5 tie at 3; 0x4 < 0x5
    assert chosen["w"].tolist() == [2.0, 3.0] and chosen["b"].tolist() == [1.0]
    multi = MultiKrum(byzantine=2).select(GLOBAL, FIVE)  # keep n - f = 3: the honest ones
    assert [u.trainer for u in multi] == ["0x3", "0x4", "0x5"]
    out = MultiKrum(byzantine=2).aggregate(GLOBAL, FIVE).tensors
    assert out["w"].tolist() == [2.0, 2.0] and out["b"].tolist() == [1.0]


def test_norm_bounded_by_hand() -> None:
    g = {"w": np.array([1.0, 1.0], np.float32)}
    ups = [ClientUpdate("0xa", {"w": np.array([4.0, 5.0], np.float32)}, 1),   # delta (3, 4), norm 5 -> x 2/5
           ClientUpdate("0xb", {"w": np.array([1.0, 2.0], np.float32)}, 3)]   # delta (0, 1), norm 1 -> kept
    out = NormBoundedAverage(clip_norm=2.0).aggregate(g, ups).tensors
    # 1 + (1/4)(1.2, 1.6) + (3/4)(0, 1) = (1.3, 2.15)
    assert out["w"].tolist() == pytest.approx([1.3, 2.15], rel=1e-6)


def test_server_optimizers_by_hand() -> None:
    g = {"w": np.array([1.0], np.float32)}
    ups = [ClientUpdate("0xa", {"w": np.array([3.0], np.float32)}, 1),
           ClientUpdate("0xb", {"w": np.array([5.0], np.float32)}, 1)]  # FedAvg 4 -> pseudo-gradient d = 3
    new, state = _with_state(FedAvgM(lr=0.5, momentum=0.9), g, ups, None)
    assert new["w"].tolist() == [2.5] and state["m.w"].tolist() == [3.0]  # m = 3, g = 1 + 0.5 * 3
    new2, state2 = _with_state(FedAvgM(lr=0.5, momentum=0.9), g, ups, state)
    assert state2["m.w"].tolist() == pytest.approx([5.7]) and new2["w"].tolist() == pytest.approx([3.85])
    tau, lr = 0.01, 0.1
    m = 0.1 * 3.0
    cases = {
        FedAdagrad: tau**2 + 9.0,
        FedAdam: 0.99 * tau**2 + 0.01 * 9.0,
        FedYogi: tau**2 - 0.01 * 9.0 * math.copysign(1.0, tau**2 - 9.0),
    }
    for cls, v in cases.items():
        out, st = _with_state(cls(lr=lr, beta_1=0.9, beta_2=0.99, tau=tau), g, ups, None)
        assert st["m.w"].tolist() == pytest.approx([m], rel=1e-6)
        assert st["v.w"].tolist() == pytest.approx([v], rel=1e-6)
        assert out["w"].tolist() == pytest.approx([1.0 + lr * m / (math.sqrt(v) + tau)], rel=1e-6), cls.name
    with pytest.raises(ValueError, match="server state"):
        _with_state(FedAdam(), g, ups, {"m.w": np.zeros(1, np.float32)})


def test_fedprox_is_fedavg_on_the_server_and_registry_builds_every_rule() -> None:
    assert FedProx(proximal_mu=0.1).aggregate(GLOBAL, FIVE[:2]).tensors["w"].tolist() == [1.5, 2.5]
    for name, params in {"median": {}, "trimmed_mean": {"beta": 0.1}, "krum": {"byzantine": 1},
                         "multikrum": {"byzantine": 1, "keep": 2}, "norm_bounded": {"clip_norm": 3},
                         "fedavgm": {"lr": 1, "momentum": 0.5}, "fedadam": {"tau": 0.1}, "fedyogi": {},
                         "fedadagrad": {"lr": 0.5}, "fedprox": {"proximal_mu": 0.01}}.items():
        assert get_strategy(name, params).name == name
    with pytest.raises(ValueError, match="does not take"):
        get_strategy("median", {"beta": 0.1})
    with pytest.raises(ValueError, match="bad parameters"):
        get_strategy("norm_bounded", {"clip_norm": -1})


def test_chunked_median_and_trimmed_mean_equal_numpy(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    shapes = {"a": (37, 11), "b": (5,)}
    glob = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    ups = [ClientUpdate(f"0x{i:02x}", {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}, 1)
           for i in range(9)]
    whole_median = CoordinateMedian().aggregate(glob, ups).tensors
    whole_trim = TrimmedMean(beta=0.25).aggregate(glob, ups).tensors
    monkeypatch.setattr(ops, "CHUNK_ELEMENTS", 9 * 7)  # 7 coordinates per chunk
    for name in shapes:
        stacked = np.stack([u.tensors[name].astype(np.float64) for u in ups])
        assert np.array_equal(CoordinateMedian().aggregate(glob, ups).tensors[name], whole_median[name])
        assert np.array_equal(whole_median[name], np.median(stacked, axis=0).astype(np.float32))
        assert np.array_equal(TrimmedMean(beta=0.25).aggregate(glob, ups).tensors[name], whole_trim[name])
        kept = np.sort(stacked, axis=0)[2:7]
        assert np.allclose(whole_trim[name], kept.mean(axis=0), atol=1e-6)


ROBUST_SNIPPET = """
import numpy as np
from aggregator.strategies import ClientUpdate, get_strategy
from fedchain.codec import ModelManifest, encode_model, sha256
from fedchain.architectures import expected_shapes
rng = np.random.default_rng(7)
shapes = expected_shapes("mlp:64-128-10")
glob = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
updates = [ClientUpdate(f"0x{i:040x}", {k: (glob[k] + rng.normal(scale=0.1, size=s)).astype(np.float32)
                                        for k, s in shapes.items()}, int(rng.integers(1, 100))) for i in range(7)]
for name, params in [("median", {}), ("trimmed_mean", {"beta": 0.2}), ("multikrum", {"byzantine": 2}),
                     ("krum", {"byzantine": 2}), ("norm_bounded", {"clip_norm": 0.5}), ("fedadam", {}),
                     ("fedyogi", {}), ("fedavgm", {})]:
    out = get_strategy(name, params).aggregate(glob, updates).tensors
    print(name, sha256(encode_model(out, ModelManifest(kind="aggregate", architecture="x"))).hex())
from aggregator.contribution import contributions
x_val = rng.normal(size=(50, 64)).astype(np.float32)
y_val = rng.integers(0, 10, size=50)
print(sorted((t, c.as_dict()) for t, c in contributions("mlp:64-128-10", glob, updates, x_val, y_val).items()))
"""


def test_robust_rules_and_scores_identical_across_thread_counts() -> None:
    one = run_with_threads(ROBUST_SNIPPET, 1)
    two = run_with_threads(ROBUST_SNIPPET, 2)
    assert one == two and len(one.splitlines()) == 9


def test_fedprox_task_sets_the_trainers_proximal_term() -> None:
    from client.task_config import task_train_config
    from client.trainer import TrainConfig

    def task(strategy: str, params: bytes):  # noqa: ANN202
        return spec(strategy=strategy, strategy_params=params)

    base = TrainConfig(epochs=1)
    assert task_train_config(base, task("fedprox", b'{"proximal_mu": 0.3}')).proximal_mu == 0.3
    assert task_train_config(base, task("FedProx", b"")).proximal_mu == 0.01  # the strategy's default
    assert task_train_config(base, task("fedavg", b"")) is base
    with pytest.raises(ValueError):
        task_train_config(base, task("fedprox", b'{"proximal_mu": -1}'))

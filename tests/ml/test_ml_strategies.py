"""FedAvg: hand-computed results, order independence, byte-identical output across thread counts."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.strategies import ClientUpdate, FedAvg, Strategy, get_strategy
from fedchain.codec import ModelManifest, encode_model, sha256
from tests.support.subproc import run_with_threads


def _u(trainer: str, n: int, **tensors: list[float]) -> ClientUpdate:
    return ClientUpdate(trainer, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, n)


GLOBAL = {"w": np.zeros(2, np.float32), "b": np.zeros(1, np.float32)}


def test_fedavg_hand_computed() -> None:
    updates = [_u("0xB", 3, w=[3.0, 4.0], b=[1.0]), _u("0xa", 1, w=[1.0, 2.0], b=[-3.0])]
    out = FedAvg().aggregate(GLOBAL, updates).tensors
    # w: (1*[1,2] + 3*[3,4]) / 4 = [2.5, 3.5]; b: (1*-3 + 3*1) / 4 = 0
    assert out["w"].dtype == np.float32 and out["w"].tolist() == [2.5, 3.5]
    assert out["b"].tolist() == [0.0]


def test_fedavg_float64_accumulation_then_float32() -> None:
    big, tiny = np.float32(1e8), np.float32(1.0)
    updates = [_u("0x1", 1, w=[big, tiny], b=[0]), _u("0x2", 1, w=[-big, tiny], b=[0])]
    out = FedAvg().aggregate(GLOBAL, updates).tensors
    assert out["w"].tolist() == [0.0, 1.0]


def test_fedavg_order_and_case_independent() -> None:
    rng = np.random.default_rng(0)
    updates = [
        ClientUpdate(
            f"0x{i:040X}" if i % 2 else f"0x{i:040x}", {"w": rng.normal(size=(5, 3)).astype(np.float32)}, i + 1
        )
        for i in range(7)
    ]
    glob = {"w": np.zeros((5, 3), np.float32)}
    a = FedAvg().aggregate(glob, updates).tensors
    b = FedAvg().aggregate(glob, list(reversed(updates))).tensors
    assert a["w"].tobytes() == b["w"].tobytes()
    total = sum(u.num_samples for u in updates)
    expected = sum(u.num_samples * u.tensors["w"].astype(np.float64) for u in updates) / total
    assert np.allclose(a["w"], expected, atol=1e-6)


def test_fedavg_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        FedAvg().aggregate(GLOBAL, [])
    with pytest.raises(ValueError, match="duplicate"):
        FedAvg().aggregate(GLOBAL, [_u("0xAb", 1, w=[0, 0], b=[0]), _u("0xaB", 1, w=[0, 0], b=[0])])
    with pytest.raises(ValueError, match="tensor names"):
        FedAvg().aggregate(GLOBAL, [_u("0x1", 1, w=[0, 0])])
    with pytest.raises(ValueError, match="shape"):
        FedAvg().aggregate(GLOBAL, [_u("0x1", 1, w=[0, 0, 0], b=[0])])
    with pytest.raises(ValueError, match="num_samples"):
        FedAvg().aggregate(GLOBAL, [_u("0x1", 0, w=[0, 0], b=[0])])


def test_registry() -> None:
    strategy = get_strategy("fedavg", {})
    assert isinstance(strategy, FedAvg) and isinstance(strategy, Strategy) and strategy.name == "fedavg"
    assert isinstance(get_strategy("FedAvg", None), FedAvg)
    with pytest.raises(ValueError, match="unknown strategy"):
        get_strategy("fedmedian", {})
    with pytest.raises(ValueError, match="does not take"):
        get_strategy("fedavg", {"lr": 1.0})


AGGREGATE_SNIPPET = """
import numpy as np
from aggregator.strategies import ClientUpdate, get_strategy
from fedchain.codec import ModelManifest, encode_model, sha256
from fedchain.architectures import expected_shapes
rng = np.random.default_rng(42)
shapes = expected_shapes("mlp:64-256-128-10")
updates = [
    ClientUpdate(f"0x{i:040x}", {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()},
                 int(rng.integers(1, 1000)))
    for i in range(6)
]
glob = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
out = get_strategy("fedavg", {}).aggregate(glob, updates).tensors
print(sha256(encode_model(out, ModelManifest(kind="aggregate", architecture="mlp:64-256-128-10"))).hex())
"""


def test_fedavg_bytes_identical_across_thread_counts() -> None:
    one = run_with_threads(AGGREGATE_SNIPPET, 1)
    two = run_with_threads(AGGREGATE_SNIPPET, 2)
    assert len(one) == 64 and one == two
    namespace: dict[str, object] = {}
    exec(AGGREGATE_SNIPPET.replace("print(", "result = ("), namespace)  # and in this process
    assert namespace["result"] == one
    assert sha256(encode_model(GLOBAL, ModelManifest(kind="aggregate", architecture="x"))).hex() != one

"""Central DP as a wrapper: clipping, chain-seeded noise identical across runs, adaptive clipping, accounting, and
the wrapper around other rules (median, FedAdam)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from opacus.accountants import RDPAccountant

from aggregator.strategies import (
    CentralDP,
    ClientUpdate,
    CoordinateMedian,
    FedAdam,
    FedAvg,
    RoundContext,
    get_strategy,
)
from aggregator.strategies.central_dp import round_seed
from aggregator.strategies.ops import tensors_norm
from fedchain.privacy import central_epsilon
from tests.support.subproc import run_with_threads

TASKS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BLOCK = bytes.fromhex("ab" * 32)
GLOBAL = {"b": np.zeros(2, np.float32), "w": np.zeros((2, 2), np.float32)}


def _ctx(seed: bytes = b"\x07" * 32, previous: dict | None = None, released: int = 1, **more) -> RoundContext:
    return RoundContext(1, 1, seed, previous or {}, released, **more)


def _u(trainer: str, w: list[list[float]], b: list[float], n: int = 10) -> ClientUpdate:
    return ClientUpdate(trainer, {"w": np.asarray(w, np.float32), "b": np.asarray(b, np.float32)}, n)


def test_clipping_without_noise_is_the_mean_of_clipped_deltas() -> None:
    strategy = get_strategy("dp-fedavg", {"clip_norm": 1.0, "noise_multiplier": 0.0})
    small = _u("0xa", [[0.3, 0.0], [0.0, 0.4]], [0.0, 0.0], n=1)  # norm 0.5: kept
    big = _u("0xb", [[3.0, 0.0], [0.0, 4.0]], [0.0, 0.0], n=99)  # norm 5: scaled to 1, weight ignored
    result = strategy.aggregate(GLOBAL, [big, small], _ctx())
    assert np.allclose(result.tensors["w"], [[(0.3 + 0.6) / 2, 0.0], [0.0, (0.4 + 0.8) / 2]], atol=1e-7)
    report = result.report["central_dp"]
    assert report["clients"] == 2 and report["clipped"] == 1 and report["epsilon_round"] is None


def test_noise_has_the_planned_scale() -> None:
    glob = {"w": np.zeros(20000, np.float32)}
    updates = [ClientUpdate(f"0x{i}", {"w": np.zeros(20000, np.float32)}, 1) for i in range(4)]
    out = CentralDP(clip_norm=0.5, noise_multiplier=2.0).aggregate(glob, updates, _ctx()).tensors
    assert float(np.std(out["w"])) == pytest.approx(2.0 * 0.5 / 4, rel=0.03)  # z * C / m


def test_same_round_data_same_bytes_different_round_data_different_noise() -> None:
    updates = [_u("0xa", [[0.1, 0.2], [0.3, 0.4]], [0.5, 0.6]), _u("0xb", [[1, 2], [3, 4]], [5, 6])]
    seed = round_seed(31337, TASKS, 1, 2, BLOCK)
    strategy = CentralDP(clip_norm=1.0, noise_multiplier=1.0)
    a = strategy.aggregate(GLOBAL, updates, _ctx(seed)).tensors
    b = get_strategy("dp-fedavg", {}).aggregate(GLOBAL, list(reversed(updates)), _ctx(seed)).tensors
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    for other in (round_seed(31337, TASKS, 1, 2, bytes.fromhex("ac" * 32)), round_seed(31337, TASKS, 1, 3, BLOCK),
                  round_seed(31337, TASKS, 2, 2, BLOCK), round_seed(31337, TASKS, 1, 2, BLOCK, b"committee")):
        assert other != seed
        c = strategy.aggregate(GLOBAL, updates, _ctx(other)).tensors
        assert not np.array_equal(a["w"], c["w"])


def test_round_seed_is_abi_keccak_of_the_round_data() -> None:
    from eth_abi import encode
    from eth_utils import keccak

    expected = keccak(encode(["string", "uint256", "address", "uint256", "uint256", "bytes32", "bytes32"],
                             ["fedchain.central-dp/1", 31337, TASKS, 4, 5, BLOCK, keccak(b"s")]))
    assert round_seed(31337, TASKS, 4, 5, BLOCK, b"s") == expected
    with pytest.raises(ValueError):
        round_seed(31337, TASKS, 4, 5, b"short")


SNIPPET = """
import numpy as np
from aggregator.strategies.central_dp import round_seed
from aggregator.strategies import ClientUpdate, RoundContext, get_strategy
from fedchain.codec import ModelManifest, encode_model, sha256
from fedchain.architectures import expected_shapes
rng = np.random.default_rng(3)
shapes = expected_shapes("mlp:64-256-128-10")
updates = [ClientUpdate(f"0x{i:040x}", {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}, 5)
           for i in range(5)]
glob = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
seed = round_seed(1, "0x5FbDB2315678afecb367f032d93F642f64180aa3", 1, 1, bytes(32))
out = []
for name, params in [("dp-fedavg", {"clip_norm": 2.0, "noise_multiplier": 0.8, "target_quantile": 0.5}),
                     ("median", {"central_dp": {"clip_norm": 2.0, "noise_multiplier": 0.8}})]:
    result = get_strategy(name, params).aggregate(glob, updates, RoundContext(1, 1, seed, {}, 1))
    manifest = ModelManifest(kind="aggregate", architecture="x", details=result.report)
    out.append(sha256(encode_model(result.tensors, manifest)).hex())
print(" ".join(out))
"""


def test_central_dp_bytes_identical_across_processes_and_thread_counts() -> None:
    namespace: dict[str, object] = {}
    exec(SNIPPET.replace("print(", "result = ("), namespace)  # this process, default threads
    two = run_with_threads(SNIPPET, 2)  # a fresh interpreter with 2 threads
    assert len(two) == 129 and namespace["result"] == two


def test_adaptive_clipping_tracks_the_target_quantile_and_carries_over() -> None:
    rng = np.random.default_rng(0)
    glob = {"w": np.zeros(8, np.float32)}
    updates = [ClientUpdate(f"0x{i:02x}", {"w": (rng.normal(size=8) * 0.01).astype(np.float32)}, 1)
               for i in range(40)]
    strategy = CentralDP(clip_norm=1.0, noise_multiplier=0.5, target_quantile=0.5, count_noise_std=1.0)
    previous: dict = {}
    clips = []
    for r in range(1, 6):
        previous = strategy.aggregate(glob, updates, RoundContext(1, r, bytes([r]) * 32, previous, r)).report
        clips.append((previous["central_dp"]["clip_norm"], previous["central_dp"]["next_clip_norm"]))
    # every update is far below the clip norm: the norm shrinks each round, and each round starts from the last
    assert all(nxt < cur for cur, nxt in clips)
    assert all(clips[i][1] == clips[i + 1][0] for i in range(len(clips) - 1))
    fixed = CentralDP(clip_norm=1.0, noise_multiplier=0.5).report_without_updates(
        RoundContext(1, 2, b"\x01" * 32, previous, 2))
    assert fixed["central_dp"]["clip_norm"] == 1.0  # fixed clipping ignores carried state


def test_central_epsilon_is_opacus_rdp_at_sampling_rate_one() -> None:
    for z, rounds in ((1.0, 1), (1.0, 10), (3.0, 50)):
        acct = RDPAccountant()
        for _ in range(rounds):
            acct.step(noise_multiplier=z, sample_rate=1.0)
        assert central_epsilon(z, rounds, 1e-5) == acct.get_epsilon(delta=1e-5)
    assert central_epsilon(1.0, 0, 1e-5) == 0.0 and central_epsilon(0.0, 3, 1e-5) == math.inf
    result = CentralDP(noise_multiplier=1.0).aggregate(GLOBAL, [_u("0xa", [[0, 0], [0, 0]], [0, 0])],
                                                        _ctx(released=3))
    report = result.report["central_dp"]
    assert report["rounds"] == 3
    assert report["epsilon_round"] == central_epsilon(1.0, 1, 1e-5)
    assert report["epsilon_total"] == central_epsilon(1.0, 3, 1e-5)


def test_adaptive_noise_split_and_bad_parameters() -> None:
    strategy = CentralDP(noise_multiplier=1.0, target_quantile=0.5, count_noise_std=1.0)
    assert strategy.update_noise_multiplier == pytest.approx((1 - 0.25) ** -0.5)
    assert CentralDP(noise_multiplier=1.0).update_noise_multiplier == 1.0
    assert tensors_norm({"a": np.asarray([3.0]), "b": np.asarray([4.0])}) == 5.0
    with pytest.raises(ValueError, match="noise_multiplier < 2"):
        CentralDP(noise_multiplier=3.0, target_quantile=0.5, count_noise_std=1.0)
    for params in ({"clip_norm": 0}, {"noise_multiplier": -1}, {"target_quantile": 2}, {"delta": 1},
                   {"clip_norm": "1"}, {"epsilon": 3}):
        with pytest.raises(ValueError):
            get_strategy("dp-fedavg", params)
    for wrapped in ({"central_dp": {"clip_norm": 0}}, {"central_dp": {"epsilon": 3}}, {"central_dp": 1.0}):
        with pytest.raises(ValueError, match="central_dp"):
            get_strategy("median", wrapped)
    with pytest.raises(ValueError, match="central_dp"):
        get_strategy("dp-fedavg", {"central_dp": {}})
    with pytest.raises(ValueError, match="seed"):
        CentralDP().aggregate(GLOBAL, [_u("0xa", [[0, 0], [0, 0]], [0, 0])])


def test_wrapped_median_gets_per_update_noise_of_the_same_mechanism() -> None:
    """Around a rule that is not a mean, every clipped delta is released with its own N(0, (z C)^2)."""
    glob = {"w": np.zeros(30000, np.float32)}
    updates = [ClientUpdate(f"0x{i}", {"w": np.zeros(30000, np.float32)}, 1) for i in range(3)]
    strategy = get_strategy("median", {"central_dp": {"clip_norm": 0.5, "noise_multiplier": 2.0}})
    assert isinstance(strategy, CentralDP) and isinstance(strategy.inner, CoordinateMedian)
    assert strategy.name == "median+central_dp"
    result = strategy.aggregate(glob, updates, _ctx())
    # the median of three N(0, s^2) has standard deviation ~0.67 s (s = z C = 1)
    assert 0.55 < float(np.std(result.tensors["w"])) < 0.8
    assert result.report["central_dp"]["clients"] == 3
    noiseless = get_strategy("median", {"central_dp": {"clip_norm": 10.0, "noise_multiplier": 0.0}})
    honest = [_u("0xa", [[1, 0], [0, 0]], [0, 0]), _u("0xb", [[2, 0], [0, 0]], [0, 0]),
              _u("0xc", [[100, 0], [0, 0]], [0, 0])]  # the last one clipped to norm 10, then the median
    assert noiseless.aggregate(GLOBAL, honest, _ctx()).tensors["w"].tolist() == [[2.0, 0.0], [0.0, 0.0]]


def test_wrapped_server_optimizer_steps_on_the_noisy_average() -> None:
    """Around FedAdam the DP release is the clipped noisy mean; the optimizer step is post-processing."""
    updates = [_u("0xa", [[0.3, 0.0], [0.0, 0.4]], [0.0, 0.0]), _u("0xb", [[3.0, 0.0], [0.0, 4.0]], [0.0, 0.0])]
    wrapped = get_strategy("fedadam", {"lr": 0.1, "central_dp": {"clip_norm": 1.0, "noise_multiplier": 0.0}})
    assert wrapped.uses_server_state and wrapped.uses_round_seed
    result = wrapped.aggregate(GLOBAL, updates, _ctx())
    average = CentralDP(FedAvg(), clip_norm=1.0, noise_multiplier=0.0).aggregate(GLOBAL, updates, _ctx()).tensors
    expected = FedAdam(lr=0.1).step(GLOBAL, average, _ctx())
    assert all(result.tensors[k].tobytes() == expected.tensors[k].tobytes() for k in GLOBAL)
    assert result.server_state is not None and set(result.server_state) == set(expected.server_state)
    assert "central_dp" in result.report

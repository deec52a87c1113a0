"""Scoring: hand-checked evaluation, exact quantisation, identical results across thread counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aggregator.contribution import contributions, score_of
from aggregator.scoring import MAX_UINT64, evaluate, quantize_micro, quantize_ppm
from aggregator.strategies import ClientUpdate
from client.modules import build_model, load_tensors
from fedchain.architectures import initial_tensors
from tests.support.subproc import run_with_threads


def test_tiny_logreg_by_hand() -> None:
    tensors = {"0.weight": np.eye(2, dtype=np.float32), "0.bias": np.zeros(2, np.float32)}
    x = np.array([[1, 0], [0, 1], [2, 1], [0, 3]], dtype=np.float32)
    y = np.array([0, 1, 1, 1])
    # logits = x; predictions [0, 1, 0, 1] -> 3 of 4 right.
    # cross-entropy: log(1 + e^(other - own)) per row: own-other = 1, 1, -1, 3
    hand = (2 * math.log1p(math.exp(-1)) + math.log1p(math.exp(1)) + math.log1p(math.exp(-3))) / 4
    result = evaluate("logreg:2-2", tensors, x, y)
    assert result.accuracy == 0.75
    assert result.loss == pytest.approx(hand, rel=1e-14)


def test_matches_torch_float64_forward() -> None:
    arch = "mlp:6-5-4"
    tensors = initial_tensors(arch, seed=9)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    y = rng.integers(0, 4, size=50)
    model = build_model(arch)
    load_tensors(model, tensors)
    model = model.double()
    with torch.no_grad():
        out = model(torch.from_numpy(x.astype(np.float64)))
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item()
    acc = float((out.argmax(dim=1).numpy() == y).mean())
    result = evaluate(arch, tensors, x, y)
    assert result.accuracy == acc
    assert result.loss == pytest.approx(loss, rel=1e-12)


def test_quantize_ppm_exact_half_even() -> None:
    assert quantize_ppm(1 / 128) == 7812  # exactly 7812.5 -> even
    assert quantize_ppm(3 / 128) == 23438  # exactly 23437.5 -> even
    assert quantize_ppm(0.75) == 750_000
    assert quantize_ppm(1.0) == 1_000_000
    assert quantize_ppm(1.5) == 1_000_000 and quantize_ppm(-0.2) == 0
    assert quantize_ppm(2 / 3) == 666_667
    with pytest.raises(ValueError):
        quantize_ppm(float("nan"))


def test_quantize_micro() -> None:
    assert quantize_micro(5 / 128) == 39062  # exactly 39062.5 -> even
    assert quantize_micro(7 / 128) == 54688  # exactly 54687.5 -> even
    assert quantize_micro(2.5e-6) == 3  # the double nearest 2.5e-6 is slightly above it: no tie
    assert quantize_micro(1234.5) == 1_234_500_000
    assert quantize_micro(-1.0) == 0
    assert quantize_micro(float("inf")) == MAX_UINT64 and quantize_micro(float("nan")) == MAX_UINT64
    assert quantize_micro(1e300) == MAX_UINT64


def test_an_update_is_scored_by_the_loss_its_information_saves() -> None:
    """A lone update that fits the validation set saves loss against the global model (score > 1); one that
    fits it backwards costs loss and scores the floor."""
    x = np.array([[1, 0], [0, 1], [2, 1], [0, 3]], dtype=np.float32)
    y = np.array([0, 1, 1, 1])
    zero = {"0.weight": np.zeros((2, 2), np.float32), "0.bias": np.zeros(2, np.float32)}
    eye = {"0.weight": np.eye(2, dtype=np.float32), "0.bias": np.zeros(2, np.float32)}
    ones = {"0.weight": np.array([[0, 0], [0, 0]], np.float32), "0.bias": np.array([0, 1], np.float32)}
    base = quantize_micro(evaluate("logreg:2-2", zero, x, y).loss)
    alone = contributions("logreg:2-2", zero, [ClientUpdate("0xA", eye, 5)], x, y)["0xA"]
    assert alone.marginal_micro == base - quantize_micro(evaluate("logreg:2-2", eye, x, y).loss) > 0
    assert alone.score == score_of(alone.marginal_micro - alone.chance_micro, base)
    both = contributions("logreg:2-2", zero, [ClientUpdate("0xA", eye, 5), ClientUpdate("0xB", ones, 7)], x, y)
    assert all(c.marginal_micro > 0 for c in both.values())
    assert both["0xA"].score == score_of(both["0xA"].marginal_micro - both["0xA"].chance_micro, base)
    flipped = {"0.weight": -np.eye(2, dtype=np.float32), "0.bias": np.zeros(2, np.float32)}
    worse = contributions("logreg:2-2", zero, [ClientUpdate("0xC", flipped, 1)], x, y)["0xC"]
    assert worse.marginal_micro < 0 and worse.score == 1


def test_evaluate_rejects_bad_input() -> None:
    tensors = initial_tensors("logreg:2-2", 0)
    with pytest.raises(ValueError):
        evaluate("logreg:2-2", tensors, np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError):
        evaluate("logreg:2-2", tensors, np.zeros((3, 2), np.float32), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        evaluate("logreg:2-2", tensors, np.zeros((3, 5), np.float32), np.array([0, 1, 1]))


EVALUATE_SNIPPET = """
import numpy as np
from aggregator.scoring import evaluate
from fedchain.data import load_dataset
from fedchain.architectures import initial_tensors
x, y = load_dataset("digits")
r = evaluate("mlp:64-128-10", initial_tensors("mlp:64-128-10", 5), x[:600], y[:600])
print(r.accuracy.hex(), r.loss.hex())
"""


def test_evaluate_identical_across_thread_counts() -> None:
    one = run_with_threads(EVALUATE_SNIPPET, 1)
    two = run_with_threads(EVALUATE_SNIPPET, 2)
    assert one == two and len(one.split()) == 2
    namespace: dict[str, object] = {}
    exec(EVALUATE_SNIPPET.replace("print(", "out = ("), namespace)
    assert " ".join(namespace["out"]) == one  # type: ignore[arg-type]

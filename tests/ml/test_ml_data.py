"""Datasets, holdout splits, Dirichlet partitions and user npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedchain.data import DATASETS, dirichlet_partition, load_dataset, load_npz, split_holdout


@pytest.mark.parametrize("name", DATASETS)
def test_load_dataset_types_and_scaling(name: str) -> None:
    x, y = load_dataset(name)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.ndim == 2 and y.shape == (len(x),) and len(x) > 100
    assert np.isfinite(x).all()
    if name == "digits":
        assert x.shape[1] == 64 and x.min() == 0.0 and x.max() == 1.0
    else:
        assert np.allclose(x.mean(axis=0), 0, atol=1e-5)
        assert np.allclose(x.std(axis=0), 1, atol=1e-4)
    x2, y2 = load_dataset(name)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("mnist")


def _labelled(n_per_class: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)]).astype(np.int64)
    x = np.arange(len(y), dtype=np.float32)[:, None]  # the feature is the row index
    return x, y


def test_split_holdout_stratified_disjoint_deterministic() -> None:
    x, y = _labelled((100, 60, 40))
    (xt, yt), (xv, yv), (xs, ys) = split_holdout(x, y, 0.2, 0.25, seed=5)
    rows = [xt[:, 0], xv[:, 0], xs[:, 0]]
    assert sum(len(r) for r in rows) == len(y)
    assert len(np.unique(np.concatenate(rows))) == len(y)
    assert np.bincount(yv).tolist() == [20, 12, 8]
    assert np.bincount(ys).tolist() == [25, 15, 10]
    assert np.array_equal(y[xv[:, 0].astype(int)], yv)
    again = split_holdout(x, y, 0.2, 0.25, seed=5)
    assert np.array_equal(again[1][0], xv)
    other = split_holdout(x, y, 0.2, 0.25, seed=6)
    assert not np.array_equal(other[1][0], xv)


def test_split_holdout_bad_fractions() -> None:
    x, y = _labelled((10, 10))
    with pytest.raises(ValueError):
        split_holdout(x, y, 0.6, 0.5, seed=0)
    with pytest.raises(ValueError):
        split_holdout(x, y[:5], 0.1, 0.1, seed=0)


def _skew(y: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label distribution and the global one."""
    classes = int(y.max()) + 1
    overall = np.bincount(y, minlength=classes) / len(y)
    return float(np.mean([0.5 * np.abs(np.bincount(y[p], minlength=classes) / len(p) - overall).sum() for p in parts]))


def test_dirichlet_partition_covers_all_and_is_deterministic() -> None:
    _, y = load_dataset("digits")
    parts = dirichlet_partition(y, num_clients=5, alpha=0.5, seed=1)
    assert len(parts) == 5
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(len(y)))
    assert all(len(p) >= 10 and p.dtype == np.int64 for p in parts)
    again = dirichlet_partition(y, num_clients=5, alpha=0.5, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = dirichlet_partition(y, num_clients=5, alpha=0.5, seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def test_dirichlet_partition_label_skew_grows_as_alpha_shrinks() -> None:
    _, y = load_dataset("digits")
    skewed = _skew(y, dirichlet_partition(y, 5, 0.1, seed=0))
    mild = _skew(y, dirichlet_partition(y, 5, 0.5, seed=0))
    iid = _skew(y, dirichlet_partition(y, 5, 1000.0, seed=0))
    assert skewed > mild > iid
    assert iid < 0.05 and mild > 0.2


def test_dirichlet_partition_min_size_top_up() -> None:
    y = np.repeat(np.arange(5), 12)  # 60 samples, 5 clients: min 12 each forces the top-up path
    parts = dirichlet_partition(y, num_clients=5, alpha=0.05, seed=3, min_size=12)
    assert [len(p) for p in parts] == [12] * 5
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(60))


def test_dirichlet_partition_bad_args() -> None:
    y = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError):
        dirichlet_partition(y, 2, 0.5, seed=0, min_size=10)
    with pytest.raises(ValueError):
        dirichlet_partition(y, 0, 0.5, seed=0)
    with pytest.raises(ValueError):
        dirichlet_partition(y, 2, 0.0, seed=0, min_size=1)


def test_load_npz_roundtrip_and_refusals(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.arange(12, dtype=np.float64).reshape(4, 3), y=np.array([0, 1, 2, 1], dtype=np.int32))
    x, y = load_npz(good)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (4, 3)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError):
        load_npz(pickled)
    missing = tmp_path / "missing.npz"
    np.savez(missing, x=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'x' and 'y'"):
        load_npz(missing)
    float_labels = tmp_path / "float_labels.npz"
    np.savez(float_labels, x=np.zeros((2, 2)), y=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="integer"):
        load_npz(float_labels)
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, x=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(ValueError):
        load_npz(mismatched)

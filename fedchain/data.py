"""Datasets: scikit-learn's bundled sets (no downloads), holdout splits, non-IID partitions, npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATASETS = ("digits", "breast_cancer", "wine", "iris")
Split = tuple[np.ndarray, np.ndarray]


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features float32 ``[n, f]`` and labels int64 ``[n]`` of a bundled scikit-learn dataset.

    ``digits`` is scaled by the fixed factor 1/16 (pixel range 0..16). The others are standardised with the
    mean and standard deviation of the full public dataset, so every party computes the same features.
    """
    from sklearn import datasets  # imported lazily: scikit-learn is slow to import

    loaders = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if name == "digits":
        x = x / 16.0
    else:
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def split_holdout(
    x: np.ndarray, y: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[Split, Split, Split]:
    """Stratified, deterministic ``(train, validation, test)`` split; each part is ``(x, y)``.

    Per class, a seeded permutation is cut into ``round(fraction * n_class)`` validation and test samples;
    indices within each part are kept in ascending order.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels")
    fractions_ok = 0 <= validation_fraction < 1 and 0 <= test_fraction < 1
    if not (fractions_ok and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(validation_fraction * len(idx)))
        n_test = int(round(test_fraction * len(idx)))
        n_val = min(n_val, len(idx))
        n_test = min(n_test, len(idx) - n_val)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    out = []
    for chunks in parts:
        idx = np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
        out.append((x[idx], y[idx]))
    return out[0], out[1], out[2]


def dirichlet_partition(
    y: np.ndarray, num_clients: int, alpha: float, seed: int, min_size: int = 10
) -> list[np.ndarray]:
    """Split sample indices among clients with label skew: per class, shares drawn from Dirichlet(alpha).

    Deterministic for a seed. Draws are repeated (up to 100 times) until every client holds at least
    ``min_size`` samples; if that never happens, the smallest clients are topped up from the largest.
    Returns sorted int64 index arrays that together cover every sample exactly once.
    """
    y = np.asarray(y)
    n = len(y)
    if num_clients < 1:
        raise ValueError("num_clients must be at least 1")
    if not alpha > 0:
        raise ValueError("alpha must be positive")
    if min_size < 0 or num_clients * min_size > n:
        raise ValueError(f"cannot give {num_clients} clients at least {min_size} of {n} samples each")
    rng = np.random.default_rng(seed)
    labels = np.unique(y)
    clients: list[list[int]] = []
    for _attempt in range(100):
        clients = [[] for _ in range(num_clients)]
        for label in labels:
            idx = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for client, chunk in enumerate(np.split(idx, cuts)):
                clients[client].extend(chunk.tolist())
        if min(len(c) for c in clients) >= min_size:
            break
    else:
        _top_up(clients, min_size)
    return [np.sort(np.asarray(c, dtype=np.int64)) for c in clients]


def _top_up(clients: list[list[int]], min_size: int) -> None:
    """Move samples from the largest client to each client below ``min_size`` (deterministic)."""
    for small in range(len(clients)):
        while len(clients[small]) < min_size:
            largest = max(range(len(clients)), key=lambda c: (len(clients[c]), -c))
            clients[small].append(clients[largest].pop())


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A user's local data: ``.npz`` with ``x`` (``[n, f]``, or images ``[n, C, H, W]`` / ``[n, H, W]``, flattened
    here in channel, row, column order) and integer ``y`` (``[n]``); never unpickles."""
    with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive.files or "y" not in archive.files:
            raise ValueError(f"{path}: npz file must hold arrays 'x' and 'y', found {sorted(archive.files)}")
        x, y = archive["x"], archive["y"]
    if x.ndim in (3, 4) and y.ndim == 1 and len(x) == len(y):
        x = x.reshape(len(x), -1)  # images: one row per image, as the cnn family reads them
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{path}: expected x [n, features] and y [n], got x{x.shape} y{y.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{path}: x must be real numbers, got {x.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: y must hold integer class labels, got {y.dtype}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{path}: class labels must be non-negative")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: x contains NaN or infinite values")
    return x, np.ascontiguousarray(y, dtype=np.int64)

"""Where a trainer's private data comes from: a .npz file, or a non-IID shard of a built-in dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedchain.data import dirichlet_partition, load_dataset, load_npz, split_holdout

BUILTIN = ("digits", "breast_cancer", "wine", "iris")
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.2


def parse_shard(shard: str) -> tuple[int, int]:
    """'2/5' -> (1, 5): zero-based index and count."""
    try:
        index, count = (int(p) for p in shard.split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard must look like I/N (e.g. 2/5), got {shard!r}") from exc
    if not 1 <= index <= count:
        raise ValueError(f"--shard {shard}: I must be between 1 and N")
    return index - 1, count


def load_trainer_data(
    spec: str, shard: str = "1/1", alpha: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Load the trainer's data. Trainers sharing a built-in dataset must use the same seed for disjoint shards."""
    if spec == "none":
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    if spec in BUILTIN:
        x, y = load_dataset(spec)
        (x_train, y_train), _, _ = split_holdout(x, y, VALIDATION_FRACTION, TEST_FRACTION, seed)
        index, count = parse_shard(shard)
        if count == 1:
            return x_train, y_train
        part = dirichlet_partition(y_train, count, alpha, seed)[index]
        return x_train[part], y_train[part]
    path = Path(spec)
    if path.suffix == ".npz" and path.is_file():
        return load_npz(path)
    raise ValueError(f"unknown data {spec!r}: use one of {', '.join(BUILTIN)} or an existing .npz file")

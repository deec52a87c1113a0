"""Publishing what a task references: the initial model and the validation set, as fedchain files by CID."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedchain.architectures import expected_shapes, initial_tensors
from fedchain.codec import ModelManifest, decode_dataset, encode_dataset, encode_model, sha256
from fedchain.store import ContentStore


@dataclass(frozen=True)
class Published:
    """A stored file: what the task spec records of it."""

    cid: str
    digest: bytes
    size: int


def publish_bytes(store: ContentStore, blob: bytes) -> Published:
    return Published(store.put(blob), sha256(blob), len(blob))


def publish_model(store: ContentStore, architecture: str, tensors: dict[str, np.ndarray]) -> Published:
    """An initial model file for ``architecture`` (its tensors must be the architecture's names and shapes)."""
    shapes = expected_shapes(architecture)
    if set(tensors) != set(shapes) or any(tuple(np.shape(tensors[k])) != shapes[k] for k in shapes):
        raise ValueError(f"the tensors do not match {architecture}: expected {shapes}")
    manifest = ModelManifest(kind="initial", architecture=architecture)
    return publish_bytes(store, encode_model({k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()},
                                             manifest))


def publish_initial_model(store: ContentStore, architecture: str, seed: int) -> Published:
    """The architecture's deterministic initial weights for ``seed``, published."""
    return publish_model(store, architecture, initial_tensors(architecture, seed))


def publish_dataset(store: ContentStore, x: np.ndarray, y: np.ndarray, name: str) -> Published:
    """A labelled validation set (features float32, labels int64), published; decoded back to check it."""
    blob = encode_dataset(x, y, name=name)
    decode_dataset(blob, max(len(blob), 1))
    return publish_bytes(store, blob)

"""Hostile trainers' updates, for the Byzantine benchmark and the end-to-end tests only (never used by a node).

Kinds (``ATTACKS``): ``sign_flip`` (``g - 4 d``), ``scaling`` (``g + 20 d``, boosting), ``noise`` (``g`` plus
N(0, 1) per weight), ``label_flip`` (the honest update of a model trained on labels ``k - 1 - y``: see
``flip_labels``), ``zero_update`` (all zeros) and ``global_replay`` (the current global model sent back).
``honest`` and ``replay`` (a copy of another trainer's update, chosen by the caller) pass the update through.
"""

from __future__ import annotations

import numpy as np

ATTACKS = ("sign_flip", "scaling", "noise", "label_flip", "zero_update", "global_replay")
PASS_THROUGH = ("honest", "label_flip", "replay")


def flip_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The label-flipping attacker's training labels: class ``k`` becomes ``num_classes - 1 - k``."""
    return num_classes - 1 - np.asarray(labels)


def attack_update(kind: str, honest: dict[str, np.ndarray], glob: dict[str, np.ndarray],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The update a trainer of ``kind`` sends, built from its honest update ``honest`` and the global model."""
    if kind == "sign_flip":
        return {k: (glob[k] - 4.0 * (honest[k] - glob[k])).astype(np.float32) for k in glob}
    if kind == "scaling":
        return {k: (glob[k] + 20.0 * (honest[k] - glob[k])).astype(np.float32) for k in glob}
    if kind == "noise":
        return {k: (glob[k] + rng.normal(scale=1.0, size=glob[k].shape)).astype(np.float32) for k in glob}
    if kind == "zero_update":
        return {k: np.zeros_like(glob[k]) for k in glob}
    if kind == "global_replay":
        return {k: glob[k].copy() for k in glob}
    if kind in PASS_THROUGH:
        return honest
    raise ValueError(f"unknown attack {kind!r}; known: {', '.join(ATTACKS + PASS_THROUGH)}")

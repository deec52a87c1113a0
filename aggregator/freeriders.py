"""Free-rider detection: updates that carry no work of their own are rejected with a reason code.

Codes (written to the aggregate manifest's ``details.rejected``):

- ``zero_update``     — every weight is (nearly) zero: ``||w|| <= REL_TOLERANCE * ||g||``
- ``global_replay``   — the update is (nearly) the current global model: ``||w - g|| <= REL_TOLERANCE * ||g||``
- ``replayed_update`` — (nearly) equal to another trainer's update revealed earlier in the same round (commit
  order decides who was first) or to any update revealed in the previous ``REPLAY_LOOKBACK_ROUNDS`` rounds:
  ``||w - u|| <= REL_TOLERANCE * ||w - g||``
- ``near_duplicate``  — a jittered copy of such an update: its delta from the current global model points the same
  way as the other's (``cos(w - g, u - g) >= DUPLICATE_COSINE``) with a similar length (the shorter at least
  ``DUPLICATE_NORM_RATIO`` of the longer). k identities sending one training run earn what one would: the first in
  commit order is scored, the copies are rejected (and slashed). A trainer's own earlier updates are compared for
  exact replays only: a converged honest trainer's update resembles its previous one (measured: cosine 0.995 on
  breast_cancer), and a stale direction re-sent earns only its marginal value, which the last global step took
- ``public_direction`` — an update derived from public models only: its delta lies (within ``PUBLIC_TOLERANCE``
  of its length) in ``span{g, g - g_prev}``, the global model and the last global step, which anybody can compute
  without any data

Updates that escape these tolerances by adding noise gain nothing either: their contribution score counts only the
part of the update outside the public directions, and noise makes the aggregate worse (``aggregator/contribution.py``).

Comparisons with other updates (replays, near duplicates) use their count sketches keyed by the round
(``aggregator.fingerprints``): distances and cosines of the sketched deltas. The checks against the global model
(zero, global replay, public direction) are exact. All norms are float64 with numpy's deterministic pairwise
summation, so every aggregator decides alike.

Memory: one sketch (``8 * SKETCH_BUCKETS`` bytes) per update seen, the global model and its public basis (a few
float64 vectors of ``P``) and one update's float64 delta while checking it: flat in the number of trainers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.contribution import private_part, public_basis
from aggregator.fingerprints import sketches
from aggregator.strategies.ops import cosine, flatten, norm
from aggregator.validation import RejectedUpdate

REL_TOLERANCE = 1e-3
REPLAY_LOOKBACK_ROUNDS = 2
DUPLICATE_COSINE = 0.995  # honest non-IID and IID updates measured at most 0.975 (digits, breast_cancer)
DUPLICATE_NORM_RATIO = 0.9
PUBLIC_TOLERANCE = 0.05


@dataclass(frozen=True)
class KnownUpdate:
    """An update already seen: who revealed it, in which round, and its count sketch under this round's key."""

    trainer: str
    round: int
    sketch: np.ndarray

    @classmethod
    def of(cls, trainer: str, round_: int, tensors: dict[str, np.ndarray], key: bytes) -> KnownUpdate:
        return cls(trainer.lower(), round_, sketches(key, [tensors])[0])


class FreeRiderCheck:
    """Checks one round's updates, in commit order, against the global model and every update seen before."""

    def __init__(self, global_tensors: dict[str, np.ndarray], earlier: Sequence[KnownUpdate] = (),
                 previous_global: dict[str, np.ndarray] | None = None, *, key: bytes) -> None:
        self.key = key  # the round's sketch key (fingerprints.sketch_key): every sketch compared is under it
        self.global_weights = flatten(global_tensors)
        self.global_norm = norm(self.global_weights)
        self.global_sketch = sketches(key, [global_tensors])[0]
        self.known: list[KnownUpdate] = list(earlier)
        previous = None if previous_global is None else flatten(previous_global)
        self.public = public_basis(self.global_weights, previous)

    def check(self, trainer: str, round_: int, tensors: dict[str, np.ndarray], sketch: np.ndarray | None = None
              ) -> None:
        """Raise ``RejectedUpdate`` for a free rider; otherwise remember the update (its ``sketch`` under the
        round's key, computed here unless given) for the later checks of the round."""
        sketch = sketches(self.key, [tensors])[0] if sketch is None else sketch
        delta = flatten(tensors) - self.global_weights
        limit = REL_TOLERANCE * self.global_norm
        if norm(delta + self.global_weights) <= limit:
            raise RejectedUpdate("zero_update", "the update's weights are all (nearly) zero")
        own_change = norm(delta)
        if own_change <= limit:
            raise RejectedUpdate("global_replay", f"the update is the current global model (distance {own_change:.3g})")
        own = sketch - self.global_sketch
        own_length = norm(own)
        for known in self.known:
            where = "this round" if known.round == round_ else f"round {known.round}"
            other = known.sketch - self.global_sketch
            if norm(own - other) <= REL_TOLERANCE * own_length:
                raise RejectedUpdate("replayed_update", f"the update replays {known.trainer}'s update of {where}")
            other_length = norm(other)
            if known.trainer == trainer.lower() and known.round < round_:
                continue  # its own earlier update: a converged honest trainer's next one looks like it
            similarity = cosine(own, other)
            if (similarity >= DUPLICATE_COSINE
                    and min(own_length, other_length) >= DUPLICATE_NORM_RATIO * max(own_length, other_length)):
                raise RejectedUpdate("near_duplicate", f"the update is a near copy of {known.trainer}'s update of "
                                                       f"{where} (cosine {similarity:.4f})")
        residual = norm(private_part(delta, self.public))
        if residual <= PUBLIC_TOLERANCE * own_change:
            raise RejectedUpdate("public_direction", "the update is built from the public global models only "
                                                     f"(its own part is {residual / own_change:.2%} of its change)")
        self.known.append(KnownUpdate(trainer.lower(), round_, sketch))

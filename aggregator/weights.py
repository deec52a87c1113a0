"""Attested weights: the weight the committee puts in each accepted trainer's score leaf and aggregates with.

A trainer's revealed ``numSamples`` is a claim nobody can check. The committee attests

    weight_i = min(claimed_i, cap),  cap = min(median_low(claimed of the round's accepted updates), maxSamples)

(``maxSamples`` is the task's per-trainer maximum, which ``revealUpdate`` already enforces; 0 means none). The
median is over the accepted updates' claims, so a minority cannot move it: a claim above the median changes
neither the trainer's weight in the aggregate nor its reward. A trainer whose real count is below the median can
raise its weight at most to the median (docs/THREAT_MODEL.md). Rejected updates have weight 0.

The same weights drive the strategy's aggregation (``ClientUpdate.num_samples``) and the reward
(``RewardVault.claimReward`` pays ``trainerBudget * score * weight / totalWeight``), so what a lie could move in
one it moves in the other.
"""

from __future__ import annotations

from collections.abc import Mapping


def weight_cap(claimed: Mapping[str, int], max_samples: int = 0) -> int:
    """The round's weight cap: the lower median of the claims, and at most the task's ``max_samples``."""
    if not claimed:
        return 0
    ordered = sorted(int(n) for n in claimed.values())
    cap = ordered[(len(ordered) - 1) // 2]
    return min(cap, max_samples) if max_samples > 0 else cap


def attested_weights(claimed: Mapping[str, int], max_samples: int = 0) -> dict[str, int]:
    """Trainer -> attested weight (at least 1 for a positive claim) for the accepted updates' claims."""
    cap = weight_cap(claimed, max_samples)
    return {trainer: max(1, min(int(n), cap)) for trainer, n in claimed.items()}

"""Attested weights: the weight the committee puts in each accepted trainer's score leaf and aggregates with.

A trainer's revealed ``numSamples`` is a claim nobody can check, so it must buy nothing. The committee attests

    weight_i = cap = min(smallest claim of the round's accepted updates, maxSamples)

for every accepted update (``maxSamples`` is the task's per-trainer maximum, which ``revealUpdate`` enforces; 0
means none): all accepted updates weigh the same, in the aggregate and in the reward. Inflating a claim changes
nothing; deflating one lowers every weight alike, which changes no share either. Rejected updates have weight 0.

What a trainer's data is worth is paid through its score instead: the marginal value of its update to the
aggregate (``aggregator/contribution.py``), which more and better data raise. The bench
(``bench/reward_attacks.py``) measured the median-capped alternative: three trainers claiming 1000x their counts
lifted themselves to the median and took more than their honest share; with equal weights they take exactly it,
and the attack-free accuracy stays within a point. The residual (an identity per data shard gains influence) is in
docs/THREAT_MODEL.md.
"""

from __future__ import annotations

from collections.abc import Mapping


def weight_cap(claimed: Mapping[str, int], max_samples: int = 0) -> int:
    """The round's one weight: the smallest claim (at least 1), and at most the task's ``max_samples``."""
    if not claimed:
        return 0
    cap = max(1, min(int(n) for n in claimed.values()))
    return min(cap, max_samples) if max_samples > 0 else cap


def attested_weights(claimed: Mapping[str, int], max_samples: int = 0) -> dict[str, int]:
    """Trainer -> attested weight for the accepted updates' claims: the round's cap for every one of them."""
    cap = weight_cap(claimed, max_samples)
    return dict.fromkeys(claimed, cap)

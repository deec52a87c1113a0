"""Reward eligibility: which rounds an address can still claim, for how much, with which proof.

One walk for the trainer client (over ape), the dashboard's wallet (over web3) and the backend's projections: a
round pays a trainer when it is finalized with a positive total weight, the trainer revealed and has not claimed,
the claim window is open, and the accepted result's leaves (fetched by CID, digest-checked, and rebuilding the
on-chain score root) give it a positive score and weight. The amount is ``RewardVault.claimReward``'s formula
(``fedchain.commitments.reward_share``) over the trainers' part of the round budget (``RewardVault.splitOf``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fedchain.chainview import ChainReader, RoundView
from fedchain.commitments import reward_share
from fedchain.manifests import AggregateDetails, fetch_manifest, verified_scores
from fedchain.protocol import Phase, TrainerStatus
from fedchain.store import ContentStore


@dataclass(frozen=True)
class Claim:
    """One claimable round: the score and attested weight the accepted result gives the trainer, its reward and
    Merkle proof."""

    task_id: int
    round: int
    score: int
    weight: int
    reward: int
    proof: list[bytes]


def pays(rnd: RoundView) -> bool:
    """The round allocated rewards: it finalized with a positive total weight."""
    return rnd.phase == Phase.FINALIZED and rnd.total_weight > 0


def payout(trainer_budget: int, total_weight: int, score: int | None, weight: int | None) -> int:
    """What a trainer with leaf ``(score, weight)`` in a finalized round is paid out of the trainers' part of the
    round budget (0 when nothing: no score or weight, or a round whose total weight is 0)."""
    if not score or not weight or total_weight <= 0:
        return 0
    return reward_share(trainer_budget, score, weight, total_weight)


class ResultCache:
    """Verified aggregate details by (CID, digest, root): content-addressed, so safe to keep (bounded)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._entries: dict[tuple[str, bytes, bytes], AggregateDetails] = {}

    def details(self, store: ContentStore, rnd: RoundView, max_bytes: int) -> AggregateDetails:
        """The round's accepted result details, verified against ``scoresRoot`` (``CodecError`` otherwise)."""
        key = (rnd.result_cid, rnd.result_digest, rnd.scores_root)
        if key not in self._entries:
            manifest = fetch_manifest(store, rnd.result_cid, rnd.result_digest, max_bytes)
            details, _ = verified_scores(manifest, rnd.scores_root)
            if len(self._entries) >= self.limit:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = details
        return self._entries[key]


def claimable(reader: ChainReader, store: ContentStore, address: str, max_bytes: int,
              task_ids: Iterable[int] | None = None, cache: ResultCache | None = None) -> list[Claim]:
    """Every round of ``task_ids`` (default: every task) that ``address`` can still claim."""
    cache = cache or ResultCache()
    tasks = range(1, reader.task_count() + 1) if task_ids is None else task_ids
    out: list[Claim] = []
    for task_id in tasks:
        task = reader.task(task_id)
        for round_ in range(1, task.current_round + 1):
            entry = reader.trainer_entry(task_id, round_, address, with_reveal=False)
            if entry.status != TrainerStatus.REVEALED:
                continue
            rnd = reader.round(task_id, round_)
            if not pays(rnd) or claim_window_closed(reader, task_id, rnd):
                continue
            details = cache.details(store, rnd, max_bytes)
            score = details.scores.get(address.lower(), 0)
            weight = details.weights.get(address.lower(), 0)
            if score == 0 or weight == 0:
                continue
            proof = details.score_tree().proof(address)
            trainer_budget = reader.round_split(task_id, round_)[0]
            reward = payout(trainer_budget, rnd.total_weight, score, weight)
            out.append(Claim(task_id, round_, score, weight, reward, proof))
    return out


def claim_window_closes(reader: ChainReader, task_id: int, rnd: RoundView) -> int:
    """When a finalized round's unclaimed rewards go back to the sponsor (``finalizedAt + claimWindow``)."""
    return rnd.finalized_at + reader.vault_terms(task_id).claim_window


def claim_window_closed(reader: ChainReader, task_id: int, rnd: RoundView) -> bool:
    return reader.pending_timestamp() > claim_window_closes(reader, task_id, rnd)

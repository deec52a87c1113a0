"""Per-trainer round details that live off chain: scores and rejections in the accepted result file's manifest,
epsilon in each update's manifest. Fetched through the content store with digest check and size limit; the
result's scores are used only when they rebuild the round's on-chain score root."""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.central_privacy import central_mechanism, refresh_central_privacy
from backend.models import Contribution, Round
from fedchain.codec import CodecError, ModelManifest
from fedchain.manifests import AggregateDetails, fetch_manifest, verified_scores
from fedchain.protocol import Phase, to_tokens
from fedchain.rewards import payout
from fedchain.store import ContentError, ContentStore

log = logging.getLogger(__name__)


def _digest(digest_hex: str | None) -> bytes | None:
    return bytes.fromhex(digest_hex[2:]) if digest_hex else None


def central_epsilon(details: AggregateDetails) -> float | None:
    """Central DP epsilon of the round, if the aggregation strategy reported one (``details.central_dp``)."""
    report = details.central_dp or {}
    value: Any = report.get("epsilon_round")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value) else None


def load_round_details(session: Session, store: ContentStore, rnd: Round, max_bytes: int) -> None:
    """Fill score, accepted/rejected, reward and epsilon of each contribution of a finalized round (a failed
    round has no result file: only the epsilon its revealed updates spent)."""
    if rnd.phase == Phase.FAILED.key:
        _load_failed_round(session, store, rnd, max_bytes)
        return
    try:
        manifest = fetch_manifest(store, rnd.result_cid or "", _digest(rnd.result_digest), max_bytes)
        details, _ = verified_scores(manifest, _digest(rnd.scores_root) or b"")
    except (ContentError, ValueError) as exc:  # CodecError is a ValueError
        rnd.details_status = "invalid" if isinstance(exc, CodecError) else "unavailable"
        log.info("round %s/%s: result file details %s: %s", rnd.task_id, rnd.round, rnd.details_status, exc)
        return
    rnd.central_epsilon = central_epsilon(details)
    mechanism = central_mechanism(details)
    rnd.central_noise_multiplier, rnd.central_delta = mechanism if mechanism else (None, None)
    total_weight = int(rnd.total_weight or 0)
    budget = int(rnd.trainer_budget_wei or 0)
    contributions = session.scalars(select(Contribution).where(
        Contribution.task_id == rnd.task_id, Contribution.round == rnd.round))
    for contribution in contributions:
        if contribution.samples is None:
            continue  # never revealed
        contribution.score = details.scores.get(contribution.trainer)
        contribution.weight = details.weights.get(contribution.trainer)
        reason = details.rejected.get(contribution.trainer)
        contribution.accepted = reason is None and contribution.score is not None
        if reason is not None:
            contribution.reject_code, contribution.reject_message = reason.code, reason.message
        if not contribution.claimed and contribution.accepted and total_weight > 0:
            reward = payout(budget, total_weight, contribution.score, contribution.weight)
            contribution.reward_wei = str(reward)
            contribution.reward_tokens = to_tokens(reward)
        _record_privacy(contribution, _update_manifest(store, contribution, max_bytes))
    rnd.details_status = "ok"
    if mechanism is not None:
        session.flush()
        refresh_central_privacy(session, rnd.task_id)


def _update_manifest(store: ContentStore, contribution: Contribution, max_bytes: int) -> ModelManifest | None:
    """The manifest of a contribution's update, ``None`` when it cannot be fetched or is not a model file."""
    try:
        return fetch_manifest(store, contribution.update_cid or "", _digest(contribution.update_digest), max_bytes)
    except (ContentError, ValueError):
        return None


def _record_privacy(contribution: Contribution, manifest: ModelManifest | None) -> None:
    """The epsilon an update's manifest reports, and whether it reports one (no epsilon: no DP guarantee);
    both unknown (``None``) when the manifest could not be read."""
    contribution.epsilon = manifest.epsilon_spent if manifest else None
    contribution.local_dp = manifest.epsilon_spent is not None if manifest else None


def _load_failed_round(session: Session, store: ContentStore, rnd: Round, max_bytes: int) -> None:
    """The trainers of a failed round still spent privacy budget on the updates they revealed."""
    rnd.details_status = "ok"
    for contribution in session.scalars(select(Contribution).where(
            Contribution.task_id == rnd.task_id, Contribution.round == rnd.round, Contribution.update_cid.isnot(None))):
        try:
            manifest = fetch_manifest(store, contribution.update_cid or "", _digest(contribution.update_digest),
                                      max_bytes)
        except ContentError as exc:
            rnd.details_status = "unavailable"
            log.info("round %s/%s: update of %s %s", rnd.task_id, rnd.round, contribution.trainer, exc)
            continue
        except ValueError:  # not a model file with a manifest: nothing to report
            continue
        _record_privacy(contribution, manifest)

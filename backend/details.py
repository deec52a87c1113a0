"""Per-trainer round details that live off chain: scores and rejections in the accepted result file's manifest,
epsilon in each update's manifest. Fetched through the content store with digest check and size limit."""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.central_privacy import central_mechanism, refresh_central_privacy
from backend.models import Contribution, Round
from fedchain.codec import MANIFEST_KEY, CodecError, ModelManifest, read_header
from fedchain.commitments import reward_share
from fedchain.store import ContentError, ContentStore

log = logging.getLogger(__name__)
MAX_HEADER_FETCH_BYTES = 64 * 1024 * 1024


def read_manifest(store: ContentStore, cid: str, digest_hex: str | None, max_bytes: int) -> ModelManifest:
    """The manifest of a model file, fetched with the on-chain digest and a size bound (tensors are not decoded)."""
    digest = bytes.fromhex(digest_hex[2:]) if digest_hex else None
    blob = store.get(cid, sha256=digest, max_bytes=max_bytes)
    header = read_header(blob, max_bytes)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise CodecError("bad_manifest", "file has no fedchain manifest")
    return ModelManifest.from_json(metadata[MANIFEST_KEY])


def central_epsilon(details: dict[str, Any]) -> float | None:
    """Central DP epsilon of the round if the aggregation strategy reported one (DP-FedAvg writes
    ``details["central_dp"]["epsilon_round"]``)."""
    for key in ("central_epsilon", "epsilon_round", "epsilon"):
        value = details.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    for key in ("central_dp", "dp"):
        nested = details.get(key)
        if isinstance(nested, dict):
            found = central_epsilon(nested)
            if found is not None:
                return found
    return None


def load_round_details(session: Session, store: ContentStore, rnd: Round, max_bytes: int) -> None:
    """Fill score, accepted/rejected, reward and epsilon of each contribution of a finalized round (a failed
    round has no result file: only the epsilon its revealed updates spent)."""
    if rnd.phase == "failed":
        _load_failed_round(session, store, rnd, max_bytes)
        return
    try:
        manifest = read_manifest(store, rnd.result_cid or "", rnd.result_digest, max_bytes)
    except (ContentError, ValueError) as exc:  # CodecError is a ValueError
        rnd.details_status = "invalid" if isinstance(exc, CodecError) else "unavailable"
        log.info("round %s/%s: result file details %s: %s", rnd.task_id, rnd.round, rnd.details_status, exc)
        return
    details = manifest.details
    scores = details.get("scores") if isinstance(details.get("scores"), dict) else {}
    rejected = details.get("rejected") if isinstance(details.get("rejected"), dict) else {}
    rnd.central_epsilon = central_epsilon(details)
    mechanism = central_mechanism(details)
    rnd.central_noise_multiplier, rnd.central_delta = mechanism if mechanism else (None, None)
    total_weight = int(rnd.total_weight or 0)
    budget = int(rnd.round_budget_wei)
    contributions = session.scalars(select(Contribution).where(
        Contribution.task_id == rnd.task_id, Contribution.round == rnd.round))
    for contribution in contributions:
        if contribution.samples is None:
            continue  # never revealed
        score = scores.get(contribution.trainer)
        contribution.score = int(score) if isinstance(score, int) and not isinstance(score, bool) else None
        reason = rejected.get(contribution.trainer)
        contribution.accepted = reason is None and contribution.score is not None
        if isinstance(reason, dict):
            contribution.reject_code = str(reason.get("code", ""))[:64]
            contribution.reject_message = str(reason.get("message", ""))[:2000]
        if not contribution.claimed and contribution.accepted and total_weight > 0:
            reward = reward_share(budget, contribution.score or 0, contribution.samples, total_weight)
            contribution.reward_wei = str(reward)
            contribution.reward_tokens = reward / 10**18
        _record_privacy(contribution, _update_manifest(store, contribution, max_bytes))
    rnd.details_status = "ok"
    if mechanism is not None:
        session.flush()
        refresh_central_privacy(session, rnd.task_id)


def _update_manifest(store: ContentStore, contribution: Contribution, max_bytes: int) -> ModelManifest | None:
    """The manifest of a contribution's update, ``None`` when it cannot be fetched or is not a model file."""
    try:
        return read_manifest(store, contribution.update_cid or "", contribution.update_digest, max_bytes)
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
            manifest = read_manifest(store, contribution.update_cid or "", contribution.update_digest, max_bytes)
        except ContentError as exc:
            rnd.details_status = "unavailable"
            log.info("round %s/%s: update of %s %s", rnd.task_id, rnd.round, contribution.trainer, exc)
            continue
        except ValueError:  # not a model file with a manifest: nothing to report
            continue
        _record_privacy(contribution, manifest)

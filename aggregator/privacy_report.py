"""What each accepted update says about its trainer's local DP, carried into the aggregate manifest."""

from __future__ import annotations

import math
from typing import Any

from aggregator.validation import RejectedUpdate
from fedchain.codec import ModelManifest

REPORTED_FIELDS = ("epsilon_round", "epsilon_total", "delta", "noise_multiplier", "accountant")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def local_privacy(manifest: ModelManifest) -> dict[str, Any]:
    """``{epsilon_round, epsilon_total, delta, noise_multiplier, accountant}`` from an update manifest's
    ``details.privacy`` (the trainer's own report; only ``epsilon_spent`` is checked against the task bound).

    An update without DP gives ``{"epsilon_total": None}``; a malformed record raises ``RejectedUpdate``.
    """
    record = manifest.details.get("privacy")
    if record is None:
        return {"epsilon_total": manifest.epsilon_spent}
    if not isinstance(record, dict):
        raise RejectedUpdate("bad_manifest", "manifest details.privacy is not an object")
    for name in ("epsilon_round", "epsilon_total", "delta", "noise_multiplier"):
        if not _number(record.get(name)) or record[name] < 0:
            raise RejectedUpdate("bad_manifest", f"manifest details.privacy.{name} is not a non-negative number")
    if not isinstance(record.get("accountant"), str) or len(record["accountant"]) > 16:
        raise RejectedUpdate("bad_manifest", "manifest details.privacy.accountant is not a short string")
    if record["epsilon_total"] != manifest.epsilon_spent or record["epsilon_round"] > record["epsilon_total"]:
        raise RejectedUpdate("bad_manifest", "manifest privacy record disagrees with epsilon_spent")
    return {name: record[name] for name in REPORTED_FIELDS}

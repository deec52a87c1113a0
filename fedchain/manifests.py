"""Typed manifests: what an update and an aggregate file say about themselves, beyond ``ModelManifest``'s fields.

- ``PrivacyRecord``: an update's ``details.privacy``, the trainer's DP-SGD report (infinite values written as null).
- ``AggregateDetails``: an aggregate's ``details``: the strategy, scores, rejections with reason codes,
  contribution breakdowns, the trainers' privacy reports, the server-state reference and the strategy's own
  report (e.g. ``robust``, ``central_dp``), in the JSON layout of docs/PROTOCOL.md.
- ``read_manifest`` decodes only a file's header; ``fetch_manifest`` fetches the file by CID and digest first.
- ``verified_scores`` returns an aggregate's scores only when they rebuild the round's on-chain ``scoresRoot``.

Every parser here treats its input as hostile: malformed content is a ``CodecError`` with a reason code, never
another exception, and nothing unbounded is kept.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fedchain.codec import MANIFEST_KEY, CodecError, ModelManifest, read_header
from fedchain.commitments import MAX_SCORE, ScoreTree
from fedchain.modelfile import read_file_header

MAX_REASON_CODE = 64
MAX_REASON_MESSAGE = 500
MAX_ACCOUNTANT_NAME = 16
_INFINITE_WHEN_NULL = ("epsilon_round", "epsilon_total", "max_grad_norm")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bad(message: str) -> CodecError:
    return CodecError("bad_manifest", message)


@dataclass(frozen=True)
class PrivacyRecord:
    """A trainer's privacy for one round, as its update manifest records it under ``details.privacy``."""

    accountant: str
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    grad_sample_mode: str
    epsilon_round: float
    epsilon_total: float
    epsilon_budget: float | None

    def history_entry(self) -> tuple[float, float, int]:
        """``(noise_multiplier, sample_rate, steps)``, as Opacus' accountants keep history."""
        return (self.noise_multiplier, self.sample_rate, self.steps)

    @classmethod
    def non_private(cls, accountant: str, delta: float) -> PrivacyRecord:
        """A round trained without DP: no noise, so it spends infinite epsilon (and so does every total after it)."""
        return cls(accountant=accountant, delta=delta, noise_multiplier=0.0, sample_rate=1.0, steps=1,
                   max_grad_norm=math.inf, grad_sample_mode="none", epsilon_round=math.inf, epsilon_total=math.inf,
                   epsilon_budget=None)

    def to_record(self) -> dict[str, Any]:
        """JSON has no infinity: an infinite value is written as ``null``."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_record(cls, record: Any) -> PrivacyRecord | None:
        """A ``details.privacy`` record (nulls read back as infinite), or None when it is missing or malformed."""
        if not isinstance(record, Mapping):
            return None
        values = {k: math.inf if k in _INFINITE_WHEN_NULL and v is None else v for k, v in record.items()}
        try:
            parsed = cls(**values)
        except TypeError:
            return None
        numbers = (parsed.delta, parsed.noise_multiplier, parsed.sample_rate, parsed.steps)
        if not isinstance(parsed.accountant, str) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            return None
        return parsed

    @classmethod
    def of_update(cls, manifest: ModelManifest) -> PrivacyRecord | None:
        """The privacy record an update manifest carries in ``details.privacy`` (None: no DP record)."""
        return cls.from_record(manifest.details.get("privacy"))

    def reported(self) -> dict[str, Any]:
        """What an aggregate carries of it: ``{epsilon_round, epsilon_total, delta, noise_multiplier,
        accountant}``."""
        return {"epsilon_round": self.epsilon_round, "epsilon_total": self.epsilon_total, "delta": self.delta,
                "noise_multiplier": self.noise_multiplier, "accountant": self.accountant}


def update_privacy(manifest: ModelManifest) -> dict[str, Any]:
    """What an aggregator reports of an accepted update's local DP; ``CodecError`` for a malformed record.

    Without a record: ``{"epsilon_total": epsilon_spent}``. With one, it must be consistent: non-negative finite
    epsilons, delta and noise, a short accountant name, and ``epsilon_total == epsilon_spent >= epsilon_round``.
    """
    record = manifest.details.get("privacy")
    if record is None:
        return {"epsilon_total": manifest.epsilon_spent}
    if not isinstance(record, Mapping):
        raise _bad("manifest details.privacy is not an object")
    for name in ("epsilon_round", "epsilon_total", "delta", "noise_multiplier"):
        if not _number(record.get(name)) or record[name] < 0:
            raise _bad(f"manifest details.privacy.{name} is not a non-negative number")
    if not isinstance(record.get("accountant"), str) or len(record["accountant"]) > MAX_ACCOUNTANT_NAME:
        raise _bad("manifest details.privacy.accountant is not a short string")
    if record["epsilon_total"] != manifest.epsilon_spent or record["epsilon_round"] > record["epsilon_total"]:
        raise _bad("manifest privacy record disagrees with epsilon_spent")
    return {name: record[name] for name in ("epsilon_round", "epsilon_total", "delta", "noise_multiplier",
                                            "accountant")}


@dataclass(frozen=True)
class Rejection:
    """Why an aggregator rejected an update: a short reason code and a bounded message."""

    code: str
    message: str

    @classmethod
    def bounded(cls, code: str, message: str) -> Rejection:
        """Codes and messages are cut to their bounds: nothing an attacker writes is copied unbounded."""
        return cls(str(code)[:MAX_REASON_CODE], _cut(str(message), MAX_REASON_MESSAGE))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ServerStateRef:
    """The server optimizer's state file that the next round starts from."""

    strategy: str
    cid: str
    sha256: bytes


RESERVED_KEYS = ("strategy", "scores", "weights", "rejected", "contributions", "privacy", "server_state")
MAX_WEIGHT = 2**64 - 1  # a leaf's weight is a uint64


@dataclass(frozen=True)
class AggregateDetails:
    """An aggregate manifest's ``details``."""

    strategy: str = ""
    scores: dict[str, int] = field(default_factory=dict)  # lower-case trainer address -> score (0: rejected)
    weights: dict[str, int] = field(default_factory=dict)  # the committee's attested weight (0: rejected)
    rejected: dict[str, Rejection] = field(default_factory=dict)
    contributions: dict[str, dict[str, int]] = field(default_factory=dict)
    privacy: dict[str, dict[str, Any]] = field(default_factory=dict)
    server_state: ServerStateRef | None = None
    report: dict[str, Any] = field(default_factory=dict)  # the strategy's own keys, e.g. robust, central_dp

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.report)
        if self.strategy:
            out["strategy"] = self.strategy
        if self.server_state is not None:
            ref = self.server_state
            out["server_state"] = {"strategy": ref.strategy, "cid": ref.cid, "sha256": ref.sha256.hex()}
        out["privacy"] = {t: self.privacy[t] for t in sorted(self.privacy)}
        out["scores"] = dict(sorted(self.scores.items()))
        out["weights"] = dict(sorted(self.weights.items()))
        out["rejected"] = {t: asdict(self.rejected[t]) for t in sorted(self.rejected)}
        out["contributions"] = {t: self.contributions[t] for t in sorted(self.contributions)}
        return out

    @classmethod
    def from_json(cls, details: Any) -> AggregateDetails:
        """Parse an aggregate's details; ``CodecError('bad_manifest')`` when a field has the wrong shape."""
        if not isinstance(details, Mapping):
            raise _bad("aggregate details are not an object")
        scores = details.get("scores", {})
        if not isinstance(scores, Mapping) or not all(
                isinstance(t, str) and isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SCORE
                for t, s in scores.items()):
            raise _bad("details.scores must map addresses to integer scores in [0, 1000000]")
        weights = details.get("weights", {})
        if not isinstance(weights, Mapping) or not all(
                isinstance(t, str) and isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= MAX_WEIGHT
                for t, w in weights.items()):
            raise _bad("details.weights must map addresses to integer weights in [0, 2**64)")
        rejected: dict[str, Rejection] = {}
        raw_rejected = details.get("rejected", {})
        if not isinstance(raw_rejected, Mapping):
            raise _bad("details.rejected must be an object")
        for trainer, reason in raw_rejected.items():
            if not isinstance(reason, Mapping):
                raise _bad("details.rejected entries must be objects")
            rejected[str(trainer).lower()] = Rejection.bounded(reason.get("code", ""), reason.get("message", ""))
        contributions = details.get("contributions", {})
        privacy = details.get("privacy", {})
        if not isinstance(contributions, Mapping) or not isinstance(privacy, Mapping):
            raise _bad("details.contributions and details.privacy must be objects")
        ref = details.get("server_state")
        state = None
        if ref is not None:
            keys = ("strategy", "cid", "sha256")
            if not isinstance(ref, Mapping) or not all(isinstance(ref.get(k), str) for k in keys):
                raise _bad("details.server_state must name strategy, cid and sha256")
            try:
                digest = bytes.fromhex(ref["sha256"])
            except ValueError:
                raise _bad("details.server_state.sha256 is not hex") from None
            if len(digest) != 32:
                raise _bad("details.server_state.sha256 is not 32 bytes")
            state = ServerStateRef(ref["strategy"], ref["cid"], digest)
        strategy = details.get("strategy", "")
        return cls(
            strategy=strategy if isinstance(strategy, str) else "",
            scores={t.lower(): int(s) for t, s in scores.items()},
            weights={t.lower(): int(w) for t, w in weights.items()},
            rejected=rejected,
            contributions={str(t).lower(): v for t, v in contributions.items() if isinstance(v, Mapping)},
            privacy={str(t).lower(): v for t, v in privacy.items() if isinstance(v, Mapping)},
            server_state=state,
            report={k: v for k, v in details.items() if k not in RESERVED_KEYS},
        )

    @property
    def central_dp(self) -> dict[str, Any] | None:
        """The central-DP strategy's report for the round, if there is one."""
        report = self.report.get("central_dp")
        return report if isinstance(report, Mapping) else None

    def score_tree(self) -> ScoreTree:
        """The Merkle tree of ``(trainer, score, weight)`` leaves; ``CodecError`` if they cannot form one."""
        try:
            return ScoreTree(self.scores, self.weights)
        except ValueError as exc:
            raise _bad(f"details.scores cannot form a score tree: {exc}") from None


class ScoresMismatch(CodecError):
    """An aggregate's scores do not rebuild the round's on-chain score root."""

    def __init__(self, message: str) -> None:
        super().__init__("scores_mismatch", message)


def aggregate_details(manifest: ModelManifest) -> AggregateDetails:
    """The typed details of an aggregate manifest."""
    if manifest.kind != "aggregate":
        raise _bad(f"manifest kind is {manifest.kind!r}, expected 'aggregate'")
    return AggregateDetails.from_json(manifest.details)


def verified_scores(manifest: ModelManifest, scores_root: bytes) -> tuple[AggregateDetails, ScoreTree]:
    """The aggregate's details and score tree, only when the tree's root is the round's on-chain ``scoresRoot``."""
    details = aggregate_details(manifest)
    tree = details.score_tree()
    if tree.root != bytes(scores_root):
        raise ScoresMismatch(f"the result file's scores give root 0x{tree.root.hex()}, the chain says "
                             f"0x{bytes(scores_root).hex()}")
    return details, tree


def read_manifest(blob: bytes, max_bytes: int) -> ModelManifest:
    """The manifest of a model file from its header alone (tensors are not decoded)."""
    header = read_header(blob, max_bytes)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise _bad("file has no fedchain manifest")
    return ModelManifest.from_json(metadata[MANIFEST_KEY])


def fetch_manifest(store: Any, cid: str, digest: bytes | None, max_bytes: int) -> ModelManifest:
    """The manifest of a stored model file, fetched with the on-chain digest and a size bound: the file is checked
    as it streams (to a temporary file unless the store keeps one on disk), and only its header is read."""
    verified_file = getattr(store, "verified_file", None)
    if verified_file is None:  # a reader that only gets bytes
        return read_manifest(store.get(cid, sha256=digest, max_bytes=max_bytes), max_bytes)
    with tempfile.TemporaryDirectory(prefix="fedchain-manifest-") as scratch:
        path = verified_file(cid, sha256=digest, max_bytes=max_bytes, scratch=Path(scratch))
        header, _, _ = read_file_header(path, max_bytes)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise _bad("file has no fedchain manifest")
    return ModelManifest.from_json(metadata[MANIFEST_KEY])

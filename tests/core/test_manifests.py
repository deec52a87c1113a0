"""Typed manifests: aggregate details round-trip, hostile details are refused or bounded, the scores are used only
when they rebuild the on-chain root, and manifests are read from the header alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedchain.codec import CodecError, ModelManifest, canonical_json, encode_model
from fedchain.commitments import ScoreTree
from fedchain.manifests import (
    MAX_REASON_MESSAGE,
    AggregateDetails,
    PrivacyRecord,
    Rejection,
    ScoresMismatch,
    ServerStateRef,
    read_manifest,
    update_privacy,
    verified_scores,
)

A, B = "0x" + "a" * 40, "0x" + "b" * 40


def _aggregate(details: AggregateDetails) -> ModelManifest:
    return ModelManifest(kind="aggregate", architecture="logreg:2-2", details=details.to_json())


def test_aggregate_details_round_trip_in_the_protocol_layout() -> None:
    details = AggregateDetails(strategy="fedavgm", scores={A: 700_000, B: 0}, weights={A: 40, B: 0},
                               rejected={B: Rejection.bounded("wrong_keys", "x")},
                               contributions={A: {"accuracy": 1, "loss": 2, "alignment": 3, "norm": 4, "score": 5}},
                               privacy={A: {"epsilon_total": None}},
                               server_state=ServerStateRef("fedavgm", "bafkqaaa", b"\x05" * 32),
                               report={"robust": {"excluded": []}})
    raw = details.to_json()
    assert set(raw) == {"strategy", "scores", "weights", "rejected", "contributions", "privacy", "server_state",
                        "robust"}
    assert raw["rejected"] == {B: {"code": "wrong_keys", "message": "x"}}
    assert raw["server_state"] == {"strategy": "fedavgm", "cid": "bafkqaaa", "sha256": "05" * 32}
    assert AggregateDetails.from_json(raw) == details
    assert AggregateDetails.from_json(ModelManifest.from_json(_aggregate(details).to_json()).details) == details


def test_hostile_details_are_refused_and_rejections_bounded() -> None:
    for bad in ({"scores": {A: -1}}, {"scores": {A: 2_000_000}}, {"scores": {A: True}}, {"scores": []},
                {"weights": {A: -1}}, {"weights": {A: 2**64}}, {"weights": {A: 1.5}},
                {"rejected": {A: "text"}}, {"server_state": {"cid": 1}}, {"server_state": {"strategy": "x", "cid": "y",
                                                                                       "sha256": "zz"}}):
        with pytest.raises(CodecError):
            AggregateDetails.from_json(bad)
    huge = Rejection.bounded("c" * 1000, "n" * 1_000_000)
    assert len(huge.code) == 64 and len(huge.message) == MAX_REASON_MESSAGE


def test_scores_are_used_only_when_they_rebuild_the_chain_root() -> None:
    details = AggregateDetails(strategy="fedavg", scores={A: 10, B: 20}, weights={A: 3, B: 4})
    root = ScoreTree(details.scores, details.weights).root
    inflated = AggregateDetails(strategy="fedavg", scores={A: 10, B: 20}, weights={A: 3, B: 40})
    with pytest.raises(ScoresMismatch):  # a file whose weights differ from the attested ones is refused
        verified_scores(_aggregate(inflated), root)
    verified, tree = verified_scores(_aggregate(details), root)
    assert verified.scores == details.scores and tree.root == root
    with pytest.raises(ScoresMismatch):
        verified_scores(_aggregate(details), b"\x00" * 32)
    with pytest.raises(CodecError):
        verified_scores(ModelManifest(kind="update", architecture="x"), root)


def test_read_manifest_needs_only_the_header() -> None:
    manifest = _aggregate(AggregateDetails(strategy="fedavg", scores={A: 1}, weights={A: 1}))
    blob = encode_model({"w": np.zeros(4, np.float32)}, manifest)
    header_only = blob[: 8 + int.from_bytes(blob[:8], "little")]  # no tensor bytes at all
    assert read_manifest(header_only, 1 << 20) == manifest


def test_privacy_records() -> None:
    record = PrivacyRecord("rdp", 1e-5, 1.2, 0.02, 100, 1.0, "ghost", 0.5, 1.5, 3.0)
    assert PrivacyRecord.from_record(record.to_record()) == record
    none = PrivacyRecord.non_private("rdp", 1e-5)
    assert canonical_json(none.to_record())  # JSON has no infinity: written as null
    assert math.isinf(PrivacyRecord.from_record(none.to_record()).epsilon_total)
    assert PrivacyRecord.from_record({"accountant": "rdp"}) is None and PrivacyRecord.from_record(3) is None
    update = ModelManifest(kind="update", architecture="x", epsilon_spent=1.5, details={"privacy": record.to_record()})
    assert update_privacy(update)["epsilon_total"] == 1.5
    with pytest.raises(CodecError):
        update_privacy(ModelManifest(kind="update", architecture="x", epsilon_spent=9.0,
                                     details={"privacy": record.to_record()}))

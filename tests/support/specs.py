"""Task specs for tests: valid defaults, every field changed by name."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fedchain.protocol import ONE_TOKEN
from fedchain.taskspec import TaskSpec, encode_strategy_params

BASE = TaskSpec(
    architecture="mlp:64-32-10", initial_model_cid="bafkqaaa", initial_model_digest=b"\x01" * 32,
    validation_cid="bafkqaaa", validation_digest=b"\x02" * 32, reward_budget=1000 * ONE_TOKEN, num_rounds=3,
    min_trainers=1, max_trainers=5, aggregator_quorum=1, max_aggregators=1, commit_duration=600,
    reveal_duration=600, aggregator_commit_duration=600, aggregator_reveal_duration=600,
    min_trainer_stake=100 * ONE_TOKEN, min_aggregator_stake=100 * ONE_TOKEN,
)


def spec(strategy_params: dict[str, Any] | bytes | None = None, **changes: Any) -> TaskSpec:
    """``BASE`` with ``changes``; ``strategy_params`` as a dict (encoded canonically) or raw bytes."""
    if strategy_params is not None:
        raw = strategy_params if isinstance(strategy_params, bytes) else encode_strategy_params(strategy_params)
        changes["strategy_params"] = raw
    return replace(BASE, **changes)

"""The typed task spec: the Solidity ``TaskParams`` struct with names, Python types and units.

``TaskSpec.to_chain()`` gives the tuple ``createTask`` takes (field order is the ABI's); ``TaskSpec.from_chain``
reads it back from ``getTask(...).params`` (an ape struct, a web3 tuple or a dict keyed by the Solidity names).
Change a field by name with ``dataclasses.replace(spec, max_trainers=5)``, never by position.

Units: amounts in wei (``min_trainer_stake`` is also the bond a commitment reserves, unless the policy floor is
higher), durations in seconds, the DP bound as milli-epsilon and delta times 1e18 (``dp_epsilon`` and
``dp_delta`` give them as floats, None without a bound); the strategy parameters as canonical JSON bytes
(``strategy_config`` parses them, bounded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fedchain.codec import canonical_json, loads_bounded
from fedchain.config import DEFAULT_MAX_MODEL_BYTES

MAX_STRATEGY_PARAMS_BYTES = 4096
DEFAULT_PROXIMAL_MU = 0.01  # FedProx's mu when a fedprox task does not set one
# Protocol-level bound in the strategy parameters, read by every strategy's round: an update whose change to the
# global model is more than this many times the global model's norm (at least 1) is rejected as absurd.
UPDATE_BOUND_KEY = "max_update_ratio"
DEFAULT_MAX_UPDATE_RATIO = 10.0
# A protocol-level key too: the dtype trainers send their updates in (aggregators sum in float64 either way).
UPDATE_DTYPE_KEY = "update_dtype"
UPDATE_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}  # -> safetensors dtype

# Solidity name of each field, in ABI order.
SOLIDITY_NAMES = (
    "architecture", "initialModelCid", "initialModelDigest", "validationCid", "validationDigest", "rewardBudget",
    "numRounds", "minTrainers", "maxTrainers", "aggregatorQuorum", "maxAggregators", "commitDuration",
    "revealDuration", "aggregatorCommitDuration", "aggregatorRevealDuration", "minTrainerStake",
    "minAggregatorStake", "strategy", "strategyParams", "dpEpsilonMilli", "dpDeltaE18", "maxSamples",
    "maxModelBytes",
)


def architecture_bound(architecture: str) -> int:
    """The largest model file of an architecture (its float32 data and a maximal header): what fedchain's tools
    declare as a task's ``maxModelBytes``; ``DEFAULT_MAX_MODEL_BYTES`` for an id that does not parse (such a task
    is refused before it is sent)."""
    from fedchain.architectures import expected_shapes
    from fedchain.modelfile import model_file_bytes

    try:
        return model_file_bytes(expected_shapes(architecture))
    except ValueError:
        return DEFAULT_MAX_MODEL_BYTES


def encode_strategy_params(params: Mapping[str, Any] | None) -> bytes:
    """Strategy parameters as the chain stores them: canonical JSON, or no bytes for none."""
    if not params:
        return b""
    if not isinstance(params, Mapping):
        raise ValueError("strategy parameters must be a JSON object")
    return canonical_json(dict(params)).encode()


def decode_strategy_params(raw: bytes | str) -> dict[str, Any]:
    """The JSON object in a task's ``strategyParams``; ``ValueError`` for anything else (bounded parse)."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if not data:
        return {}
    if len(data) > MAX_STRATEGY_PARAMS_BYTES:
        raise ValueError(f"strategy parameters are {len(data)} bytes, limit {MAX_STRATEGY_PARAMS_BYTES}")
    try:
        value = loads_bounded(data)
    except ValueError as exc:
        raise ValueError(f"strategy parameters are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("strategy parameters must be a JSON object")
    return value


@dataclass(frozen=True)
class TaskSpec:
    """What a sponsor submits to ``TaskManager.createTask`` (Solidity ``TaskParams``, same order)."""

    architecture: str
    initial_model_cid: str
    initial_model_digest: bytes
    validation_cid: str
    validation_digest: bytes
    reward_budget: int  # wei
    num_rounds: int
    min_trainers: int
    max_trainers: int
    aggregator_quorum: int
    max_aggregators: int
    commit_duration: int  # seconds
    reveal_duration: int
    aggregator_commit_duration: int
    aggregator_reveal_duration: int
    min_trainer_stake: int  # wei
    min_aggregator_stake: int  # wei
    strategy: str = "fedavg"
    strategy_params: bytes = b""  # canonical JSON (see encode_strategy_params)
    dp_epsilon_milli: int = 0  # 0: no DP bound
    dp_delta_e18: int = 0
    max_samples: int = 0  # per-trainer sample maximum revealUpdate enforces (0: none); the committee caps further
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES  # the task's largest model file (sponsors: architecture_bound)

    def to_chain(self) -> tuple:
        """The ``TaskParams`` tuple in ABI order."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_chain(cls, raw: Any) -> TaskSpec:
        """From ``getTask(...).params``: an ape struct, a tuple in ABI order or a dict of Solidity names."""
        if isinstance(raw, Mapping):
            values = [raw[name] for name in SOLIDITY_NAMES]
        else:
            values = [raw[i] for i in range(len(SOLIDITY_NAMES))]
        converted = []
        for f, value in zip(fields(cls), values, strict=True):
            if f.type == "str":
                converted.append(str(value))
            elif f.type == "bytes":
                converted.append(bytes(value))
            else:
                converted.append(int(value))
        return cls(*converted)

    @property
    def dp_epsilon(self) -> float | None:
        """The task-wide epsilon bound every trainer must stay within, or None when the task needs no DP."""
        return self.dp_epsilon_milli / 1000 if self.dp_epsilon_milli else None

    @property
    def dp_delta(self) -> float | None:
        return self.dp_delta_e18 / 1e18 if self.dp_delta_e18 else None

    def strategy_config(self) -> dict[str, Any]:
        """The strategy parameters as a dict (``ValueError`` when the task stores something that is not one)."""
        return decode_strategy_params(self.strategy_params)

    def proximal_mu(self) -> float | None:
        """FedProx's proximal term that trainers of a ``fedprox`` task add to their loss (None for other tasks)."""
        if self.strategy.lower() != "fedprox":
            return None
        mu = self.strategy_config().get("proximal_mu", DEFAULT_PROXIMAL_MU)
        if isinstance(mu, bool) or not isinstance(mu, int | float) or not 0 <= mu < float("inf"):
            raise ValueError(f"proximal_mu must be a non-negative number, got {mu!r}")
        return float(mu)

    def max_update_ratio(self) -> float:
        """The task's bound on an update's change relative to the global model (``UPDATE_BOUND_KEY``)."""
        ratio = self.strategy_config().get(UPDATE_BOUND_KEY, DEFAULT_MAX_UPDATE_RATIO)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < float("inf"):
            raise ValueError(f"{UPDATE_BOUND_KEY} must be a positive number, got {ratio!r}")
        return float(ratio)

    def file_bound(self, node_max: int) -> int:
        """The largest model file of this task a node reads: the least of the task's ``maxModelBytes``, the
        architecture's bound and the node's own maximum (``ValueError`` for an architecture that does not parse)."""
        from fedchain.architectures import expected_shapes
        from fedchain.modelfile import model_file_bytes

        return min(node_max, self.max_model_bytes, model_file_bytes(expected_shapes(self.architecture)))

    def update_dtype(self) -> str:
        """The safetensors dtype of the task's update tensors (``UPDATE_DTYPE_KEY``; float32 unless the task chose
        a compact transport)."""
        name = self.strategy_config().get(UPDATE_DTYPE_KEY, "float32")
        if name not in UPDATE_DTYPES:
            raise ValueError(f"{UPDATE_DTYPE_KEY} must be one of {', '.join(UPDATE_DTYPES)}, got {name!r}")
        return UPDATE_DTYPES[name]

    def durations(self) -> tuple[int, int, int, int]:
        """(commit, reveal, aggregator commit, aggregator reveal) seconds."""
        return (self.commit_duration, self.reveal_duration, self.aggregator_commit_duration,
                self.aggregator_reveal_duration)

    def describe(self) -> dict[str, Any]:
        """The spec as JSON-friendly values (digests as hex, strategy parameters parsed when they parse)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "0x" + value.hex() if isinstance(value, bytes) and f.name != "strategy_params" else value
        try:
            out["strategy_params"] = self.strategy_config()
        except ValueError:
            out["strategy_params"] = "0x" + self.strategy_params.hex()
        return out


def strategy_json(params: Mapping[str, Any] | None) -> str:
    """Parameters as the CLI shows them."""
    return json.dumps(dict(params or {}), sort_keys=True)

"""The task file: a sponsor's task in TOML (docs/TASKS.md), read into what ``createTask`` needs.

Every key is checked by name and type; an unknown key, a missing one or a value out of range is a ``TaskFileError``
naming the key (``[stakes] trainer_bond: ...``). Amounts are in FED (``"20"`` or ``"0.5"``), durations in seconds.
Relative file paths are relative to the task file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedchain.codec import MAX_JSON_DEPTH
from fedchain.errors import FedchainError
from fedchain.protocol import parse_tokens
from fedchain.retention import MAX_ROUNDS, RetentionPolicy, parse_count
from fedchain.taskspec import TaskSpec, architecture_bound, decode_strategy_params, encode_strategy_params

MAX_TASK_FILE_BYTES = 64 * 1024
MAX_DURATION = 365 * 24 * 3600  # the contract's cap on a phase (the deployment may bound it tighter)
DEFAULT_PHASE_SECONDS = 300


class TaskFileError(FedchainError):
    """The task file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ModelSource:
    """The initial model: a model file, or the architecture's deterministic initial weights for ``seed``."""

    file: Path | None = None
    seed: int | None = None


@dataclass(frozen=True)
class TaskFile:
    """A parsed task file (amounts in wei, durations in seconds)."""

    path: Path
    architecture: str
    model: ModelSource
    validation: Path
    budget: int
    rounds: int
    min_trainers: int
    max_trainers: int
    committee_size: int
    quorum: int
    durations: tuple[int, int, int, int]  # commit, reveal, aggregator commit, aggregator reveal
    trainer_bond: int
    aggregator_bond: int
    strategy: str = "fedavg"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    epsilon: float | None = None
    delta: float | None = None
    max_samples: int = 0
    retention: RetentionPolicy | None = None
    sealed_sections: int = 0  # > 0: the validation set is sealed in this many sections (docs/PROTOCOL.md)
    example_dataset: str | None = None  # [example] dataset: what `fedchain demo --example` trains on

    def spec(self, model_cid: str, model_digest: bytes, validation_cid: str, validation_digest: bytes) -> TaskSpec:
        """The ``TaskParams`` for the published initial model and validation set."""
        commit, reveal, agg_commit, agg_reveal = self.durations
        return TaskSpec(
            architecture=self.architecture, initial_model_cid=model_cid, initial_model_digest=model_digest,
            validation_cid=validation_cid, validation_digest=validation_digest, reward_budget=self.budget,
            num_rounds=self.rounds, min_trainers=self.min_trainers, max_trainers=self.max_trainers,
            aggregator_quorum=self.quorum, max_aggregators=self.committee_size, commit_duration=commit,
            reveal_duration=reveal, aggregator_commit_duration=agg_commit, aggregator_reveal_duration=agg_reveal,
            min_trainer_stake=self.trainer_bond, min_aggregator_stake=self.aggregator_bond, strategy=self.strategy,
            strategy_params=encode_strategy_params(self.strategy_params),
            dp_epsilon_milli=0 if self.epsilon is None else round(self.epsilon * 1000),
            dp_delta_e18=0 if self.delta is None else round(self.delta * 1e18), max_samples=self.max_samples,
            max_model_bytes=architecture_bound(self.architecture))


class _Table:
    """One TOML table, read key by key; whatever is left unread at the end is an unknown key."""

    def __init__(self, where: str, name: str, raw: Any) -> None:
        self.where, self.name = where, name
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(None, "must be a table")
        self.raw = dict(raw)

    def error(self, key: str | None, problem: str) -> TaskFileError:
        at = f"[{self.name}]" + (f" {key}" if key else "")
        return TaskFileError(f"{self.where}: {at}: {problem}")

    def take(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.raw:
            if default is ...:
                raise self.error(key, "missing")
            return default
        value = self.raw.pop(key)
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, f"expected {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def integer(self, key: str, low: int, high: int, default: Any = ...) -> int:
        value = self.take(key, int, default)
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}, got {value}")
        return value

    def tokens(self, key: str, default: Any = ...) -> int:
        value = self.take(key, (str, int, float), default)
        try:
            return parse_tokens(str(value))
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def done(self) -> None:
        if self.raw:
            raise self.error(None, f"unknown key(s) {', '.join(sorted(self.raw))}")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed TOML value (iterative: never recurses)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", float: "a number", bool: "true or false", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_task_file(path: str | Path) -> TaskFile:
    """Parse and check a task file (see the module docstring); ``TaskFileError`` says what to fix."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TaskFileError(f"cannot read the task file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TASK_FILE_BYTES:
        raise TaskFileError(f"{path}: {len(data)} bytes, a task file is at most {MAX_TASK_FILE_BYTES}")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TaskFileError(f"{path}: not a TOML file: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level
        raise TaskFileError(f"{path}: nested too deeply") from None
    where = str(path)
    top = _Table(where, "top level", doc)
    task = _Table(where, "task", top.take("task", dict))
    model = _Table(where, "model", top.take("model", dict))
    validation = _Table(where, "validation", top.take("validation", dict))
    committee = _Table(where, "committee", top.take("committee", dict, {}))
    durations = _Table(where, "durations", top.take("durations", dict, {}))
    stakes = _Table(where, "stakes", top.take("stakes", dict, {}))
    privacy = _Table(where, "privacy", top.take("privacy", dict, {}))
    retention = top.take("retention", dict, None)
    example = _Table(where, "example", top.take("example", dict, {}))
    top.done()
    example_dataset = example.take("dataset", str, None)
    example.done()

    base = path.parent
    architecture = task.take("architecture", str)
    rounds = task.integer("rounds", 1, 10_000)
    max_trainers = task.integer("max_trainers", 1, 1024)
    min_trainers = task.integer("min_trainers", 1, max_trainers, max(1, (max_trainers + 1) // 2))
    budget = task.tokens("budget")
    if budget == 0:
        raise task.error("budget", "must be more than 0 FED")
    strategy = task.take("strategy", str, "fedavg")
    params = task.take("strategy_params", dict, {})
    if _depth(params) > MAX_JSON_DEPTH:
        raise task.error("strategy_params", f"nested more than {MAX_JSON_DEPTH} deep")
    try:
        decode_strategy_params(encode_strategy_params(params))  # canonical JSON within the chain's size bound
    except ValueError as exc:
        raise task.error("strategy_params", str(exc)) from None
    max_samples = task.integer("max_samples", 0, 2**63 - 1, 0)
    task.done()

    model_file, seed = model.take("file", str, None), model.take("init_seed", int, None)
    model.done()
    if (model_file is None) == (seed is None):
        raise model.error(None, "give exactly one of file = \"PATH\" or init_seed = N")
    source = ModelSource(file=None if model_file is None else base / model_file, seed=seed)
    val_file = base / validation.take("file", str)
    sealed_sections = validation.integer("sealed_sections", 0, min(rounds, 1024), 0)
    validation.done()

    size = committee.integer("size", 1, 64, 1)
    quorum = committee.integer("quorum", 1, size, size // 2 + 1)
    committee.done()
    if size >= 2 * quorum or (quorum >= 2 and size == quorum):
        raise committee.error("quorum", f"{quorum} of {size}: the quorum must be a strict majority of the committee "
                              "(and, from 2 on, smaller than the committee)")

    default = durations.integer("default", 1, MAX_DURATION, DEFAULT_PHASE_SECONDS)
    phases = tuple(durations.integer(key, 1, MAX_DURATION, default)
                   for key in ("commit", "reveal", "aggregator_commit", "aggregator_reveal"))
    durations.done()

    trainer_bond = stakes.tokens("trainer_bond", "10")
    aggregator_bond = stakes.tokens("aggregator_bond", "100")
    stakes.done()
    for key, value in (("trainer_bond", trainer_bond), ("aggregator_bond", aggregator_bond)):
        if value == 0:
            raise stakes.error(key, "must be more than 0 FED (a bond a non-reveal forfeits)")

    epsilon = privacy.take("epsilon", (int, float), None)
    delta = privacy.take("delta", (int, float), None)
    privacy.done()
    if epsilon is not None and not 0.01 <= epsilon <= 1000:
        raise privacy.error("epsilon", f"must be between 0.01 and 1000, got {epsilon}")
    if delta is not None and not 0 < delta < 1:
        raise privacy.error("delta", f"must be between 0 and 1, got {delta}")
    if epsilon is not None and delta is None:
        delta = 1e-5

    return TaskFile(path=path, architecture=architecture, model=source, validation=val_file, budget=budget,
                    rounds=rounds, min_trainers=min_trainers, max_trainers=max_trainers, committee_size=size,
                    quorum=quorum, durations=phases, trainer_bond=trainer_bond, aggregator_bond=aggregator_bond,
                    strategy=strategy, strategy_params=params, epsilon=epsilon, delta=delta,
                    max_samples=max_samples, retention=_retention(_Table(where, "retention", retention))
                    if retention is not None else None, example_dataset=example_dataset,
                    sealed_sections=sealed_sections)


def _retention(table: _Table) -> RetentionPolicy:
    def count(key: str, low: int) -> int | None:
        value = table.take(key, (int, str), "all")
        try:
            number = parse_count(str(value))
        except ValueError:
            raise table.error(key, f"expected a number of rounds or \"all\", got {value!r}") from None
        if number is not None and not low <= number <= MAX_ROUNDS:
            raise table.error(key, f"must be between {low} and {MAX_ROUNDS}, or \"all\"")
        return number

    policy = RetentionPolicy(model_rounds=count("models", 1), update_rounds=count("update_rounds", 0),
                             keep_rejected=table.take("keep_rejected", bool, False),
                             keep_validation=table.take("keep_validation", bool, True))
    table.done()
    return policy

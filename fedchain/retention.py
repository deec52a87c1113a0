"""Per-task retention policies (contracts/TaskRetention.sol): what pinning nodes keep of a task's content.

A task's sponsor sets its task's policy on chain; tasks without one follow the protocol-wide default, which the
deployment's admin (the DAO's timelock when governed) sets.  Pin followers read the policy in force and unpin what
it lets go; an operator may keep more (``RetentionPolicy.at_least``), never less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedchain.chainview import ChainReader
from fedchain.errors import FedchainError

KEEP_ALL = 2**32 - 1  # TaskRetention.KEEP_ALL: a count meaning "every round"
MAX_ROUNDS = 100_000  # TaskRetention.MAX_ROUNDS: the largest finite count


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep of one task; counts are finalized rounds, ``None`` means all of them.

    ``model_rounds``: global models of the last N finalized rounds (the initial model is round 0), N >= 1.
    ``update_rounds``: trainer updates of the last N finalized rounds; 0 drops them once their round finalizes
    (updates of a round still running are always kept, those of a failed round never).
    ``keep_rejected``: also keep the updates a round's result rejected.
    ``keep_validation``: keep the validation set after the task completed (always kept while it is open).
    The default keeps everything except rejected updates.
    """

    model_rounds: int | None = None
    update_rounds: int | None = None
    keep_rejected: bool = False
    keep_validation: bool = True

    def __post_init__(self) -> None:
        if self.model_rounds is not None and not 1 <= self.model_rounds <= MAX_ROUNDS:
            raise ValueError(f"model_rounds must be between 1 and {MAX_ROUNDS} (or all)")
        if self.update_rounds is not None and not 0 <= self.update_rounds <= MAX_ROUNDS:
            raise ValueError(f"update_rounds must be between 0 and {MAX_ROUNDS} (or all)")

    @classmethod
    def minimal(cls) -> RetentionPolicy:
        """The least a policy can keep: the current model, running rounds' updates, the open task's validation set."""
        return cls(model_rounds=1, update_rounds=0, keep_rejected=False, keep_validation=False)

    @classmethod
    def from_chain(cls, raw: Any) -> RetentionPolicy:
        """From TaskRetention's ``Retention`` struct (a tuple, an ape struct, or a dict of its field names)."""
        if isinstance(raw, Mapping):
            raw = [raw[name] for name in ("modelRounds", "updateRounds", "keepRejected", "keepValidation")]
        models, updates, rejected, validation = (raw[i] for i in range(4))
        return cls(None if int(models) == KEEP_ALL else int(models),
                   None if int(updates) == KEEP_ALL else int(updates), bool(rejected), bool(validation))

    def to_chain(self) -> tuple[int, int, bool, bool]:
        """As TaskRetention's ``Retention`` struct."""
        return (KEEP_ALL if self.model_rounds is None else self.model_rounds,
                KEEP_ALL if self.update_rounds is None else self.update_rounds,
                self.keep_rejected, self.keep_validation)

    def at_least(self, other: RetentionPolicy | None) -> RetentionPolicy:
        """The policy that keeps everything either policy keeps."""
        if other is None:
            return self
        return RetentionPolicy(_most(self.model_rounds, other.model_rounds),
                               _most(self.update_rounds, other.update_rounds),
                               self.keep_rejected or other.keep_rejected,
                               self.keep_validation or other.keep_validation)

    def describe(self) -> str:
        models = "all global models" if self.model_rounds is None else f"the last {self.model_rounds} global model(s)"
        updates = ("all updates" if self.update_rounds is None
                   else "no updates of finalized rounds" if self.update_rounds == 0
                   else f"updates of the last {self.update_rounds} finalized round(s)")
        rejected = "incl. rejected ones" if self.keep_rejected else "not rejected ones"
        validation = "validation set kept" if self.keep_validation else "validation set dropped"
        return f"{models}; {updates} ({rejected}); {validation} after completion"


def _most(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)


def parse_count(text: str) -> int | None:
    """A CLI round count: a number or ``all``."""
    return None if text.strip().lower() == "all" else int(text)


def _require(reader: ChainReader) -> None:
    if "retention" not in reader.deployment.addresses:
        raise FedchainError("this deployment has no TaskRetention contract; redeploy with `ape run deploy`")


def _contract(fed: Any) -> Any:
    """The TaskRetention handle of an ape ``Fedchain`` (for transactions)."""
    _require(fed)
    return fed.retention


def task_retention(reader: ChainReader, task_id: int, block: int | None = None) -> tuple[RetentionPolicy, bool]:
    """The policy in force for a task (at ``block``, default latest) and whether it is the task's own."""
    _require(reader)
    policy, custom = reader.call("retention", "retentionOf", task_id, block=block)
    return RetentionPolicy.from_chain(policy), bool(custom)


def default_retention(reader: ChainReader) -> RetentionPolicy:
    _require(reader)
    return RetentionPolicy.from_chain(reader.call("retention", "defaultRetention"))


def set_task_retention(fed: Any, task_id: int, policy: RetentionPolicy, sponsor: Any) -> Any:
    """Set a task's policy; ``sponsor`` must be the task's sponsor. Returns the receipt."""
    return _contract(fed).setTaskRetention(task_id, policy.to_chain(), sender=sponsor)


def clear_task_retention(fed: Any, task_id: int, sponsor: Any) -> Any:
    """Make a task follow the default policy again."""
    return _contract(fed).clearTaskRetention(task_id, sender=sponsor)


def set_default_retention(fed: Any, policy: RetentionPolicy, admin: Any) -> Any:
    """Set the default policy (needs TaskRetention's PARAMETER_ROLE: in a governed deployment, a proposal)."""
    return _contract(fed).setDefaultRetention(policy.to_chain(), sender=admin)


__all__ = ["KEEP_ALL", "MAX_ROUNDS", "RetentionPolicy", "clear_task_retention", "default_retention",
           "default_retention_action", "parse_count", "set_default_retention", "set_task_retention", "task_retention"]


def default_retention_action(reader: ChainReader, policy: RetentionPolicy) -> Any:
    """A governance action (fedchain.governance.Action) that sets the default policy when the proposal executes."""
    from fedchain.governance import Action, encode_call

    _require(reader)
    calldata = encode_call("setDefaultRetention((uint32,uint32,bool,bool))", [policy.to_chain()])
    summary = f"TaskRetention default -> {policy.describe()}"
    return Action(reader.deployment.addresses["retention"], 0, calldata, summary)

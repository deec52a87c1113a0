"""Creating a task from its spec (after checking what it references), and reclaiming its unallocated budget."""

from __future__ import annotations

from typing import Any

from fedchain.ape.chain import Fedchain
from fedchain.architectures import dataset_problem, model_problem, parse_architecture
from fedchain.codec import CodecError, decode_dataset, decode_model
from fedchain.config import settings
from fedchain.errors import FedchainError
from fedchain.protocol import format_tokens
from fedchain.store import ContentError, ContentStore, StoreUnavailable
from fedchain.taskspec import TaskSpec


def check_task_inputs(store: ContentStore, spec: TaskSpec, max_bytes: int | None = None) -> None:
    """``FedchainError`` saying what to fix unless the task could be served: its architecture parses, its
    initial model and validation set are in the store under their CIDs and digests, the model holds the
    architecture's finite float32 tensors, the validation set fits it, and its strategy parameters decode.
    ``StoreUnavailable`` passes through (try again when the node is back)."""
    limit = max_bytes or settings().max_model_bytes
    try:
        parse_architecture(spec.architecture)
        spec.strategy_config()
        spec.max_update_ratio()
        spec.proximal_mu()
    except ValueError as exc:
        raise FedchainError(f"the task spec cannot be used: {exc}") from exc
    for what, cid, digest in (("initial model", spec.initial_model_cid, spec.initial_model_digest),
                              ("validation set", spec.validation_cid, spec.validation_digest)):
        try:
            blob = store.get(cid, sha256=digest, max_bytes=limit)
            if what == "initial model":
                tensors, _ = decode_model(blob, limit)
                problem = model_problem(spec.architecture, tensors)
            else:
                problem = dataset_problem(spec.architecture, *decode_dataset(blob, limit))
        except StoreUnavailable:
            raise
        except (CodecError, ContentError, ValueError) as exc:  # ValueError: not a CID
            problem = str(exc)
        if problem is not None:
            raise FedchainError(f"the task's {what} ({cid}) cannot be used: {problem}; publish a fitting one "
                                "and create the task with its CID")


def create_task(fed: Fedchain, sponsor: Any, spec: TaskSpec, store: ContentStore) -> int:
    """Check what the task references (``check_task_inputs``), approve the budget and create the task; returns
    its id. The sponsor must hold the budget."""
    check_task_inputs(store, spec)
    balance = int(fed.token.balanceOf(sponsor.address))
    if balance < spec.reward_budget:
        raise FedchainError(f"the sponsor holds {format_tokens(balance)}, the budget is "
                            f"{format_tokens(spec.reward_budget)}")
    allowance = int(fed.token.allowance(sponsor.address, fed.tasks.address))
    if allowance < spec.reward_budget:
        fed.send("approve the budget", fed.token.approve, fed.tasks.address, spec.reward_budget, sender=sponsor)
    receipt = fed.send("create task", fed.tasks.createTask, spec.to_chain(), sender=sponsor)
    return int(next(iter(receipt.events.filter(fed.tasks.TaskCreated))).taskId)


def reclaim(fed: Fedchain, sponsor: Any, task_id: int) -> int:
    """Take back what no round of a completed task allocated (from the RewardVault); returns the amount."""
    before = int(fed.token.balanceOf(sponsor.address))
    fed.send("reclaim", fed.vault.reclaimUnallocated, task_id, sender=sponsor)
    return int(fed.token.balanceOf(sponsor.address)) - before

"""Creating a task from its spec, and reclaiming a task's unallocated budget."""

from __future__ import annotations

from typing import Any

from fedchain.ape.chain import Fedchain
from fedchain.errors import FedchainError
from fedchain.protocol import format_tokens
from fedchain.taskspec import TaskSpec


def create_task(fed: Fedchain, sponsor: Any, spec: TaskSpec) -> int:
    """Approve the budget and create the task; returns its id. The sponsor must hold the budget."""
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
    """Take back what a completed task's budget did not pay out; returns the amount."""
    before = int(fed.token.balanceOf(sponsor.address))
    fed.send("reclaim", fed.tasks.reclaimUnallocated, task_id, sender=sponsor)
    return int(fed.token.balanceOf(sponsor.address)) - before

"""`fedchain retention`: show and set a task's retention policy (TaskRetention), thin over fedchain.retention."""

from __future__ import annotations

from typing import Any

import click
from ape.cli import ConnectedProviderCommand, account_option

COUNT_HELP = "a number of finalized rounds, or 'all'"


class RoundCount(click.ParamType):
    """A round count or 'all' (None)."""

    name = "N|all"

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        from fedchain.retention import MAX_ROUNDS, parse_count

        if value is None or isinstance(value, int):
            return value
        try:
            count = parse_count(str(value))
        except ValueError:
            self.fail(f"{value!r} is not {COUNT_HELP}", param, ctx)
        if count is not None and not self.minimum <= count <= MAX_ROUNDS:
            self.fail(f"must be between {self.minimum} and {MAX_ROUNDS}, or 'all'", param, ctx)
        return count


def _connect() -> Any:
    from fedchain.ape.chain import Fedchain
    from fedchain.errors import FedchainError

    try:
        fed = Fedchain.connect()
    except FedchainError as exc:
        raise click.ClickException(str(exc)) from exc
    if fed.retention is None:
        raise click.ClickException("this deployment has no TaskRetention contract; redeploy with `ape run deploy`")
    return fed


def _transact(fed: Any, fn: Any, *args: Any) -> Any:
    from ape.exceptions import ContractLogicError

    try:
        return fn(fed, *args)
    except ContractLogicError as exc:
        raise click.ClickException(fed.explain_revert(exc)) from exc


@click.group()
def retention() -> None:
    """Retention policies: what pinning nodes keep of a task's models, updates and validation set."""


@retention.command(cls=ConnectedProviderCommand)
@click.argument("task_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of text.")
def show(task_id: int, as_json: bool) -> None:
    """Show the retention policy in force for TASK_ID."""
    import json
    from dataclasses import asdict

    from fedchain.retention import task_retention

    fed = _connect()
    fed.task(task_id)  # UnknownTask: one line naming the valid ids
    policy, custom = task_retention(fed, task_id)
    if as_json:  # counts: a number of rounds, or null for all of them
        click.echo(json.dumps({"task_id": task_id, "policy": asdict(policy), "set_by_sponsor": custom,
                               "description": policy.describe()}, indent=2, sort_keys=True))
        return
    click.echo(f"task {task_id}: {policy.describe()} ({'set by the sponsor' if custom else 'protocol default'})")


@retention.command("set", cls=ConnectedProviderCommand)
@account_option()
@click.argument("task_id", type=click.IntRange(1))
@click.option("--models", "model_rounds", type=RoundCount(1), help=f"Keep the global models of the last N "
              f"finalized rounds ({COUNT_HELP}; default: as now).")
@click.option("--update-rounds", type=RoundCount(0), help=f"Keep trainer updates of the last N finalized rounds "
              f"({COUNT_HELP}; 0: drop them once their round finalizes; default: as now).")
@click.option("--keep-rejected/--drop-rejected", default=None, help="Keep updates the round rejected "
              "(default: as now).")
@click.option("--keep-validation/--drop-validation", default=None, help="Keep the validation set after the "
              "task completed (default: as now).")
def set_(account: Any, task_id: int, model_rounds: int | None, update_rounds: int | None,
         keep_rejected: bool | None, keep_validation: bool | None) -> None:
    """Set TASK_ID's retention policy (only its sponsor may); unset options keep their current value."""
    from dataclasses import replace

    from fedchain.retention import set_task_retention, task_retention

    fed = _connect()
    current, _ = task_retention(fed, task_id)
    changes = {"keep_rejected": keep_rejected, "keep_validation": keep_validation}
    policy = replace(current, **{k: v for k, v in changes.items() if v is not None})
    ctx = click.get_current_context()
    for name, value in (("model_rounds", model_rounds), ("update_rounds", update_rounds)):
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            policy = replace(policy, **{name: value})
    _transact(fed, set_task_retention, task_id, policy, account)
    click.echo(f"task {task_id}: {policy.describe()}")


@retention.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("task_id", type=click.IntRange(1))
def clear(account: Any, task_id: int) -> None:
    """Drop TASK_ID's own policy: it follows the protocol default again (only its sponsor may)."""
    from fedchain.retention import clear_task_retention, default_retention

    fed = _connect()
    _transact(fed, clear_task_retention, task_id, account)
    click.echo(f"task {task_id} follows the default: {default_retention(fed).describe()}")

"""`fedchain task`: a sponsor's commands (create from a task file, list, show, rounds, reclaim), thin over
``sponsor.tasks`` with ape's --network and --account options. Read commands take ``--json``."""

from __future__ import annotations

import json
from typing import Any

import click
from ape.cli import ConnectedProviderCommand, account_option

STORE_HELP = ("Content store: 'local' (default, $FEDCHAIN_HOME/store), 'local:PATH' or 'kubo:URL' (an IPFS node's "
              "RPC API). Env: FEDCHAIN_STORE.")
JSON_HELP = "Print JSON on stdout instead of text."
store_option = click.option("--store", envvar="FEDCHAIN_STORE", default=None, help=STORE_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
AMOUNT_FIELDS = ("reward_budget", "min_trainer_stake", "min_aggregator_stake")  # wei on chain and in --json


def open_content_store(spec: str | None) -> Any:
    """The store ``--store`` (or ``$FEDCHAIN_STORE``) names; a spec that names none is a usage error."""
    from fedchain.store import open_store

    try:
        return open_store(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None


def _connect() -> Any:
    from fedchain.ape.chain import Fedchain

    return Fedchain.connect()


def _shown(key: str, value: Any) -> Any:
    """A spec value as text shows it: amounts in FED, durations in seconds."""
    from fedchain.protocol import format_tokens

    if key in AMOUNT_FIELDS:
        return format_tokens(int(value))
    if key.endswith("_duration"):
        return f"{value} s"
    return value


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def task_summary(fed: Any, task_id: int) -> dict[str, Any]:
    """One task as JSON-friendly values: status, round and live phase, budget, and the spec."""
    from fedchain.protocol import format_tokens

    task = fed.task(task_id)
    phase = fed.phase_view(task_id)
    return {"task_id": task_id, "sponsor": task.sponsor, "status": task.status.label,
            "current_round": task.current_round, "rounds": task.spec.num_rounds,
            "phase": phase.phase.label, "phase_deadline": phase.deadline,
            "global_model_cid": task.global_model_cid, "remaining_budget": format_tokens(task.remaining_budget),
            "architecture": task.spec.architecture, "strategy": task.spec.strategy, "spec": task.spec.describe()}


def round_rows(fed: Any, task_id: int) -> list[dict[str, Any]]:
    """Every round so far: phase, counts, and the accepted result's accuracy and loss."""
    from fedchain.protocol import Phase

    task = fed.task(task_id)
    rows = []
    for n in range(1, task.current_round + 1):
        rnd = fed.round(task_id, n)
        finalized = rnd.phase == Phase.FINALIZED
        rows.append({"round": n, "phase": rnd.phase.label, "deadline": rnd.phase_deadline,
                     "committed": rnd.committed, "revealed": rnd.revealed, "accepted": rnd.accepted,
                     "rejected": rnd.rejected,
                     "accuracy": rnd.accuracy_ppm / 1e6 if finalized else None,
                     "loss": (None if not finalized else float("inf") if rnd.loss_micro == 2**64 - 1
                              else rnd.loss_micro / 1e6),
                     "result_cid": rnd.result_cid or None,
                     "failure": rnd.failure_label or None})
    return rows


@click.group()
def task() -> None:
    """Sponsor a task: create it from a task file, follow its rounds, reclaim what is left."""


@task.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False),
              help="The task file (TOML; docs/TASKS.md).")
@click.option("--dry-run", is_flag=True, help="Check everything (files fit the architecture, the contract's bounds "
              "and the DAO's floors, the sponsor's balance) and print the resolved TaskParams; store and send "
              "nothing.")
@store_option
@json_option
def create(account: Any, path: str, dry_run: bool, store: str | None, as_json: bool) -> None:
    """Create a task from a task file: publish its initial model and validation set, approve the budget, create."""
    from fedchain.errors import FedchainError
    from fedchain.protocol import format_tokens
    from sponsor.publish import publish_bytes
    from sponsor.taskfile import load_task_file
    from sponsor.tasks import create_task, resolve_task, simulate_create

    taskfile = load_task_file(path)
    spec, model, validation, keys = resolve_task(taskfile)
    fed = _connect()
    problem = simulate_create(fed, account, spec)
    if problem is not None:
        raise FedchainError(f"the chain would refuse this task: {problem}")
    if taskfile.retention is not None and fed.retention is None:
        raise FedchainError("the task file sets [retention], but this deployment has no TaskRetention contract")
    resolved = {"params": spec.describe(), "retention": None if taskfile.retention is None
                else taskfile.retention.describe()}
    if dry_run:
        if as_json:
            _echo_json({"dry_run": True, **resolved})
        else:
            click.echo(f"{path}: ready; a task of {spec.num_rounds} round(s) for {format_tokens(spec.reward_budget)}")
            for key, value in resolved["params"].items():
                click.echo(f"  {key} = {_shown(key, value)}")
            if resolved["retention"]:
                click.echo(f"  retention: {resolved['retention']}")
        return
    if keys:  # before anything is sent: a failure later loses nothing
        from fedchain.codec import sha256
        from sponsor.keys import save_keys

        keys_file = save_keys(sha256(validation), keys)
        if not as_json:
            click.echo(f"the validation set is sealed in {len(keys)} section(s); its keys are in {keys_file}")
    content = open_content_store(store)
    model_cid, val_cid = publish_bytes(content, model).cid, publish_bytes(content, validation).cid
    if (model_cid, val_cid) != (spec.initial_model_cid, spec.validation_cid):
        raise FedchainError(f"the store answered CIDs {model_cid} and {val_cid} for the task's files, expected "
                            f"{spec.initial_model_cid} and {spec.validation_cid}: it does not store raw files")
    task_id = create_task(fed, account, spec, content)
    if taskfile.retention is not None:
        fed.send(f"task {task_id} was created; setting its retention policy",
                 fed.retention.setTaskRetention, task_id, taskfile.retention.to_chain(), sender=account)
    if as_json:
        _echo_json({"task_id": task_id, **resolved})
    else:
        click.echo(f"created task {task_id}: {spec.architecture}, {spec.num_rounds} round(s), budget "
                   f"{format_tokens(spec.reward_budget)}; trainers join with `fedchain client run --task {task_id}`")
        if keys:
            click.echo(f"keep `fedchain task reveal-keys {task_id} --watch` running: the committee can score a round "
                       "only once its key is published")


@task.command("reveal-keys", cls=ConnectedProviderCommand)
@account_option()
@store_option
@click.argument("task_id", type=click.IntRange(1))
@click.option("--watch", is_flag=True, help="Keep publishing each round's key when due, until the task completes.")
@click.option("--poll", type=click.FloatRange(0.1), default=2.0, show_default=True, help="Seconds between checks.")
def reveal_keys(account: Any, store: str | None, task_id: int, watch: bool, poll: float) -> None:
    """Publish the keys of a sealed validation set: each round's, once its trainers can no longer commit or
    reveal (the task's sponsor only; the keys are those `task create` saved, checked against the sealed file's key
    hashes before any is sent)."""
    import time

    from fedchain.codec import CodecError
    from fedchain.config import settings
    from fedchain.errors import FedchainError
    from fedchain.protocol import TaskStatus
    from fedchain.sealed import read_sealed
    from sponsor.keys import check_keys, load_keys, publish_due_keys

    fed = _connect()
    spec = fed.task(task_id).spec
    keys = load_keys(spec.validation_digest)
    blob = open_content_store(store).get(spec.validation_cid, sha256=spec.validation_digest,
                                         max_bytes=settings().max_model_bytes)
    try:
        sealed = read_sealed(blob, len(blob))
    except CodecError as exc:
        raise FedchainError(f"task {task_id}'s validation set is not a sealed file ({exc}): it has no keys") from None
    check_keys(keys, sealed.key_hashes)
    while True:
        for round_ in publish_due_keys(fed, account, task_id, keys):
            click.echo(f"task {task_id}: published the validation key of round {round_}")
        if not watch or fed.task(task_id).status != TaskStatus.ACTIVE:
            return
        time.sleep(poll)


@task.command("list", cls=ConnectedProviderCommand)
@json_option
def list_(as_json: bool) -> None:
    """Every task of the deployment: status, round, phase and budget left."""
    fed = _connect()
    rows = [task_summary(fed, n) for n in range(1, fed.task_count() + 1)]
    if as_json:
        _echo_json([{k: v for k, v in row.items() if k != "spec"} for row in rows])
        return
    if not rows:
        click.echo("no tasks yet; create one with `fedchain task create --file task.toml`")
    for row in rows:
        click.echo(f"task {row['task_id']}: {row['status']}, round {row['current_round']}/{row['rounds']} "
                   f"({row['phase']}), {row['architecture']} / {row['strategy']}, budget left "
                   f"{row['remaining_budget']}")


@task.command(cls=ConnectedProviderCommand)
@click.argument("task_id", type=click.IntRange(1))
@json_option
def show(task_id: int, as_json: bool) -> None:
    """One task: status, current phase and its deadline, and every parameter."""
    fed = _connect()
    row = task_summary(fed, task_id)
    if fed.validation_keys is not None:  # rounds whose sealed validation key is on chain (none: a public set)
        row["validation_keys_published"] = [r for r in range(1, row["current_round"] + 1)
                                            if fed.validation_key(task_id, r) is not None]
    if as_json:
        _echo_json(row)
        return
    for key, value in row.items():
        if key != "spec":
            click.echo(f"{key}: {value}")
    for key, value in row["spec"].items():
        click.echo(f"  {key} = {_shown(key, value)}")


@task.command(cls=ConnectedProviderCommand)
@click.argument("task_id", type=click.IntRange(1))
@json_option
def rounds(task_id: int, as_json: bool) -> None:
    """A task's rounds: phase, trainers, and the accepted model's validation accuracy and loss."""
    fed = _connect()
    rows = round_rows(fed, task_id)
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        quality = (f"accuracy {row['accuracy']:.2%}, loss {row['loss']:.4f}" if row["accuracy"] is not None
                   else row["failure"] or "running")
        click.echo(f"round {row['round']}: {row['phase']}, {row['revealed']}/{row['committed']} revealed, "
                   f"{row['accepted']} accepted, {row['rejected']} rejected; {quality}")


@task.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("task_id", type=click.IntRange(1))
def reclaim(account: Any, task_id: int) -> None:
    """Take back what no round of a completed task allocated (only its sponsor)."""
    from fedchain.protocol import format_tokens
    from sponsor.tasks import reclaim as reclaim_budget

    fed = _connect()
    fed.task(task_id)  # UnknownTask: one line naming the valid ids
    click.echo(f"reclaimed {format_tokens(reclaim_budget(fed, account, task_id))} from task {task_id}")

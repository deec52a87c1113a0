"""`fedchain aggregator`: serve tasks as an approved, staked aggregator."""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, account_option

from fedchain.errors import FedchainError


@click.group()
def aggregator() -> None:
    """Aggregator commands."""


@aggregator.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_ids", type=int, multiple=True, required=True, help="Task id to serve (repeatable).")
@click.option("--store", envvar="FEDCHAIN_STORE",
              help="Content store: 'local' (default), 'local:PATH' or 'kubo:URL'. Env: FEDCHAIN_STORE; with "
                   "neither, $FEDCHAIN_IPFS_API selects a Kubo node.")
@click.option("--poll", type=click.FloatRange(0.05, 600), help="Seconds between chain polls.")
@click.option("--timeout", type=click.FloatRange(1), help="Give up after this many seconds.")
@click.option("--central-dp-secret", envvar="FEDCHAIN_CENTRAL_DP_SECRET", default=None,
              help="Secret shared by the task's aggregator committee, mixed into the central-DP noise seed so only "
                   "the committee can reproduce the noise (see docs/THREAT_MODEL.md). Env: FEDCHAIN_CENTRAL_DP_SECRET.")
def run(account, task_ids: tuple[int, ...], store: str | None, poll: float | None, timeout: float | None,
        central_dp_secret: str | None) -> None:
    """Aggregate every round of the given tasks until they complete. Safe to restart at any point."""
    from aggregator.service import AggregatorNode
    from fedchain.ape.chain import Fedchain
    from fedchain.store import open_store

    try:
        secret = central_dp_secret.encode() if central_dp_secret else None
        node = AggregatorNode(Fedchain.connect(), account, open_store(store), central_dp_secret=secret)
        node.run(list(task_ids), poll_seconds=poll, timeout=timeout,
                 on_action=lambda t, a: click.echo(f"task {t} round {node.fed.task(t).current_round}: {a}"))
    except (FedchainError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("all tasks completed")

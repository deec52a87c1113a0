"""`fedchain pin-follower`: keep every CID the contracts reference pinned on Kubo nodes / pinning services."""

from __future__ import annotations

import time

import click
from ape.cli import ConnectedProviderCommand

TARGET_HELP = ("Where to pin (repeatable): 'kubo:URL' for a Kubo RPC node, 'psa:URL' for an IPFS Pinning "
               "Service API endpoint (token from --psa-token). Default: $FEDCHAIN_IPFS_API as a Kubo node.")


@click.command("pin-follower", cls=ConnectedProviderCommand)
@click.option("--target", "target_specs", multiple=True, help=TARGET_HELP)
@click.option("--psa-token", envvar="FEDCHAIN_PINNING_TOKEN", help="Bearer token for psa: targets. "
              "Env: FEDCHAIN_PINNING_TOKEN.")
@click.option("--store", envvar="FEDCHAIN_STORE", help="Store to read finalized results from "
              "(default: the first Kubo target).")
@click.option("--confirmations", default=0, show_default=True, type=click.IntRange(0),
              help="Only follow blocks this deep.")
@click.option("--from-block", default=0, show_default=True, type=click.IntRange(0),
              help="First block to read on the first run (later runs resume from the saved cursor).")
@click.option("--keep-models", metavar="N|all", help="Operator override: keep at least the global models of the "
              "last N finalized rounds of every task (the chain's retention policy may keep more).")
@click.option("--keep-update-rounds", metavar="N|all", help="Operator override: keep at least the updates of the "
              "last N finalized rounds.")
@click.option("--keep-rejected", is_flag=True, help="Operator override: also keep rejected updates.")
@click.option("--keep-validation", is_flag=True, help="Operator override: keep validation sets after completion.")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(0.05, 3600))
@click.option("--once", is_flag=True, help="One pass, then exit (non-zero while content is missing).")
def pin_follower(target_specs: tuple[str, ...], psa_token: str | None, store: str | None, confirmations: int,
                 from_block: int, keep_models: str | None, keep_update_rounds: str | None, keep_rejected: bool,
                 keep_validation: bool, poll: float, once: bool) -> None:
    """Follow the TaskManager's events and pin every model, update and validation set they reference.

    What is kept follows each task's retention policy on chain (TaskRetention: set by the task's sponsor with
    `fedchain retention set`, else the protocol default); the --keep-* options can only keep more.
    """
    from fedchain.ape.chain import Fedchain
    from fedchain.config import settings
    from fedchain.errors import FedchainError
    from fedchain.retention import RetentionPolicy, parse_count
    from fedchain.store import open_store
    from pinning.follower import PinFollower, state_file
    from pinning.targets import KuboPinTarget, open_target

    config = settings()
    specs = list(target_specs) or ([f"kubo:{config.ipfs_api}"] if config.ipfs_api else [])
    if not specs:
        raise click.UsageError("give at least one --target (or set FEDCHAIN_IPFS_API)")
    override = None
    if keep_models or keep_update_rounds or keep_rejected or keep_validation:
        try:
            minimal = RetentionPolicy.minimal()
            override = RetentionPolicy(parse_count(keep_models) if keep_models else minimal.model_rounds,
                                       parse_count(keep_update_rounds) if keep_update_rounds else 0,
                                       keep_rejected, keep_validation)
        except ValueError as exc:
            raise click.BadParameter(f"{exc} (give a number or 'all')", param_hint="--keep-*") from exc
    try:
        targets = [open_target(spec, psa_token) for spec in specs]
        fed = Fedchain.connect()
    except (ValueError, FedchainError) as exc:
        raise click.ClickException(str(exc)) from exc
    kubo = [t for t in targets if isinstance(t, KuboPinTarget)]
    reader = open_store(store) if store or not kubo else kubo[0].store
    follower = PinFollower(fed, targets, state_file(config.home, fed.deployment),
                           reader=reader, confirmations=confirmations, from_block=from_block, override=override)
    click.echo(f"following TaskManager {fed.tasks.address} from block {follower.state.next_block}; "
               f"targets: {', '.join(t.name for t in targets)}")
    click.echo("retention: each task's policy on chain" + ("" if fed.retention else " (none deployed: keep all)")
               + (f", kept at least: {override.describe()}" if override else ""))
    try:
        while True:
            report = follower.run_once()
            if report.events or report.pinned or report.unpinned or report.missing or report.unavailable:
                click.echo(f"block {follower.state.next_block - 1}: {report.events} events, "
                           f"{len(report.pinned)} pinned, {len(report.unpinned)} unpinned, "
                           f"{len(report.missing)} missing, {len(report.unavailable)} unavailable")
            for cid, why in report.missing.items():
                click.echo(f"  missing {cid}: {why}", err=True)
            for problem in report.unavailable:
                click.echo(f"  unavailable (will retry): {problem}", err=True)
            if once:
                if follower.missing() or report.unavailable:
                    raise SystemExit(1)
                return
            time.sleep(poll)
    except KeyboardInterrupt:
        click.echo("stopped; the cursor is saved")
    finally:
        follower.close()

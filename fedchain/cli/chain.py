"""`fedchain chain start`: one persistent local anvil chain that separate processes share.

Every other process reaches it through one variable, ``APE_FOUNDRY_HOST`` (ape-foundry then connects instead of
starting its own anvil). The chain's state is saved to ``$FEDCHAIN_HOME/anvil-state.json`` every few seconds and
on exit, and loaded on the next start, so deployments recorded in ``deployments.json`` stay valid.
"""

from __future__ import annotations

import os
import shutil
import sys

import click

# ape's test mnemonic (ape-config.yaml): the TEST::N accounts are this chain's funded dev accounts
DEV_MNEMONIC = "test test test test test test test test test test test junk"


@click.group()
def chain() -> None:
    """A persistent local chain for several processes (sponsor, trainers, aggregators in separate shells)."""


@chain.command()
@click.option("--port", default=8545, show_default=True, type=click.IntRange(1, 65535))
@click.option("--fresh", is_flag=True, help="Start from an empty chain (the saved state is moved aside).")
@click.option("--accounts", "num_accounts", default=20, show_default=True, type=click.IntRange(1, 100),
              help="Funded dev accounts (ape's TEST::0 ...).")
def start(port: int, fresh: bool, num_accounts: int) -> None:
    """Run anvil on 127.0.0.1:PORT in the foreground (Ctrl-C stops it and saves its state for the next start)."""
    from fedchain.config import settings

    anvil = shutil.which("anvil")
    if anvil is None:
        raise click.ClickException("anvil is not installed: run `make setup` (it installs anvil from npm)")
    home = settings().home
    home.mkdir(parents=True, exist_ok=True)
    state = home / "anvil-state.json"
    if fresh and state.exists():
        state.rename(state.with_suffix(".json.old"))
    url = f"http://127.0.0.1:{port}"
    click.echo(f"local chain at {url}, state in {state}" + (" (loaded)" if state.exists() else " (new)"))
    click.echo(f"in every other shell:  export APE_FOUNDRY_HOST={url}  (and the same FEDCHAIN_HOME={home})")
    command = [anvil, "--host", "127.0.0.1", "--port", str(port), "--mnemonic", DEV_MNEMONIC, "--accounts",
               str(num_accounts), "--state", str(state), "--state-interval", "5", "--silent"]
    sys.stdout.flush()
    # anvil replaces this process: Ctrl-C (or SIGTERM) reaches it directly, and it saves the state as it exits
    os.execv(anvil, command)

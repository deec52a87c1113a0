"""`fedchain backend serve` and `fedchain backend index`: thin wrappers over backend.app and backend.indexer."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from backend.app import BackendConfig

DEFAULT_CORS_HELP = "http://localhost:8080, http://127.0.0.1:8080"


def _config_options(fn):  # noqa: ANN001, ANN202 - click decorator stack
    options = [
        click.option("--database-url", envvar="FEDCHAIN_DATABASE_URL", default=None,
                     help="SQLAlchemy URL; default sqlite:///$FEDCHAIN_HOME/backend.sqlite3 "
                          "(postgresql://user@host/db for Postgres)."),
        click.option("--rpc-url", envvar="FEDCHAIN_RPC_URL", default=None,
                     help="JSON-RPC endpoint of the chain (default $APE_FOUNDRY_HOST or http://127.0.0.1:8545)."),
        click.option("--network", "network_key", default="ethereum:local", show_default=True,
                     help="Which record of $FEDCHAIN_HOME/deployments.json to index (ecosystem:network)."),
        click.option("--confirmations", type=click.IntRange(0, 1000), default=None,
                     help="Blocks behind the head to stay (default 0 on local chains, 6 elsewhere)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _make_config(database_url: str | None, rpc_url: str | None, network_key: str, confirmations: int | None,
                 **extra) -> BackendConfig:  # noqa: ANN003 - passed through to BackendConfig
    from backend.app import BackendConfig

    config = BackendConfig(network=network_key, confirmations=confirmations, **extra)
    if database_url:
        config.database_url = database_url
    if rpc_url:
        config.rpc_url = rpc_url
    return config


@click.group()
def backend() -> None:
    """Chain indexer and read API (Litestar)."""


@backend.command()
@_config_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-indexer", is_flag=True, help="Serve the database only (another process indexes).")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help=f"Origin allowed by CORS (repeatable; default {DEFAULT_CORS_HELP}).")
@click.option("--rate-limit", default=600, show_default=True, type=click.IntRange(0, 10**9),
              help="Requests per minute per client address (0: no limit).")
def serve(host: str, port: int, no_indexer: bool, cors_origins: tuple[str, ...], rate_limit: int, **options) -> None:
    """Index the chain and serve the read API (OpenAPI at /schema, /health, /metrics)."""
    import uvicorn

    from backend.app import create_app

    config = _make_config(**options, run_indexer=not no_indexer, rate_limit_per_minute=rate_limit)
    if cors_origins:
        config.cors_origins = tuple(cors_origins)
    click.echo(f"fedchain backend on http://{host}:{port} (OpenAPI: /schema), chain {config.rpc_url}, "
               f"database {config.database_url.split('@')[-1]}", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


@backend.command()
@_config_options
@click.option("--once", is_flag=True, help="Catch up with the chain and exit.")
def index(once: bool, **options) -> None:
    """Run only the indexer (e.g. beside `serve --no-indexer`)."""
    from backend.db import make_engine, migrate
    from backend.indexer import Indexer

    config = _make_config(**options)
    engine = make_engine(config.database_url)
    migrate(engine)
    indexer = Indexer(engine, config.indexer_config())
    if once:
        indexer.catch_up()
        status = indexer.status
        if status.last_block is None:
            raise click.ClickException(status.deployment)
        click.echo(f"indexed up to block {status.last_block} (head {status.head})")
        return
    click.echo(f"indexing {config.rpc_url} into {config.database_url.split('@')[-1]}; Ctrl-C stops", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        indexer.run()

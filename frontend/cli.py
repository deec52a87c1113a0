"""`fedchain dashboard`: serve the NiceGUI dashboard (a thin wrapper over frontend.app)."""

from __future__ import annotations

import os
import time

import click

from frontend.context import DashboardConfig

DEFAULT_RPC_HELP = "$FEDCHAIN_RPC_URL, else $APE_FOUNDRY_HOST, else http://127.0.0.1:8545"


def deployment_key(network: str) -> str:
    """`ecosystem:network` (the key in deployments.json) from an ape network choice like ethereum:local:foundry."""
    parts = network.split(":")
    if len(parts) < 2 or not all(parts[:2]):
        raise click.BadParameter(f"expected ecosystem:network[:provider], e.g. ethereum:local, not {network!r}",
                                 param_hint="--network")
    return ":".join(parts[:2])


def check_deployment(config: DashboardConfig, wait_seconds: float = 0.0) -> None:
    """Fail with a clear message when no deployment is recorded for the network or the chain does not have it."""
    from fedchain.config import settings
    from fedchain.deployment import Deployment

    deadline = time.monotonic() + wait_seconds
    while (record := Deployment.find(config.network)) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if record is None:
        raise click.ClickException(
            f"no fedchain deployment recorded for {config.network} in {settings().deployments_file}; "
            "run `ape run deploy` or `fedchain demo` first (or pass --network)")
    if wait_seconds:
        return  # the demo deploys while the dashboard starts; the pages pick the new record up by themselves
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": 5}))
    try:
        code = w3.eth.get_code(Web3.to_checksum_address(record.tasks))
    except Exception as exc:  # noqa: BLE001 - any transport error: the chain is not reachable
        raise click.ClickException(f"the chain at {config.rpc_url} is not reachable ({type(exc).__name__}); "
                                   "start it or pass --rpc-url") from exc
    if not code:
        raise click.ClickException(
            f"the deployment recorded for {config.network} is not on the chain at {config.rpc_url} "
            "(was the local chain restarted?); deploy again with `ape run deploy` or run `fedchain demo`")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--backend-url", envvar="FEDCHAIN_BACKEND_URL", default="http://127.0.0.1:8000", show_default=True,
              help="The read API of `fedchain backend serve` (history).")
@click.option("--rpc-url", envvar="FEDCHAIN_RPC_URL", default=None,
              help=f"JSON-RPC endpoint for live chain reads (default {DEFAULT_RPC_HELP}).")
@click.option("--network", default="ethereum:local", show_default=True,
              help="Which deployment of $FEDCHAIN_HOME/deployments.json to show (ape's ecosystem:network[:provider]).")
@click.option("--wait-for-deployment", type=click.FloatRange(0, 3600), default=0.0, hidden=True,
              help="Wait this long for a deployment record to appear (used by `fedchain demo --dashboard`).")
def dashboard(host: str, port: int, backend_url: str, rpc_url: str | None, network: str,
              wait_for_deployment: float) -> None:
    """Serve the dashboard: live rounds from the chain, history from the backend, actions through the wallet."""
    defaults = DashboardConfig()
    config = DashboardConfig(rpc_url=rpc_url or defaults.rpc_url, backend_url=backend_url,
                             network=deployment_key(network), host=host, port=port)
    check_deployment(config, wait_for_deployment)
    click.echo(f"fedchain dashboard on http://{host}:{port} (chain {config.rpc_url}, backend {config.backend_url}, "
               f"deployment {config.network}); Ctrl-C stops it", err=True)
    from frontend.app import run_dashboard

    # NiceGUI takes this variable to mean "inside pytest" and then ignores the port; a dashboard process started
    # by a test (or by `fedchain demo --dashboard` under a test) inherits it but is a real server
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    run_dashboard(config)

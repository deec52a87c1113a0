"""`ape run deploy`: deploy fedchain to the chosen network and record the addresses."""

import click
from ape.cli import ConnectedProviderCommand, account_option

from fedchain.chain import is_local_network
from fedchain.deploy import DEFAULT_UNBONDING_DELAY, LOCAL_UNBONDING_DELAY, deploy_protocol


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--treasury", help="Address that receives slashed stakes (default: the deployer).")
@click.option("--admin", help="Address that receives the admin and minter roles (default: the deployer).")
@click.option("--unbonding-delay", type=int, help="Seconds between unstake request and withdrawal.")
@click.option("--aggregator", "aggregators", multiple=True, help="Approved aggregator address (repeatable).")
def cli(account, treasury, admin, unbonding_delay, aggregators):
    """Deploy FedToken, Staking and TaskManager."""
    if unbonding_delay is None:
        unbonding_delay = LOCAL_UNBONDING_DELAY if is_local_network() else DEFAULT_UNBONDING_DELAY
    fed = deploy_protocol(
        account, admin=admin, treasury=treasury, unbonding_delay=unbonding_delay, aggregators=aggregators
    )
    d = fed.deployment
    click.echo(f"FedToken     {d.token}\nStaking      {d.staking}\nTaskManager  {d.tasks}")
    click.echo(f"recorded for {d.network} (chain {d.chain_id})")

"""`ape run deploy`: deploy fedchain to the chosen network and record the addresses.

With `--governance` the DAO owns the result: FedGovernor + FedTimelock hold every admin, parameter and minter
role and the treasury, and the deployer keeps nothing (an optional `--guardian` may only pause new rounds).
"""

from dataclasses import replace
from decimal import Decimal

import click
from ape.cli import ConnectedProviderCommand, account_option

from aggregator.strategies import strategy_ids
from fedchain.ape.chain import is_local_network
from fedchain.ape.deploy import (
    DEFAULT_UNBONDING_DELAY,
    LOCAL_UNBONDING_DELAY,
    GovernanceConfig,
    deploy_governance,
    deploy_protocol,
)
from fedchain.config import ensure_tool_paths
from fedchain.protocol import ONE_TOKEN

ensure_tool_paths()  # the repo's anvil and solc-js, before ape connects


def _allocations(items: tuple[str, ...]) -> list[tuple[str, int]]:
    out = []
    for item in items:
        address, sep, amount = item.partition("=")
        try:
            out.append((address.strip(), int(Decimal(amount) * ONE_TOKEN)))
        except ArithmeticError:
            sep = ""
        if not sep:
            raise click.BadParameter(f"{item!r}: expected ADDRESS=FED", param_hint="--mint")
    return out


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--treasury", help="Address that receives slashed stakes (default: the deployer; the timelock "
              "with --governance).")
@click.option("--admin", help="Address that receives the admin and minter roles (default: the deployer).")
@click.option("--unbonding-delay", type=int, help="Seconds between unstake request and withdrawal.")
@click.option("--aggregator", "aggregators", multiple=True, help="Approved aggregator address (repeatable).")
@click.option("--governance", is_flag=True, help="Hand every role and the treasury to a Governor + Timelock.")
@click.option("--mint", "mints", multiple=True, metavar="ADDRESS=FED",
              help="Initial token allocation (repeatable): minted by the deployer, before the hand-over with "
                   "--governance.")
@click.option("--guardian", help="Optional address that may only pause new rounds for a bounded time.")
@click.option("--voting-delay", type=int, help="Seconds from proposal to voting (default 1 day; local 1 s).")
@click.option("--voting-period", type=int, help="Seconds of voting (default 7 days; local 300 s).")
@click.option("--timelock-delay", type=int, help="Seconds from queue to execute (default 2 days; local 60 s).")
@click.option("--quorum-percent", type=click.IntRange(0, 100), help="Quorum, percent of supply (default 4).")
@click.option("--proposal-threshold", type=Decimal, help="FED of votes needed to propose (default 1000; local 100).")
def cli(account, treasury, admin, unbonding_delay, aggregators, governance, mints, guardian, voting_delay,
        voting_period, timelock_delay, quorum_percent, proposal_threshold):
    """Deploy FedToken, Staking and TaskManager (and with --governance the DAO that owns them)."""
    if unbonding_delay is None:
        unbonding_delay = LOCAL_UNBONDING_DELAY if is_local_network() else DEFAULT_UNBONDING_DELAY
    if governance and admin:
        raise click.UsageError("--admin and --governance exclude each other: with --governance the DAO is the admin")
    if guardian and not governance:
        raise click.UsageError("--guardian needs --governance (without it the deployer keeps every role)")
    if mints and admin:
        raise click.UsageError("--mint and --admin exclude each other: the admin holds the minter role, so it mints")
    allocations = _allocations(mints)
    fed = deploy_protocol(
        account, admin=admin, treasury=treasury, unbonding_delay=unbonding_delay, aggregators=aggregators,
        save=not governance,
    )
    for address, amount in allocations:  # before any hand-over: the deployer holds the minter role until then
        fed.token.mint(address, amount, sender=account)
    if governance:
        config = GovernanceConfig.local() if is_local_network() else GovernanceConfig()
        config = replace(config, strategies=strategy_ids())
        overrides = {"voting_delay": voting_delay, "voting_period": voting_period, "timelock_delay": timelock_delay,
                     "quorum_percent": quorum_percent,
                     "proposal_threshold": None if proposal_threshold is None else int(proposal_threshold * ONE_TOKEN)}
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        fed = deploy_governance(fed, account, config, guardian=guardian)
    d = fed.deployment
    click.echo(f"FedToken     {d.token}\nStaking      {d.staking}\nTaskManager  {d.tasks}")
    if d.retention:
        click.echo(f"TaskRetention {d.retention}")
    if d.validation_keys:
        click.echo(f"ValidationKeys {d.validation_keys}")
    if d.governed:
        click.echo(f"FedGovernor  {d.governor}\nFedTimelock  {d.timelock}\nPolicy       {d.policy}")
        click.echo("the timelock holds every admin, parameter and minter role and the treasury; "
                   f"the deployer {d.deployer} holds none")
    click.echo(f"recorded for {d.network} (chain {d.chain_id})")

"""`ape run governance <subcommand>`: govern fedchain through the DAO (FedGovernor + FedTimelock).

    ape run governance delegate --account alice                       # activate your voting power
    ape run governance propose --set minTrainerStake=200 -d "Raise the floor" --account alice
    ape run governance vote 1 for --reason "sybil resistance" --account alice
    ape run governance status 1
    ape run governance queue 1 --account alice
    ape run governance execute 1 --account alice
    ape run governance list
    ape run governance params

Proposals are given by their number in `list` (1, 2, ...) or by their full id. The library is
fedchain/governance.py (reads) and fedchain/ape/governance.py (transactions).
"""

from __future__ import annotations

import json

import click
from ape.cli import ConnectedProviderCommand, account_option

from fedchain.ape import governance as gov
from fedchain.ape.chain import Fedchain
from fedchain.config import ensure_tool_paths
from fedchain.errors import FedchainError
from fedchain.protocol import ONE_TOKEN

ensure_tool_paths()  # the repo's anvil and solc-js, before ape connects


def _connect() -> Fedchain:
    try:
        return Fedchain.connect()
    except FedchainError as exc:
        raise click.ClickException(str(exc)) from None


def _resolve(fed: Fedchain, ref: str) -> int:
    """A proposal number from `list` (1-based) or a full proposal id."""
    if not ref.isdigit():
        raise click.BadParameter(f"{ref!r} is not a proposal number or id", param_hint="PROPOSAL")
    proposals = gov.list_proposals(fed)
    number = int(ref)
    if 1 <= number <= len(proposals) and number < 10**9:
        return proposals[number - 1]["id"]
    return number


def _run(action):
    try:
        return action()
    except FedchainError as exc:
        raise click.ClickException(str(exc)) from None


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    out = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=option)
        out.append((name.strip(), value.strip()))
    return out


@click.group()
def cli():
    """Govern fedchain: delegate, propose, vote, queue, execute, status, list, params."""


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--to", "delegatee", help="Delegate to this address (default: yourself).")
def delegate(account, delegatee):
    """Delegate your FED voting power (needed before your tokens can vote or propose)."""
    fed = _connect()
    _run(lambda: gov.delegate(fed, account, delegatee))
    votes = fed.token.getVotes(delegatee or account.address)
    click.echo(f"{account.address} delegated to {delegatee or 'itself'}; "
               f"voting power now {votes / ONE_TOKEN:,.2f} FED (counts from the next proposal snapshot)")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("-d", "--description", default="", help="Title (first line) and rationale of the proposal.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Change a parameter (repeatable); see `ape run governance params`.")
@click.option("--call", "calls", multiple=True, nargs=3, metavar="TARGET SIGNATURE ARGS_JSON",
              help="Arbitrary call, e.g. --call token 'transfer(address,uint256)' '[\"0xabc...\", 10]'.")
@click.option("--allow-strategy", multiple=True, help="Add a strategy id to the allowlist.")
@click.option("--disallow-strategy", multiple=True, help="Remove a strategy id from the allowlist.")
@click.option("--add-aggregator", multiple=True, help="Grant AGGREGATOR_ROLE to an address.")
@click.option("--remove-aggregator", multiple=True, help="Revoke AGGREGATOR_ROLE from an address.")
@click.option("--revoke-guardian", multiple=True, help="Revoke the pause guardian role from an address.")
@click.option("--mint", "mints", multiple=True, metavar="ADDRESS=FED", help="Mint new FED (emission).")
@click.option("--pay", "pays", multiple=True, metavar="ADDRESS=FED", help="Pay FED from the treasury.")
def propose(account, description, sets, calls, allow_strategy, disallow_strategy, add_aggregator,
            remove_aggregator, revoke_guardian, mints, pays):
    """Propose parameter changes and calls; the timelock executes them if the vote passes."""
    fed = _connect()

    def build() -> list[gov.Action]:
        actions = gov.parameter_actions(fed, dict(_pairs(sets, "--set"))) if sets else []
        for target, signature, args in calls:
            try:
                parsed = json.loads(args)
            except json.JSONDecodeError as exc:
                raise gov.GovernanceError(f"--call arguments must be a JSON array: {exc}") from None
            if not isinstance(parsed, list):
                raise gov.GovernanceError("--call arguments must be a JSON array, e.g. '[1, \"0xabc...\"]'")
            actions.append(gov.call_action(fed, target, signature, parsed))
        actions += [gov.strategy_action(fed, s, True) for s in allow_strategy]
        actions += [gov.strategy_action(fed, s, False) for s in disallow_strategy]
        actions += [gov.role_action(fed, "tasks", "AGGREGATOR_ROLE", a, True) for a in add_aggregator]
        actions += [gov.role_action(fed, "tasks", "AGGREGATOR_ROLE", a, False) for a in remove_aggregator]
        actions += [gov.role_action(fed, "policy", "GUARDIAN_ROLE", a, False) for a in revoke_guardian]
        for flag, items, signature in (("--mint", mints, "mint(address,uint256)"),
                                       ("--pay", pays, "transfer(address,uint256)")):
            for address, amount in _pairs(items, flag):
                wei = gov.parse_value(gov.PARAMETERS["minTrainerStake"], amount)
                actions.append(gov.call_action(fed, "token", signature, [address, wei]))
        return actions

    actions = _run(build)
    title = description or "; ".join(a.summary for a in actions)
    proposal_id = _run(lambda: gov.propose(fed, account, actions, title))
    number = len(gov.list_proposals(fed))
    click.echo(f"proposal {number} created (id {proposal_id})")
    for action in actions:
        click.echo(f"  - {action.summary}")
    click.echo(gov.format_status(gov.proposal_status(fed, proposal_id)))


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("proposal")
@click.argument("support", type=click.Choice(sorted(gov.SUPPORT)))
@click.option("--reason", default="", help="Reason recorded on chain with the vote.")
def vote(account, proposal, support, reason):
    """Vote for, against or abstain on PROPOSAL (number from `list` or full id)."""
    fed = _connect()
    proposal_id = _resolve(fed, proposal)
    _run(lambda: gov.vote(fed, account, proposal_id, support, reason))
    weight = fed.governor.getVotes(account.address, fed.governor.proposalSnapshot(proposal_id))
    click.echo(f"voted {support} on proposal {proposal} with {weight / ONE_TOKEN:,.2f} FED")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("proposal")
def queue(account, proposal):
    """Queue a succeeded PROPOSAL in the timelock."""
    fed = _connect()
    proposal_id = _resolve(fed, proposal)
    _run(lambda: gov.queue(fed, account, proposal_id))
    status = gov.proposal_status(fed, proposal_id)
    click.echo(f"proposal {proposal} queued; executable from {gov.human_time(status['eta'], status['now'])}")


@cli.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("proposal")
def execute(account, proposal):
    """Execute a queued PROPOSAL once the timelock delay has passed."""
    fed = _connect()
    proposal_id = _resolve(fed, proposal)
    _run(lambda: gov.execute(fed, account, proposal_id))
    click.echo(f"proposal {proposal} executed")


@cli.command(cls=ConnectedProviderCommand)
@click.argument("proposal")
def status(proposal):
    """State, votes, quorum progress, deadlines and ETA of PROPOSAL."""
    fed = _connect()
    proposal_id = _resolve(fed, proposal)
    click.echo(_run(lambda: gov.format_status(gov.proposal_status(fed, proposal_id))))


@cli.command("list", cls=ConnectedProviderCommand)
def list_():
    """Every proposal with its state and votes."""
    fed = _connect()
    proposals = _run(lambda: gov.list_proposals(fed))
    if not proposals:
        click.echo("no proposals yet")
        return
    click.echo(f"{'#':>3}  {'state':<10}{'for':>12}{'against':>12}{'abstain':>12}  title")
    for number, p in enumerate(proposals, 1):
        s = gov.proposal_status(fed, p["id"])
        click.echo(f"{number:>3}  {s['state'].label:<10}{s['for'] / ONE_TOKEN:>12,.2f}"
                   f"{s['against'] / ONE_TOKEN:>12,.2f}{s['abstain'] / ONE_TOKEN:>12,.2f}  {s['title']}")


@cli.command(cls=ConnectedProviderCommand)
def params():
    """Every parameter a proposal can change (--set NAME=VALUE), with its current value."""
    fed = _connect()
    click.echo(f"{'name':<22}{'current':>26}  {'unit':<8}setter")
    for p in gov.PARAMETERS.values():
        try:
            value = gov.current_value(fed, p)
        except FedchainError:
            continue  # contract not part of this deployment
        shown = f"{int(value) / ONE_TOKEN:g}" if p.kind == "tokens" else str(value)
        unit = {"tokens": "FED", "address": "address"}.get(p.kind, "")
        click.echo(f"{p.name:<22}{shown:>26}  {unit:<8}{p.contract}.{p.setter}")

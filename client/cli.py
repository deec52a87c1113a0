"""`fedchain client`: the trainer's commands, with ape's --network and --account options."""

from __future__ import annotations

import time

import click
from ape.cli import ConnectedProviderCommand, account_option

from fedchain.errors import FedchainError
from fedchain.protocol import TrainerStatus, format_tokens, parse_tokens

STORE_HELP = ("Content store: 'local' (default, $FEDCHAIN_HOME/store), 'local:PATH' or 'kubo:URL' (an IPFS node's "
              "RPC API). Env: FEDCHAIN_STORE; with neither, $FEDCHAIN_IPFS_API selects a Kubo node.")


class TokenAmount(click.ParamType):
    """An amount of FED with up to 18 decimals, e.g. 100 or 0.5."""

    name = "amount"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_tokens(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


def _node(account, store: str | None, data: str = "none", shard: str = "1/1", alpha: float = 0.5, seed: int = 0,
          epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
          epsilon: float | None = None, accountant: str = "rdp",
          task_id: int | None = None):
    from client.datasets import load_trainer_data
    from client.participant import TrainerNode
    from client.trainer import default_train_config
    from fedchain.ape.chain import Fedchain
    from fedchain.store import open_store

    try:
        fed = Fedchain.connect()
        xy = load_trainer_data(data, shard, alpha, seed)
        # DP-SGD (our target or the task's on-chain bound) trains with the DP defaults (client.trainer.DP_DEFAULTS)
        private = epsilon is not None or (task_id is not None and fed.task(task_id).spec.dp_epsilon is not None)
    except (FedchainError, ValueError, OSError) as exc:
        _fail(exc)
    if not private:  # the non-private CLI defaults
        epochs, batch_size = epochs or 1, batch_size or 32
    config = default_train_config(private, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return TrainerNode(fed, account, open_store(store), xy, config, target_epsilon=epsilon, accountant=accountant)


def _echo_settings(config) -> None:
    click.echo(f"local training: {config.epochs} epochs, batch {config.batch_size}, lr {config.lr:g}, momentum "
               f"{config.momentum:g} (under DP: clip norm {config.max_grad_norm:g})")


def data_options(fn):
    options = [
        click.option("--data", default="digits", show_default=True,
                     help="Training data: a scikit-learn dataset name (digits, breast_cancer, wine, iris) "
                          "or a .npz file with arrays x and y."),
        click.option("--shard", default="1/1", show_default=True,
                     help="For built-in datasets: use non-IID shard I of N (e.g. 2/5)."),
        click.option("--alpha", default=0.5, show_default=True, help="Dirichlet concentration of the shards."),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--epochs", type=click.IntRange(1, 1000),
                     help="Local epochs per round (default: 1; with DP 2, see client.trainer.DP_DEFAULTS)."),
        click.option("--batch-size", type=click.IntRange(1, 100000),
                     help="Batch size, the expected batch under DP's Poisson sampling (default: 32; with DP 64)."),
        click.option("--lr", type=float, help="Learning rate (default: the trainer's default; with DP 0.5)."),
        click.option("--epsilon", type=click.FloatRange(0.01, 1000),
                     help="Your own epsilon target for the whole task (the task's on-chain bound also applies)."),
        click.option("--accountant", type=click.Choice(["rdp", "prv"]), default="rdp", show_default=True,
                     help="Privacy accountant for planning noise and reporting epsilon."),
        click.option("--store", envvar="FEDCHAIN_STORE", help=STORE_HELP),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group()
def client() -> None:
    """Trainer commands: stake, train, reveal, claim."""


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("amount", type=TokenAmount())
def stake(account, amount: int) -> None:
    """Lock AMOUNT FED as stake."""
    node = _node(account, None)
    try:
        node.stake(amount)
    except FedchainError as exc:
        _fail(exc)
    click.echo(f"staked {format_tokens(amount)}; total stake {format_tokens(node.fed.staking.stakeOf(account))}")


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.argument("amount", type=TokenAmount())
def unstake(account, amount: int) -> None:
    """Start unbonding AMOUNT FED of free stake (withdraw after the unbonding delay; stake reserved as bonds of
    rounds in progress is not free until they settle)."""
    node = _node(account, None)
    try:
        node.request_unstake(amount)
    except FedchainError as exc:
        _fail(exc)
    pending, release = node.fed.staking.unbondingOf(account)
    click.echo(f"unbonding {format_tokens(pending)}, withdrawable after {time.ctime(int(release))}")


@client.command(cls=ConnectedProviderCommand)
@account_option()
def withdraw(account) -> None:
    """Withdraw unbonded stake once its unbonding delay has passed."""
    node = _node(account, None)
    try:
        node.withdraw()
    except FedchainError as exc:
        _fail(exc)
    click.echo(f"withdrawn; balance {format_tokens(node.fed.token.balanceOf(account))}")


def _status_json(node, task_id: int | None) -> dict:
    """``client status`` as JSON: amounts as FED text and wei strings, rounds with status, bond and privacy."""
    fed, address = node.fed, node.address
    pending, release = fed.staking.unbondingOf(address)

    def amount(wei: int) -> dict:
        return {"fed": format_tokens(int(wei)), "wei": str(int(wei))}

    out: dict = {"account": address, "balance": amount(fed.token.balanceOf(address)),
                 "staked": amount(fed.staking.stakeOf(address)), "reserved": amount(fed.reserved_stake(address)),
                 "unbonding": amount(pending), "unbonding_until": int(release) if pending else None}
    if task_id is None:
        return out
    try:
        task = fed.task(task_id)
    except FedchainError as exc:
        _fail(exc)
    _, rnd = fed.current_round(task_id)
    epsilons = node.epsilon_report(task_id)
    rounds = []
    for r in range(1, task.current_round + 1):
        entry = fed.trainer_entry(task_id, r, address)
        if entry.status != TrainerStatus.NONE:
            eps_round, eps_total = epsilons.get(r, (None, None))
            rounds.append({"round": r, "status": entry.status.label, "num_samples": entry.num_samples,
                           "cid": entry.cid or None, "bond": amount(entry.bond), "epsilon_round": eps_round,
                           "epsilon_total": eps_total})
    out["task"] = {"task_id": task_id, "status": task.status.label, "current_round": task.current_round,
                   "rounds": task.spec.num_rounds, "phase": rnd.phase.label, "phase_deadline": rnd.phase_deadline,
                   "bond": amount(fed.trainer_bond(task_id)), "epsilon_bound": node.task_bound(task),
                   "participation": rounds,
                   "claimable": [{"round": c.round, "score": c.score, "weight": c.weight, "reward": amount(c.reward)}
                                 for c in node.claimable(task_id)]}
    return out


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_id", type=int, help="Also show this task's rounds.")
@click.option("--store", envvar="FEDCHAIN_STORE", help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of text.")
def status(account, task_id: int | None, store: str | None, as_json: bool) -> None:
    """Balance, stake, and per-round participation, rewards and privacy spent."""
    node = _node(account, store)
    if as_json:
        import json

        click.echo(json.dumps(_status_json(node, task_id), indent=2, sort_keys=True))
        return
    fed = node.fed
    pending, release = fed.staking.unbondingOf(account)
    click.echo(f"account   {account.address}")
    click.echo(f"balance   {format_tokens(fed.token.balanceOf(account))}")
    click.echo(f"staked    {format_tokens(fed.staking.stakeOf(account))} "
               f"({format_tokens(fed.reserved_stake(account.address))} reserved as bonds)")
    if pending:
        click.echo(f"unbonding {format_tokens(pending)} until {time.ctime(release)}")
    if task_id is None:
        return
    try:
        task = fed.task(task_id)
    except FedchainError as exc:
        _fail(exc)
    _, rnd = fed.current_round(task_id)
    deadline = f", deadline {time.ctime(rnd.phase_deadline)}" if rnd.phase.is_open else ""
    click.echo(f"task {task_id}: {task.status.label}, round {task.current_round}/{task.spec.num_rounds}, phase "
               f"{rnd.phase.label}{deadline}, bond {format_tokens(fed.trainer_bond(task_id))} per round")
    epsilons = node.epsilon_report(task_id)
    for r in range(1, task.current_round + 1):
        entry = fed.trainer_entry(task_id, r, account.address)
        if entry.status == TrainerStatus.NONE:
            continue
        eps_round, eps_total = epsilons.get(r, (None, None))
        privacy = "" if eps_total is None else (
            f", epsilon {'-' if eps_round is None else f'{eps_round:.3f}'} this round, {eps_total:.3f} in total")
        bond = f", bond {format_tokens(entry.bond)} reserved" if entry.bond else ""
        click.echo(f"  round {r}: {entry.status.label}, {entry.num_samples} samples, "
                   f"{entry.cid or '-'}{bond}{privacy}")
    for c in node.claimable(task_id):
        click.echo(f"  claimable: round {c.round}, score {c.score / 1e6:.4f}, weight {c.weight}, "
                   f"{format_tokens(c.reward)}")
    totals = [total for _, total in epsilons.values() if total is not None]
    if totals:
        bound = node.task_bound(task)
        limit = "" if bound is None else f" (task bound {bound:g})"
        click.echo(f"  epsilon spent so far: {max(totals):.3f}{limit}")


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_id", type=int, required=True)
@data_options
def train(account, task_id: int, **options) -> None:
    """Train one round: reveal anything pending, fetch the global model, train locally, upload, commit, wait,
    reveal."""
    from client.privacy import BudgetExceeded

    node = _node(account, task_id=task_id, **options)
    _echo_settings(node.config)
    try:
        round_ = node.participate(task_id, echo=click.echo)
    except BudgetExceeded as exc:
        _fail(FedchainError(f"privacy budget reached: {exc}"))
    except (FedchainError, TimeoutError) as exc:
        _fail(exc)
    click.echo(f"revealed update for task {task_id} round {round_}")


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_id", type=int, required=True)
@data_options
def run(account, task_id: int, **options) -> None:
    """Follow the task round after round until it completes, claiming rewards as rounds finalize."""
    node = _node(account, task_id=task_id, **options)
    _echo_settings(node.config)
    try:
        node.follow(task_id, echo=click.echo)
    except (FedchainError, TimeoutError) as exc:
        _fail(exc)


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_id", type=int, required=True)
@click.option("--timeout", type=click.FloatRange(1), help="Give up waiting for a reveal phase after this long.")
@click.option("--store", envvar="FEDCHAIN_STORE", help=STORE_HELP)
def reveal(account, task_id: int, timeout: float | None, store: str | None) -> None:
    """Reveal every update this account committed to the task and has not revealed (from the journal), waiting
    for each round's reveal phase. For a trainer whose `client train` or `client run` stopped after committing."""
    node = _node(account, store)
    try:
        pending = node.pending_reveals(task_id)
        if not pending:
            click.echo(f"nothing to reveal in task {task_id}")
            return
        node.reveal_pending(task_id, echo=click.echo, timeout=timeout)
    except (FedchainError, TimeoutError) as exc:
        _fail(exc)


@client.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--task", "task_id", type=int, required=True)
@click.option("--store", envvar="FEDCHAIN_STORE", help=STORE_HELP)
def claim(account, task_id: int, store: str | None) -> None:
    """Claim the rewards of every finalized round of the task and release every bond that has settled."""
    node = _node(account, store)
    try:
        done = node.settle(task_id)
    except FedchainError as exc:
        _fail(exc)
    if done.claimed:
        click.echo(f"claimed {format_tokens(done.claimed)} (rounds {', '.join(map(str, done.claimed_rounds))})")
    if done.released:
        click.echo(f"released bonds of {format_tokens(done.released)} (rounds "
                   f"{', '.join(map(str, done.released_rounds))})")
    for round_, settled_at in done.waiting:
        click.echo(f"round {round_}: its bond is released after {time.ctime(settled_at)}")
    if not (done.claimed or done.released or done.waiting):
        click.echo("nothing to claim")

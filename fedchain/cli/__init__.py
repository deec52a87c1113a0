"""The face: the ``fedchain`` command. It is the only part that wires several roles together: it registers each
role's commands (sponsor, client, aggregator, pin follower, backend, dashboard) and runs the demos."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import click

from fedchain.config import DEFAULT_NETWORK, ensure_tool_paths


class FedchainGroup(click.Group):
    """A user error anywhere below (a ``FedchainError``, an unreachable or misbehaving content store, a wait that
    timed out) is one ``Error: ...`` line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from fedchain.errors import FedchainError
        from fedchain.store import ContentError

        try:
            return super().invoke(ctx)
        except (FedchainError, ContentError, TimeoutError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise click.ClickException(message) from exc


@click.group(cls=FedchainGroup)
@click.version_option(package_name="fedchain")
def main() -> None:
    """fedchain: federated learning with DP training, content-addressed models and on-chain rounds."""
    ensure_tool_paths()
    _ape_logs_to_stderr()


def _ape_logs_to_stderr() -> None:
    """ape echoes its logs (e.g. "INFO: Confirmed 0x...") on stdout; they go to stderr, so that stdout holds only
    a command's result (and ``--json`` output parses)."""
    import logging

    from ape.logging import ClickHandler

    to_stderr = {level: {"err": True} for level in ("error", "warning", "success", "info", "debug")}
    for handler in logging.getLogger("ape").handlers:
        if isinstance(handler, ClickHandler):
            handler.echo_kwargs = to_stderr


@main.command()
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--trainers", default=5, show_default=True, type=click.IntRange(1, 16))
@click.option("--dp/--no-dp", default=False, show_default=True, help="Train with DP-SGD inside the task's bound.")
@click.option("--epsilon", default=8.0, show_default=True, type=click.FloatRange(0.1, 100),
              help="Task-wide epsilon bound when --dp is on.")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--strategy", default="fedavg", show_default=True,
              help="Aggregation strategy id, e.g. fedavg or dp-fedavg (central DP).")
@click.option("--strategy-params", default="{}", show_default=True,
              help='Strategy parameters as a JSON object, e.g. \'{"noise_multiplier": 1.0, "clip_norm": 1.0}\'.')
@click.option("--governance", is_flag=True,
              help="The DAO owns the protocol: hand every role to a Governor + Timelock and change one parameter "
                   "by proposal (time travel on the local chain).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("--example", default=None, help="Run one of examples/ (e.g. breast_cancer, digits_cnn): its task "
              "file's architecture, rounds, trainers and strategy on its [example] dataset (--rounds and --trainers, "
              "when given, override the file's).")
@click.option("--backend", "backend_port", type=click.IntRange(1, 65535), default=None, is_flag=False,
              flag_value=8000, help="Also run `fedchain backend serve` (indexer + read API) on this port "
                                    "(default 8000); it keeps serving until Ctrl-C when stdin is a terminal.")
@click.option("--dashboard", "dashboard_port", type=click.IntRange(1, 65535), default=None, is_flag=False,
              flag_value=8080, help="Also run `fedchain dashboard` on this port (default 8080), with the backend "
                                    "beside it (--backend's port, default 8000); both keep serving until Ctrl-C when "
                                    "stdin is a terminal.")
def demo(rounds: int, trainers: int, dp: bool, epsilon: float, seed: int, strategy: str, strategy_params: str,
         governance: bool, as_json: bool, example: str | None, backend_port: int | None,
         dashboard_port: int | None) -> None:
    """Run a complete federated training on a local anvil chain (started if none is running)."""
    from rich.console import Console

    os.environ.setdefault("APE_FOUNDRY_HOST", "http://127.0.0.1:8545")
    from ape import networks
    from ape.logging import logger

    from fedchain.cli.demo import ARCHITECTURE, DP_ARCHITECTURE, DemoConfig, dump_json, run_demo

    logger.set_level("WARNING")
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 120)
    import json

    from aggregator.strategies import get_strategy

    try:
        params = json.loads(strategy_params)
        get_strategy(strategy, params)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise click.BadParameter(str(exc), param_hint="--strategy/--strategy-params") from exc
    from client.trainer import default_train_config

    # with --dp the trainers use the DP defaults (client.trainer.DP_DEFAULTS), as `fedchain client run` does
    cfg = DemoConfig(rounds=rounds, trainers=trainers, dp=dp, epsilon=epsilon, seed=seed, strategy=strategy,
                     strategy_params=params, governance=governance, train=default_train_config(dp),
                     architecture=DP_ARCHITECTURE if dp else ARCHITECTURE)
    if example is not None:
        cfg = _example_config(cfg, example)
        given = click.get_current_context().get_parameter_source
        if given("rounds") == click.core.ParameterSource.COMMANDLINE:
            cfg = replace(cfg, rounds=rounds)
        if given("trainers") == click.core.ParameterSource.COMMANDLINE:
            cfg = replace(cfg, trainers=trainers)
    if dashboard_port is not None and backend_port is None:
        backend_port = 8000
    with networks.parse_network_choice(DEFAULT_NETWORK):
        if backend_port is None:
            summary = run_demo(cfg, console)
        else:
            summary = _demo_with_backend(cfg, console, backend_port, run_demo, keep_serving=not as_json,
                                         dashboard_port=dashboard_port)
    if as_json:
        click.echo(dump_json(summary))


def _example_config(cfg, name: str):  # noqa: ANN001, ANN202 - DemoConfig, imported lazily
    """The demo's config for ``examples/NAME/task.toml``."""

    from fedchain.config import REPO_ROOT
    from fedchain.data import DATASETS
    from sponsor.taskfile import load_task_file

    root = REPO_ROOT / "examples"
    names = sorted(p.parent.name for p in root.glob("*/task.toml"))
    if name not in names:
        raise click.BadParameter(f"no example {name!r}; choose one of {', '.join(names)}", param_hint="--example")
    task = load_task_file(root / name / "task.toml")
    if task.example_dataset not in DATASETS:
        raise click.BadParameter(f"examples/{name}/task.toml names no bundled [example] dataset "
                                 f"({', '.join(DATASETS)})", param_hint="--example")
    from client.trainer import default_train_config

    dp = cfg.dp or task.epsilon is not None
    return replace(cfg, architecture=task.architecture, rounds=task.rounds, trainers=task.max_trainers,
                   strategy=task.strategy, strategy_params=task.strategy_params, dataset=task.example_dataset,
                   dp=dp, epsilon=task.epsilon or cfg.epsilon, train=default_train_config(dp))


def _demo_with_backend(cfg, console, port: int, run_demo, keep_serving: bool,  # noqa: ANN001
                       dashboard_port: int | None = None) -> dict:
    """The demo with `fedchain backend serve` (and `fedchain dashboard`) beside it (fedchain/cli/alongside.py)."""
    import contextlib

    from ape import networks

    from fedchain.cli.alongside import start_backend, start_dashboard, stop, wait_until_indexed, wait_until_serving

    proc = start_backend(port, networks.provider.uri)
    board = None if dashboard_port is None else start_dashboard(dashboard_port, networks.provider.uri,
                                                                f"http://127.0.0.1:{port}")
    try:
        summary = run_demo(cfg, console)
        summary["backend"] = wait_until_indexed(port)
        console.print(f"backend: {summary['backend']['url']} (OpenAPI at /schema), indexed "
                      f"{summary['backend']['contributions']} contributions")
        if board is not None:
            summary["dashboard"] = wait_until_serving(board, dashboard_port)
            console.print(f"dashboard: {summary['dashboard']['url']}")
        if keep_serving and sys.stdin.isatty():
            console.print("backend" + (" and dashboard keep" if board else " keeps") + " serving; Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):
                proc.wait()
        return summary
    finally:
        if board is not None:
            stop(board)
        stop(proc)


def _register_subcommands() -> None:
    from aggregator.cli import aggregator
    from backend.cli import backend
    from client.cli import client
    from fedchain.cli.assets import abi, dataset, model, token
    from fedchain.cli.chain import chain
    from frontend.cli import dashboard
    from pinning.cli import pin_follower
    from sponsor.cli import task
    from sponsor.retention_cli import retention

    main.add_command(chain)
    main.add_command(task)
    main.add_command(model)
    main.add_command(dataset)
    main.add_command(token)
    main.add_command(abi)
    main.add_command(client)
    main.add_command(aggregator)
    main.add_command(backend)
    main.add_command(pin_follower)
    main.add_command(retention)
    main.add_command(dashboard)


_register_subcommands()

"""`fedchain model`, `fedchain dataset`, `fedchain token` and `fedchain abi`: files in and out of the content
store (verified by digest), a model's accuracy on your data, FED balances and transfers, and the ABIs a
third-party client needs. Read commands take ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from ape.cli import ConnectedProviderCommand, account_option

from fedchain.data import DATASETS
from fedchain.errors import FedchainError
from sponsor.cli import json_option, open_content_store, store_option


def _echo(value: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True) if as_json else text)


def _evaluation_data(path: str) -> tuple[Any, Any]:
    """Labelled data from a ``.npz`` (``x``, ``y``) or a fedchain dataset file."""
    from fedchain.codec import CodecError, decode_dataset
    from fedchain.data import load_npz
    from sponsor.tasks import read_bounded

    if path.endswith(".npz"):
        try:
            return load_npz(path)
        except (OSError, ValueError) as exc:
            raise FedchainError(f"cannot use {path}: {exc}") from None
    try:
        return decode_dataset(read_bounded(Path(path), "the dataset file"))
    except CodecError as exc:
        raise FedchainError(f"{path} is neither a .npz file nor a fedchain dataset: {exc}") from None


# --- models ---------------------------------------------------------------------------------------------------
@click.group()
def model() -> None:
    """Models: publish one, download a task's (verified), evaluate one on your data."""


@model.command("publish")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--architecture", required=True, help="Its architecture id, e.g. mlp:64-32-10.")
@store_option
@json_option
def model_publish(path: str, architecture: str, store: str | None, as_json: bool) -> None:
    """Publish a model file (a fedchain model file or plain safetensors of the architecture's tensors): its CID
    and digest, for a task file or a task spec."""
    from fedchain.architectures import model_problem
    from fedchain.codec import decode_model
    from sponsor.publish import publish_bytes
    from sponsor.tasks import read_model_file

    blob = read_model_file(Path(path), architecture)
    problem = model_problem(architecture, decode_model(blob, max(len(blob), 1))[0])
    if problem is not None:
        raise FedchainError(f"{path} does not fit {architecture}: {problem}")
    published = publish_bytes(open_content_store(store), blob)
    out = {"cid": published.cid, "digest": "0x" + published.digest.hex(), "size": published.size,
           "architecture": architecture}
    _echo(out, as_json, f"published {path}: cid {out['cid']} digest {out['digest']} ({published.size} bytes)")


@model.command("get", cls=ConnectedProviderCommand)
@click.argument("task_id", type=click.IntRange(1))
@click.option("--round", "round_", type=click.IntRange(0), default=None,
              help="The model after round N (0: the initial model; default: the current global model).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write it.")
@store_option
@json_option
def model_get(task_id: int, round_: int | None, output: str, store: str | None, as_json: bool) -> None:
    """Download a task's model, checked against the digest the chain records, and write it to a file."""
    from fedchain.ape.chain import Fedchain
    from fedchain.codec import CodecError, decode_model
    from fedchain.config import settings
    from fedchain.protocol import Phase

    fed = Fedchain.connect()
    task = fed.task(task_id)  # UnknownTask: one line naming the valid ids
    if round_ is None:
        cid, digest, which = task.global_model_cid, task.global_model_digest, "the current global model"
    elif round_ == 0:
        cid, digest, which = task.spec.initial_model_cid, task.spec.initial_model_digest, "the initial model"
    else:
        rnd = fed.round(task_id, round_) if round_ <= task.current_round else None
        if rnd is None or rnd.phase != Phase.FINALIZED:
            state = "has not started" if rnd is None else f"is {rnd.phase.label}"
            raise FedchainError(f"round {round_} of task {task_id} {state}: only a finalized round has a model; "
                                f"`fedchain task rounds {task_id}` lists them")
        cid, digest, which = rnd.result_cid, rnd.result_digest, f"the model of round {round_}"
    limit = settings().max_model_bytes
    blob = open_content_store(store).get(cid, sha256=digest, max_bytes=limit)
    try:
        _, manifest = decode_model(blob, limit)
    except CodecError as exc:
        raise FedchainError(f"{which} ({cid}) is not a readable model file: {exc}") from None
    Path(output).write_bytes(blob)
    out = {"task_id": task_id, "round": round_, "cid": cid, "digest": "0x" + bytes(digest).hex(),
           "architecture": manifest.architecture, "path": output, "size": len(blob)}
    _echo(out, as_json, f"wrote {which} of task {task_id} ({manifest.architecture}, {cid}, digest verified) "
                        f"to {output}")


@model.command("eval")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Labelled data: a .npz with arrays x and y, or a fedchain dataset file.")
@json_option
def model_eval(path: str, data: str, as_json: bool) -> None:
    """A model file's accuracy and loss on your labelled data (the aggregator's own evaluation)."""
    from aggregator.scoring import evaluate
    from fedchain.architectures import dataset_problem, model_problem
    from fedchain.codec import CodecError, decode_model
    from sponsor.tasks import read_bounded

    blob = read_bounded(Path(path), "the model file")
    try:
        tensors, manifest = decode_model(blob, max(len(blob), 1))
    except CodecError as exc:
        raise FedchainError(f"{path} is not a fedchain model file: {exc}") from None
    arch = manifest.architecture
    problem = model_problem(arch, tensors)
    x, y = _evaluation_data(data)
    problem = problem or dataset_problem(arch, x, y)
    if problem is not None:
        raise FedchainError(f"cannot evaluate {path} ({arch}) on {data}: {problem}")
    result = evaluate(arch, tensors, x, y)
    out = {"architecture": arch, "rows": int(len(y)), "accuracy": result.accuracy, "loss": result.loss}
    _echo(out, as_json, f"{path} ({arch}) on {data}: accuracy {result.accuracy:.2%}, loss {result.loss:.4f} "
                        f"over {len(y)} rows")


# --- datasets -------------------------------------------------------------------------------------------------
@click.group()
def dataset() -> None:
    """Datasets: publish a validation set."""


@dataset.command("publish")
@click.argument("path", type=click.Path(dir_okay=False))
@store_option
@json_option
def dataset_publish(path: str, store: str | None, as_json: bool) -> None:
    """Publish a labelled .npz (arrays x and y) as a fedchain dataset file: its CID and digest."""
    from fedchain.data import load_npz
    from sponsor.publish import publish_dataset

    try:
        x, y = load_npz(path)
    except (OSError, ValueError) as exc:
        raise FedchainError(f"cannot use {path}: {exc}") from None
    if len(y) == 0:
        raise FedchainError(f"{path} has no rows")
    published = publish_dataset(open_content_store(store), x, y, name=Path(path).stem)
    out = {"cid": published.cid, "digest": "0x" + published.digest.hex(), "size": published.size,
           "rows": int(len(y)), "features": int(x.shape[1])}
    _echo(out, as_json, f"published {path} ({len(y)} rows x {x.shape[1]} features): cid {out['cid']} "
                        f"digest {out['digest']}")


@dataset.command("split")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("-o", "--output", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory for validation.npz, test.npz and trainer-1.npz ... trainer-N.npz.")
@click.option("--trainers", default=3, show_default=True, type=click.IntRange(1, 64))
@click.option("--alpha", default=0.5, show_default=True, type=click.FloatRange(0.01, 1000),
              help="Dirichlet concentration of the trainers' label skew (large: nearly IID).")
@click.option("--seed", default=0, show_default=True, type=int)
def dataset_split(name: str, directory: str, trainers: int, alpha: float, seed: int) -> None:
    """Split a bundled scikit-learn dataset for a walkthrough: the sponsor's validation set, a held-out test set,
    and one non-IID training shard per trainer (the same split `fedchain client run --data NAME --shard` uses)."""
    import numpy as np

    from client.datasets import TEST_FRACTION, VALIDATION_FRACTION
    from fedchain.data import dirichlet_partition, load_dataset, split_holdout

    x, y = load_dataset(name)
    train, validation, test = split_holdout(x, y, VALIDATION_FRACTION, TEST_FRACTION, seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = {"validation.npz": validation, "test.npz": test}
    for i, part in enumerate(dirichlet_partition(train[1], trainers, alpha, seed), start=1):
        files[f"trainer-{i}.npz"] = (train[0][part], train[1][part])
    for file, (xs, ys) in files.items():
        np.savez(out / file, x=xs, y=ys)
        click.echo(f"{out / file}: {len(ys)} rows x {xs.shape[1]} features, {len(np.unique(ys))} classes")


# --- tokens ---------------------------------------------------------------------------------------------------
@click.group()
def token() -> None:
    """FED: balances (with stake) and transfers."""


@token.command("balance", cls=ConnectedProviderCommand)
@click.argument("address")
@json_option
def token_balance(address: str, as_json: bool) -> None:
    """ADDRESS's FED: in the wallet, staked, and of the stake what is free (not reserved as bonds)."""
    from fedchain.ape.chain import Fedchain
    from fedchain.protocol import format_tokens

    fed = Fedchain.connect()
    address = _address(address)
    wallet, staked = int(fed.token.balanceOf(address)), int(fed.staking.stakeOf(address))
    free = fed.free_stake(address)
    out = {"address": address, "balance": format_tokens(wallet), "staked": format_tokens(staked),
           "free_stake": format_tokens(free), "balance_wei": str(wallet), "staked_wei": str(staked)}
    _echo(out, as_json, f"{address}: {format_tokens(wallet)} in the wallet, {format_tokens(staked)} staked "
                        f"({format_tokens(free)} free)")


@token.command("transfer", cls=ConnectedProviderCommand)
@account_option()
@click.argument("to")
@click.argument("amount")
def token_transfer(account: Any, to: str, amount: str) -> None:
    """Send AMOUNT FED (e.g. 100 or 0.5) from --account to TO."""
    from fedchain.ape.chain import Fedchain
    from fedchain.protocol import format_tokens, parse_tokens

    try:
        wei = parse_tokens(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None
    fed = Fedchain.connect()
    to = _address(to)
    balance = int(fed.token.balanceOf(account.address))
    if balance < wei:
        raise FedchainError(f"{account.address} holds {format_tokens(balance)}, cannot send {format_tokens(wei)}")
    fed.send("transfer", fed.token.transfer, to, wei, sender=account)
    click.echo(f"sent {format_tokens(wei)} to {to}; {account.address} holds "
               f"{format_tokens(int(fed.token.balanceOf(account.address)))}")


def _address(value: str) -> str:
    """A checksummed address from an address or an ape account alias."""
    from eth_utils import is_address, to_checksum_address

    if is_address(value):
        return to_checksum_address(value)
    from ape import accounts

    try:
        return str(accounts.load(value).address)
    except Exception:  # noqa: BLE001 - ape raises several kinds for an unknown alias
        raise FedchainError(f"{value!r} is neither an address nor an account alias (`ape accounts list`)") from None


# --- ABIs -----------------------------------------------------------------------------------------------------
@click.group()
def abi() -> None:
    """The contracts' ABIs, for clients written without fedchain."""


@abi.command("export")
@click.option("-o", "--output", "directory", default="abi", show_default=True,
              type=click.Path(file_okay=False), help="Directory to write NAME.json files (and deployments.json).")
def abi_export(directory: str) -> None:
    """Write every contract's ABI as NAME.json and a copy of the deployment record (addresses per network)."""
    from fedchain.config import settings
    from fedchain.web3chain import load_abis

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    abis = load_abis()
    for name, entries in sorted(abis.items()):
        (out / f"{name}.json").write_text(json.dumps(entries, indent=2) + "\n")
    record = settings().deployments_file
    if record.exists():
        (out / "deployments.json").write_text(record.read_text())
    click.echo(f"wrote {len(abis)} ABIs to {out}" + (" and deployments.json" if record.exists() else
                                                     " (no deployments.json yet: deploy first)"))

"""Creating a task from its spec (after checking what it references), and reclaiming its unallocated budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedchain.ape.chain import Fedchain
from fedchain.architectures import dataset_problem, initial_tensors, model_problem, parse_architecture
from fedchain.cid import cid_for_bytes
from fedchain.codec import CodecError, ModelManifest, decode_dataset, decode_model, encode_dataset, encode_model, sha256
from fedchain.config import settings
from fedchain.data import load_npz
from fedchain.errors import FedchainError
from fedchain.protocol import format_tokens
from fedchain.sealed import is_sealed, read_sealed, seal_dataset
from fedchain.store import ContentError, ContentStore, StoreUnavailable
from fedchain.taskspec import TaskSpec
from sponsor.taskfile import TaskFile


def blob_problem(spec: TaskSpec, what: str, blob: bytes, max_bytes: int, keys: list[bytes] | None = None) -> str | None:
    """What is wrong with the task's initial model (``what`` = "initial model") or validation set, or None. A
    sealed validation set is checked section by section when its ``keys`` are given, else for its form only."""
    try:
        if what == "initial model":
            tensors, _ = decode_model(blob, max_bytes)
            return model_problem(spec.architecture, tensors)
        if is_sealed(blob, max_bytes):
            sealed = read_sealed(blob, max_bytes)
            for round_, key in enumerate(keys or [], start=1):
                problem = dataset_problem(spec.architecture, *sealed.open(round_, key, max_bytes))
                if problem is not None:
                    return f"section {round_ - 1}: {problem}"
            return None
        return dataset_problem(spec.architecture, *decode_dataset(blob, max_bytes))
    except (CodecError, ValueError) as exc:
        return str(exc)


def spec_problem(spec: TaskSpec) -> str | None:
    """What makes a spec unusable before any file is looked at (its architecture, its strategy parameters)."""
    try:
        parse_architecture(spec.architecture)
        spec.strategy_config()
        spec.max_update_ratio()
        spec.update_dtype()
        spec.proximal_mu()
    except ValueError as exc:
        return str(exc)
    return None


def input_limit(what: str) -> int:
    """The size bound aggregators apply to a task input: ``FEDCHAIN_MAX_DATASET_BYTES`` for the validation set
    (read into memory), ``FEDCHAIN_MAX_MODEL_BYTES`` for models."""
    config = settings()
    return config.max_dataset_bytes if what == "validation set" else config.max_model_bytes


def read_bounded(path: Path, what: str) -> bytes:
    """A local file of at most ``FEDCHAIN_MAX_MODEL_BYTES``; ``FedchainError`` naming ``what`` otherwise."""
    limit = settings().max_model_bytes
    try:
        if path.stat().st_size > limit:
            raise FedchainError(f"{what} {path} is over the {limit}-byte limit (FEDCHAIN_MAX_MODEL_BYTES)")
        return path.read_bytes()
    except OSError as exc:
        raise FedchainError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def check_task_inputs(store: ContentStore, spec: TaskSpec, max_bytes: int | None = None) -> None:
    """``FedchainError`` saying what to fix unless the task could be served: its architecture parses, its
    initial model and validation set are in the store under their CIDs and digests, the model holds the
    architecture's finite float32 tensors, the validation set fits it, and its strategy parameters decode.
    ``StoreUnavailable`` passes through (try again when the node is back)."""
    problem = spec_problem(spec)
    if problem is not None:
        raise FedchainError(f"the task spec cannot be used: {problem}")
    for what, cid, digest in (("initial model", spec.initial_model_cid, spec.initial_model_digest),
                              ("validation set", spec.validation_cid, spec.validation_digest)):
        limit = max_bytes or input_limit(what)
        try:
            problem = blob_problem(spec, what, store.get(cid, sha256=digest, max_bytes=limit), limit)
        except StoreUnavailable:
            raise
        except (ContentError, ValueError) as exc:  # ValueError: not a CID
            problem = str(exc)
        if problem is not None:
            raise FedchainError(f"the task's {what} ({cid}) cannot be used: {problem}; publish a fitting one "
                                "and create the task with its CID")


def task_file_blobs(task: TaskFile) -> tuple[bytes, bytes]:
    """The initial model and validation set files a task file names, encoded as fedchain files: the model from
    ``init_seed`` or a model file (a fedchain model file, or plain safetensors of the architecture's tensors),
    the validation set from a ``.npz`` with ``x`` and ``y``. ``FedchainError`` for a file that cannot be read."""
    try:
        parse_architecture(task.architecture)
    except ValueError as exc:
        raise FedchainError(f"{task.path}: [task] architecture: {exc}") from None
    if task.model.seed is not None:
        model = encode_model(initial_tensors(task.architecture, task.model.seed),
                             ModelManifest(kind="initial", architecture=task.architecture))
    else:
        model = read_model_file(Path(task.model.file), task.architecture)
    try:
        x, y = load_npz(task.validation)
    except (OSError, ValueError) as exc:
        raise FedchainError(f"the validation set {task.validation} cannot be read: {exc}") from None
    return model, encode_dataset(x, y, name=task.validation.stem)


def read_model_file(path: Path, architecture: str) -> bytes:
    """A model file as a fedchain model file: as it is, or plain safetensors given the initial manifest."""
    import safetensors.numpy

    limit = settings().max_model_bytes
    blob = read_bounded(path, "the model file")
    try:
        _, manifest = decode_model(blob, limit)
    except CodecError as exc:
        if exc.code != "bad_manifest":
            raise FedchainError(f"the model file {path} cannot be used: {exc}") from None
    else:
        if manifest.architecture != architecture or manifest.kind == "dataset":
            raise FedchainError(f"the model file {path} is a {manifest.kind} file of {manifest.architecture!r}, "
                                f"not a model of {architecture}")
        return blob  # a fedchain model file as it is
    try:
        tensors = safetensors.numpy.load(blob)
    except Exception as exc:  # noqa: BLE001 - safetensors' own errors
        raise FedchainError(f"the model file {path} is neither a fedchain model file nor safetensors: {exc}") from None
    return encode_model({k: np.asarray(v, dtype=np.float32) for k, v in sorted(tensors.items())},
                        ModelManifest(kind="initial", architecture=architecture))


def resolve_task(task: TaskFile) -> tuple[TaskSpec, bytes, bytes, list[bytes]]:
    """The task file's ``TaskSpec`` with the CIDs and digests its files will have, the two files and, for a
    sealed validation set, its fresh section keys (secret: ``sponsor.keys``); nothing is stored.
    ``FedchainError`` when the model or validation set does not fit the architecture."""
    model, validation = task_file_blobs(task)
    keys: list[bytes] = []
    if task.sealed_sections:
        x, y = decode_dataset(validation)
        validation, keys = seal_dataset(x, y, task.validation.stem, task.sealed_sections)
    spec = task.spec(cid_for_bytes(model), sha256(model), cid_for_bytes(validation), sha256(validation))
    for what, blob, source in (("initial model", model, task.model.file or f"init_seed {task.model.seed}"),
                               ("validation set", validation, task.validation)):
        problem = blob_problem(spec, what, blob, input_limit(what), keys)  # what aggregators and trainers accept
        if problem is not None:
            raise FedchainError(f"the {what} ({source}) does not fit {spec.architecture}: {problem}")
    problem = spec_problem(spec)  # the architecture already parsed (task_file_blobs)
    if problem is not None:
        raise FedchainError(f"{task.path}: [task] strategy_params: {problem}")
    return spec, model, validation, keys


def simulate_create(fed: Fedchain, sponsor: Any, spec: TaskSpec) -> str | None:
    """Why ``createTask(spec)`` from ``sponsor`` would revert now (``Fedchain.preflight``: the contract's own
    bounds, the DAO's policy floors, a pause), or None. A missing budget approval is not a problem (``create_task``
    approves first); a balance below the budget is."""
    balance = int(fed.token.balanceOf(sponsor.address))
    if balance < spec.reward_budget:
        return (f"the sponsor {sponsor.address} holds {format_tokens(balance)}, the budget is "
                f"{format_tokens(spec.reward_budget)}")
    _, data = fed.preflight(fed.tasks.createTask, (spec.to_chain(),), sponsor)
    if data is None:
        return None
    decoder = fed.revert_decoder()
    if decoder.decode(data)[1] == "ERC20InsufficientAllowance":
        return None  # everything before the budget's transfer passed
    return decoder.explain(data)


def create_task(fed: Fedchain, sponsor: Any, spec: TaskSpec, store: ContentStore) -> int:
    """Check what the task references (``check_task_inputs``), approve the budget and create the task; returns
    its id. The sponsor must hold the budget."""
    check_task_inputs(store, spec)
    balance = int(fed.token.balanceOf(sponsor.address))
    if balance < spec.reward_budget:
        raise FedchainError(f"the sponsor holds {format_tokens(balance)}, the budget is "
                            f"{format_tokens(spec.reward_budget)}")
    allowance = int(fed.token.allowance(sponsor.address, fed.tasks.address))
    if allowance < spec.reward_budget:
        fed.send("approve the budget", fed.token.approve, fed.tasks.address, spec.reward_budget, sender=sponsor)
    receipt = fed.send("create task", fed.tasks.createTask, spec.to_chain(), sender=sponsor)
    return int(next(iter(receipt.events.filter(fed.tasks.TaskCreated))).taskId)


def reclaim(fed: Fedchain, sponsor: Any, task_id: int) -> int:
    """Take back what no round of a completed task allocated (from the RewardVault); returns the amount."""
    before = int(fed.token.balanceOf(sponsor.address))
    fed.send("reclaim", fed.vault.reclaimUnallocated, task_id, sender=sponsor)
    return int(fed.token.balanceOf(sponsor.address)) - before

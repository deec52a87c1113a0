"""One round's result, computed from the chain and the content store alone: identical on every honest aggregator.

``RoundComputer.compute`` fetches each revealed update once, validates it (reason codes), rejects free riders,
aggregates with the task's strategy, scores every trainer, writes the result file and its score tree. The result
is kept keyed by everything the chain says about the round, so the reveal reuses the commit's result; after a
restart it is recomputed, byte for byte the same.

Updates are never held in memory whole: each is a file (the local store's own, or a download into the computer's
scratch directory) read one tensor or one chunk at a time (``fedchain.modelfile``), and every
file is bounded by the task's on-chain ``maxModelBytes``, its architecture's size and the node's
``FEDCHAIN_MAX_MODEL_BYTES``. Replays and near
copies are found through count sketches keyed by the round (``aggregator.fingerprints``); the structurally valid
updates of a round are listed for the checks of the next ``REPLAY_LOOKBACK_ROUNDS`` rounds, which sketch them
again under their own keys (listed again from the chain after a restart).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.contribution import contributions
from aggregator.fingerprints import round_sketch_key, sketches
from aggregator.freeriders import REPLAY_LOOKBACK_ROUNDS, FreeRiderCheck, KnownUpdate
from aggregator.scoring import evaluate, quantize_micro, quantize_ppm
from aggregator.strategies import Aggregation, ClientUpdate, RoundContext, Strategy, ValidationSet, get_strategy
from aggregator.strategies.central_dp import round_seed
from aggregator.validation import RejectedUpdate, check_change, validate_update_file
from aggregator.weights import attested_weights
from fedchain.architectures import check_dataset, expected_shapes, model_problem
from fedchain.chainview import ChainReader, TaskView
from fedchain.codec import CodecError, ModelManifest, decode_dataset
from fedchain.commitments import AggregateResult
from fedchain.config import settings
from fedchain.errors import FedchainError
from fedchain.manifests import AggregateDetails, Rejection, ServerStateRef, aggregate_details, update_privacy
from fedchain.modelfile import LazyTensors, read_stored_model, write_model_file
from fedchain.protocol import Phase
from fedchain.sealed import SealedDataset, is_sealed, read_sealed, section_of
from fedchain.store import ContentError, ContentStore, StoreUnavailable
from fedchain.store.base import ScratchDir, file_sha256

log = logging.getLogger(__name__)

Reveal = tuple[str, str, bytes, int]  # (trainer lower-case, cid, digest, samples), in commit order


class UnservableTask(FedchainError):
    """The task's own inputs (its sponsor's validation set or initial model) cannot be used: no result can be
    computed for it, so the aggregator leaves it (its rounds fail ``NoQuorum``) instead of crashing."""


class ValidationPending(FedchainError):
    """The round's sealed validation section cannot be opened yet: its sponsor has not published a key that
    opens it (``fedchain.sealed``). The aggregator waits; without the key the round fails ``NoQuorum``."""


@dataclass(frozen=True)
class RoundInputs:
    """Everything the chain says that a round's result depends on; equal inputs give an equal result."""

    task_id: int
    round: int
    global_model_cid: str
    global_model_digest: bytes
    reveals: tuple[Reveal, ...]


@dataclass(frozen=True)
class RoundComputation:
    """The deterministic outcome of one round."""

    inputs: RoundInputs
    result: AggregateResult
    result_file: Path  # the result's bytes, kept while this is the task's last computation
    details: AggregateDetails
    scratch: ScratchDir | None = field(default=None, compare=False, repr=False)  # keeps result_file's directory

    @property
    def blob(self) -> bytes:
        """The result file's bytes (read from disk: a large model's result is never held in memory whole)."""
        return self.result_file.read_bytes()

    @property
    def scores(self) -> dict[str, int]:
        return self.details.scores

    @property
    def rejected(self) -> dict[str, Rejection]:
        return self.details.rejected


class RoundComputer:
    """Computes rounds for one aggregator: a chain reader, a content store and a size bound for files."""

    def __init__(self, reader: ChainReader, store: ContentStore, max_bytes: int,
                 central_dp_secret: bytes | None = None, scratch: Path | None = None) -> None:
        self.reader = reader
        self.store = store
        self.max_bytes = max_bytes
        self.dataset_bytes = min(max_bytes, settings().max_dataset_bytes)  # validation sets are read into memory
        self.central_dp_secret = central_dp_secret  # shared by the committee off chain; never logged
        # downloads and results; a temporary directory is removed after its last use
        self.scratch = ScratchDir(scratch, prefix="fedchain-rounds-")
        self._downloads = self.scratch.path / "downloads"
        self._results = self.scratch.path / "results"
        for directory in (self._downloads, self._results):
            directory.mkdir(parents=True, exist_ok=True)
        self._validation: dict[bytes, ValidationSet | SealedDataset] = {}  # by the file's digest
        self._sections: dict[tuple[bytes, int], ValidationSet] = {}  # (sealed file digest, section) -> rows
        self._validated: dict[tuple[int, int], list[Reveal]] = {}  # structurally valid updates of a round
        self._last: dict[int, RoundComputation] = {}
        self.compute_seconds = 0.0  # time spent computing rounds so far (the demo's per-round time split)

    # --- inputs -----------------------------------------------------------------------------------------
    def _fetch(self, cid: str, digest: bytes) -> bytes:
        return self.store.get(cid, sha256=digest, max_bytes=self.dataset_bytes)

    def model_bound(self, task: TaskView) -> int:
        """The largest model file of the task this node reads (``TaskSpec.file_bound``)."""
        return task.spec.file_bound(self.max_bytes)

    def _model_file(self, cid: str, digest: bytes | None, bound: int) -> Path:
        return self.store.verified_file(cid, sha256=digest, max_bytes=bound, scratch=self._downloads)

    def _read_model(self, cid: str, digest: bytes | None, bound: int) -> tuple[dict[str, np.ndarray], ModelManifest]:
        """A model file's tensors in memory (the global model and the like), read tensor by tensor."""
        return read_stored_model(self.store, cid, digest, bound, self._downloads)

    def inputs(self, task: TaskView, round_: int) -> RoundInputs:
        revealed = self.reader.round_reveals(task.task_id, round_)
        reveals: list[Reveal] = []
        for trainer in self.reader.round_trainers(task.task_id, round_):  # commit order
            r = revealed.get(trainer.lower())
            if r is not None:
                reveals.append((trainer.lower(), r.cid, r.update_digest, r.num_samples))
        return RoundInputs(task.task_id, round_, task.global_model_cid, task.global_model_digest, tuple(reveals))

    def validation_set(self, task: TaskView, round_: int) -> ValidationSet:
        """The rows round ``round_`` is scored on: the task's validation set, or its sealed section for the
        round once the sponsor's key is on chain (``ValidationPending`` until then)."""
        spec = task.spec
        if spec.validation_digest not in self._validation:
            try:
                blob = self._fetch(spec.validation_cid, spec.validation_digest)
                if is_sealed(blob, self.dataset_bytes):
                    self._validation[spec.validation_digest] = read_sealed(blob, self.dataset_bytes)
                else:
                    x, y = decode_dataset(blob, self.dataset_bytes)
                    check_dataset(spec.architecture, x, y)
                    self._validation[spec.validation_digest] = ValidationSet(spec.architecture, x, y)
            except StoreUnavailable:
                raise
            except (CodecError, ValueError) as exc:  # ValueError: not a CID, or the set does not fit the model
                raise UnservableTask(f"task {task.task_id}: the sponsor's validation set cannot be used: {exc}") \
                    from exc
        found = self._validation[spec.validation_digest]
        if isinstance(found, ValidationSet):
            return found
        section = (spec.validation_digest, section_of(round_, found.sections))
        if section not in self._sections:
            key = self.reader.validation_key(task.task_id, round_)
            if key is None:
                raise ValidationPending(f"task {task.task_id} round {round_}: waiting for the sponsor to publish "
                                        "the key of its sealed validation set")
            try:
                x, y = found.open(round_, key, self.dataset_bytes)
                check_dataset(spec.architecture, x, y)
            except (CodecError, ValueError) as exc:  # a wrong key, or a section that is not a fitting dataset
                raise ValidationPending(f"task {task.task_id} round {round_}: the sponsor's sealed validation set "
                                        f"cannot be opened: {exc}; the round cannot be scored") from exc
            self._sections[section] = ValidationSet(spec.architecture, x, y)
        return self._sections[section]

    def global_model(self, task: TaskView) -> tuple[dict[str, np.ndarray], ModelManifest]:
        """The task's current global model; ``UnservableTask`` when it is not a model of the task's architecture
        (only a sponsor's initial model can be: every later one is a committee's result)."""
        try:
            bound = self.model_bound(task)
            tensors, manifest = self._read_model(task.global_model_cid, task.global_model_digest, bound)
        except StoreUnavailable:
            raise
        except (CodecError, ValueError) as exc:
            raise UnservableTask(f"task {task.task_id}: its global model cannot be read: {exc}") from exc
        problem = model_problem(task.spec.architecture, tensors)
        if problem is not None:
            raise UnservableTask(f"task {task.task_id}: its global model cannot be used: {problem}")
        return tensors, manifest

    def previous_global(self, task: TaskView, global_manifest: ModelManifest) -> dict[str, np.ndarray] | None:
        """The global model before the current one (its manifest's parent, by CID), for the public directions;
        None in round 1, or when it is no longer stored (a retention policy may drop it: then for everybody)."""
        parent = global_manifest.parent_cid if global_manifest.kind == "aggregate" else None
        if not parent:
            return None
        try:
            tensors, _ = self._read_model(parent, None, self.model_bound(task))
        except StoreUnavailable:
            raise
        except (ContentError, CodecError, ValueError, OSError):
            return None
        return tensors if model_problem(task.spec.architecture, tensors) is None else None

    def _validate(self, task: TaskView, round_: int, reveal: Reveal, shapes: dict[str, tuple[int, ...]]
                  ) -> tuple[LazyTensors, ModelManifest]:
        trainer, cid, digest, samples = reveal
        bound = self.model_bound(task)
        try:
            path = self._model_file(cid, digest, bound)
        except StoreUnavailable:
            raise  # our store is down, not the trainer's fault: never a rejection (results must not depend on it)
        except ContentError as exc:
            raise RejectedUpdate(type(exc).__name__, str(exc)) from exc
        except ValueError as exc:  # the revealed CID is not a CID
            raise RejectedUpdate("bad_cid", f"the revealed CID cannot be read: {exc}") from exc
        return validate_update_file(path, shapes, bound, task.spec.update_dtype())

    def earlier_updates(self, task: TaskView, round_: int, shapes: dict[str, tuple[int, ...]], key: bytes
                        ) -> list[KnownUpdate]:
        """The structurally valid updates revealed in the previous rounds (replay detection), sketched under this
        round's ``key``: listed from memory or (after a restart) from the chain, read from the store."""
        earlier: list[tuple[int, LazyTensors, str]] = []
        for past in range(max(1, round_ - REPLAY_LOOKBACK_ROUNDS), round_):
            listed = self._validated.get((task.task_id, past))
            seen = []
            for reveal in self.inputs(task, past).reveals if listed is None else listed:
                try:
                    tensors, _ = self._validate(task, past, reveal, shapes)
                except RejectedUpdate:
                    continue  # a broken old update cannot be replayed (nor one gone from every store since)
                seen.append(reveal)
                earlier.append((past, tensors, reveal[0]))
            self._validated.setdefault((task.task_id, past), seen)
        found = sketches(key, [tensors for _, tensors, _ in earlier])
        return [KnownUpdate(trainer, past, sketch) for (past, _, trainer), sketch in zip(earlier, found, strict=True)]

    def sketch_key(self, inputs: RoundInputs) -> bytes:
        """The round's sketch key: a hash of the deployment, the round and every revealed update's digest in
        commit order, which nobody knows before the last reveal (``aggregator.fingerprints``)."""
        d = self.reader.deployment
        return round_sketch_key(int(d.chain_id), d.tasks, inputs.task_id, inputs.round, inputs.global_model_digest,
                                [(trainer, digest) for trainer, _, digest, _ in inputs.reveals])

    def _check_manifest(self, task: TaskView, round_: int, reveal: Reveal, manifest: ModelManifest
                        ) -> dict[str, Any]:
        trainer, _, _, samples = reveal
        expected = (task.task_id, round_, trainer, task.global_model_cid, samples)
        found = (manifest.task_id, manifest.round, manifest.trainer.lower(), manifest.parent_cid, manifest.num_samples)
        if found != expected:
            raise RejectedUpdate("wrong_manifest", f"manifest says {found}, chain says {expected}")
        bound = task.spec.dp_epsilon
        if bound and (manifest.epsilon_spent is None or manifest.epsilon_spent > bound):
            raise RejectedUpdate("privacy_bound", f"epsilon {manifest.epsilon_spent} exceeds the task bound {bound}")
        try:
            return update_privacy(manifest)
        except CodecError as exc:
            raise RejectedUpdate(exc.code, str(exc)) from exc

    def round_seed(self, task_id: int, round_: int) -> bytes:
        """Central DP's noise seed: from the block whose ``advance`` closed the round's reveal phase (and the
        committee's secret, when it shares one)."""
        event = self.reader.phase_reached_block(task_id, round_, Phase.AGGREGATOR_COMMIT)
        d = self.reader.deployment
        return round_seed(int(d.chain_id), d.tasks, task_id, round_, bytes.fromhex(event.block_hash[2:]),
                          self.central_dp_secret)

    def round_context(self, task: TaskView, round_: int, strategy: Strategy, global_manifest: ModelManifest,
                      rejected: int) -> RoundContext:
        """What the strategy reads of the round: only the parts it declares it uses are fetched."""
        previous = aggregate_details(global_manifest) if global_manifest.kind == "aggregate" else AggregateDetails()
        seed, released = b"", 1
        if strategy.uses_round_seed:
            seed = self.round_seed(task.task_id, round_)
            released = max(1, self.reader.released_rounds(task.task_id, round_))
        validation = self.validation_set(task, round_) if strategy.uses_validation else None
        state = None
        ref = previous.server_state
        if strategy.uses_server_state and ref is not None and ref.strategy == strategy.name:
            state, _ = self._read_model(ref.cid, ref.sha256, self.max_bytes)
        return RoundContext(task.task_id, round_, seed, global_manifest.details if global_manifest.kind == "aggregate"
                            else {}, released, validation, rejected, state)

    # --- the round --------------------------------------------------------------------------------------
    def compute(self, task_id: int, round_: int) -> RoundComputation:
        """The round's result: reused when the chain says what it said last time, otherwise computed."""
        task = self.reader.task(task_id)
        inputs = self.inputs(task, round_)
        last = self._last.get(task_id)
        if last is not None and last.inputs == inputs:
            return last
        self.validation_set(task, round_)  # a sealed set's key first: nothing is fetched before it is there
        started = time.monotonic()
        try:
            computation = self._compute(task, round_, inputs)
        finally:  # downloaded updates are read again from the store when needed; results stay while they are last
            shutil.rmtree(self._downloads, ignore_errors=True)
            self._downloads.mkdir(parents=True, exist_ok=True)
        self.compute_seconds += time.monotonic() - started
        if last is not None and last.result_file != computation.result_file:
            last.result_file.unlink(missing_ok=True)
        self._last[task_id] = computation
        for key in [k for k in self._validated if k[0] == task_id and k[1] < round_ - REPLAY_LOOKBACK_ROUNDS]:
            del self._validated[key]
        return computation

    def _compute(self, task: TaskView, round_: int, inputs: RoundInputs) -> RoundComputation:
        spec = task.spec
        try:  # the sponsor's parameters: bad ones make the task unservable, not the aggregator crash
            shapes = expected_shapes(spec.architecture)
            max_ratio = spec.max_update_ratio()
            spec.update_dtype()  # the transport, checked here once: an unknown one makes the task unservable
            strategy = get_strategy(spec.strategy, spec.strategy_config())
        except ValueError as exc:
            raise UnservableTask(f"task {task.task_id}: its parameters cannot be used: {exc}") from exc
        global_tensors, global_manifest = self.global_model(task)
        previous = self.previous_global(task, global_manifest)
        key = self.sketch_key(inputs)
        free_riders = FreeRiderCheck(global_tensors, self.earlier_updates(task, round_, shapes, key), previous,
                                     key=key)
        accepted: list[ClientUpdate] = []
        privacy: dict[str, Any] = {}
        rejected: dict[str, Rejection] = {}
        valid: list[tuple[Reveal, LazyTensors, ModelManifest]] = []

        def reject(trainer: str, exc: RejectedUpdate) -> None:
            rejected[trainer] = Rejection.bounded(exc.code, exc.message)
            log.warning("round %s: rejected %s: %s (%s)", round_, trainer, rejected[trainer].code,
                        rejected[trainer].message)

        for reveal in inputs.reveals:
            try:
                valid.append((reveal, *self._validate(task, round_, reveal, shapes)))
            except RejectedUpdate as exc:
                reject(reveal[0], exc)
        self._validated[(task.task_id, round_)] = [reveal for reveal, _, _ in valid]
        found = sketches(key, [tensors for _, tensors, _ in valid])  # one pass over the coordinates of all
        for (reveal, tensors, manifest), sketch in zip(valid, found, strict=True):  # commit order
            trainer = reveal[0]
            try:
                report = self._check_manifest(task, round_, reveal, manifest)
                check_change(tensors, global_tensors, max_ratio)
                free_riders.check(trainer, round_, tensors, sketch)
            except RejectedUpdate as exc:
                reject(trainer, exc)
                continue
            privacy[trainer] = report
            accepted.append(ClientUpdate(trainer, tensors, reveal[3]))
        weights = attested_weights({u.trainer: u.num_samples for u in accepted}, spec.max_samples)
        accepted = [replace(u, num_samples=weights[u.trainer]) for u in accepted]
        context = self.round_context(task, round_, strategy, global_manifest, len(rejected))
        if accepted:
            aggregation = strategy.aggregate(global_tensors, accepted, context)
        else:
            aggregation = Aggregation(global_tensors, strategy.report_without_updates(context))
        state_ref = self._store_state(spec.architecture, strategy, aggregation)
        if state_ref is None and not accepted and global_manifest.kind == "aggregate":
            state_ref = aggregate_details(global_manifest).server_state  # the model did not move: nor does the state
        validation = self.validation_set(task, round_)
        breakdown = contributions(spec.architecture, global_tensors, accepted, validation.x, validation.y, previous)
        scores = {t: c.score for t, c in breakdown.items()} | {t: 0 for t in rejected}
        quality = evaluate(spec.architecture, aggregation.tensors, validation.x, validation.y)
        accuracy_ppm, loss_micro = quantize_ppm(quality.accuracy), quantize_micro(quality.loss)
        samples = {u.trainer: u.num_samples for u in accepted}
        details = AggregateDetails(
            strategy=strategy.name, scores=scores, weights=weights | {t: 0 for t in rejected}, rejected=rejected,
            contributions={t: breakdown[t].as_dict() for t in breakdown},
            privacy={t: privacy[t] for t in samples if t in privacy}, server_state=state_ref, report=aggregation.report)
        manifest = ModelManifest(
            kind="aggregate", architecture=spec.architecture, parent_cid=task.global_model_cid, task_id=task.task_id,
            round=round_, num_samples=sum(samples.values()),
            metrics={"accuracy": accuracy_ppm / 1e6, "loss": loss_micro / 1e6}, details=details.to_json())
        path = write_model_file(aggregation.tensors, manifest, self._results / f"{task.task_id}-{round_}-{key.hex()}")
        result = AggregateResult(
            result_cid=self.store.put_file(path), result_digest=file_sha256(path),
            scores_root=details.score_tree().root, total_weight=sum(scores[t] * n for t, n in samples.items()),
            accepted=len(accepted), rejected=len(rejected), accuracy_ppm=accuracy_ppm, loss_micro=loss_micro)
        return RoundComputation(inputs, result, path, details, self.scratch)

    def _store_state(self, architecture: str, strategy: Strategy, aggregation: Aggregation) -> ServerStateRef | None:
        if aggregation.server_state is None:
            return None
        path = write_model_file(aggregation.server_state, ModelManifest(
            kind="aggregate", architecture=architecture, details={"server_state_of": strategy.name}),
            self._downloads / "server-state")
        return ServerStateRef(strategy.name, self.store.put_file(path), file_sha256(path))

"""The stateless aggregator: everything it submits is recomputed from the chain and the content store."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ape.exceptions import ContractLogicError

from aggregator.central_dp import chain_round_context
from aggregator.contribution import contributions
from aggregator.freeriders import REPLAY_LOOKBACK_ROUNDS, FreeRiderCheck, KnownUpdate, flatten
from aggregator.keeper import Keeper
from aggregator.privacy_report import local_privacy
from aggregator.scoring import evaluate, quantize_micro, quantize_ppm
from aggregator.strategies import ClientUpdate, ValidationContext, get_strategy
from aggregator.validation import RejectedUpdate, validate_update
from fedchain.chain import AggregatorStatus, Fedchain, FedchainError, Phase, TaskStatus, TrainerStatus, explain_revert
from fedchain.codec import ModelManifest, decode_dataset, decode_model, encode_model, sha256
from fedchain.commitments import AggregateResult, ScoreTree, aggregator_commitment, ape_signer, derive_salt, result_key
from fedchain.config import settings
from fedchain.models import expected_shapes
from fedchain.rounds import chain_now, try_advance
from fedchain.store import ContentError, ContentStore, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundComputation:
    """The deterministic outcome of one round: identical on every honest aggregator."""

    result: AggregateResult
    blob: bytes
    scores: dict[str, int]
    rejected: dict[str, dict[str, str]] = field(default_factory=dict)


class AggregatorNode:
    """An approved, staked aggregator serving one or more tasks."""

    def __init__(self, fed: Fedchain, account: Any, store: ContentStore, max_update_bytes: int | None = None,
                 central_dp_secret: bytes | None = None):
        self.fed = fed
        self.account = account
        self.store = store
        self.max_bytes = max_update_bytes or settings().max_model_bytes
        self._validation_cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.keeper = Keeper(fed, account, store, self.max_bytes)
        self.central_dp_secret = central_dp_secret  # shared by the committee off chain; never logged

    @property
    def address(self) -> str:
        return self.account.address

    # --- computation (pure: chain + store in, bytes out) --------------------------------------
    def _fetch(self, cid: str, digest: bytes) -> bytes:
        return self.store.get(cid, sha256=digest, max_bytes=self.max_bytes)

    def _validation_set(self, task: Any) -> tuple[np.ndarray, np.ndarray]:
        digest = bytes(task.params.validationDigest)
        if digest not in self._validation_cache:
            blob = self._fetch(task.params.validationCid, digest)
            self._validation_cache[digest] = decode_dataset(blob, self.max_bytes)
        return self._validation_cache[digest]

    def _check_update(self, task: Any, task_id: int, round_: int, trainer: str, entry: Any,
                      shapes: dict[str, tuple[int, ...]], privacy: dict[str, Any] | None = None
                      ) -> dict[str, np.ndarray]:
        try:
            blob = self._fetch(entry.cid, bytes(entry.updateDigest))
        except StoreUnavailable:
            raise  # our store is down, not the trainer's fault: never a rejection (results must not depend on it)
        except ContentError as exc:
            raise RejectedUpdate(type(exc).__name__, str(exc)) from exc
        tensors, manifest = validate_update(blob, shapes, self.max_bytes)
        expected = (task_id, round_, trainer.lower(), task.globalModelCid, int(entry.numSamples))
        found = (manifest.task_id, manifest.round, manifest.trainer.lower(), manifest.parent_cid, manifest.num_samples)
        if found != expected:
            raise RejectedUpdate("wrong_manifest", f"manifest says {found}, chain says {expected}")
        bound = task.params.dpEpsilonMilli / 1000
        if bound and (manifest.epsilon_spent is None or manifest.epsilon_spent > bound):
            raise RejectedUpdate("privacy_bound", f"epsilon {manifest.epsilon_spent} exceeds the task bound {bound}")
        if privacy is not None:
            privacy[trainer.lower()] = local_privacy(manifest)
        return tensors

    def _earlier_updates(self, task_id: int, round_: int) -> list[KnownUpdate]:
        """Revealed updates of the previous rounds (for replay detection); unreadable ones are skipped."""
        known: list[KnownUpdate] = []
        for earlier in range(max(1, round_ - REPLAY_LOOKBACK_ROUNDS), round_):
            for trainer in self.fed.tasks.getRoundTrainers(task_id, earlier):
                entry = self.fed.tasks.getTrainerEntry(task_id, earlier, trainer)
                if not entry.cid:
                    continue
                try:
                    tensors, _ = decode_model(self._fetch(entry.cid, bytes(entry.updateDigest)), self.max_bytes)
                    known.append(KnownUpdate(trainer.lower(), earlier, flatten(tensors, np.float32)))
                except StoreUnavailable:
                    raise  # skipping would make the replay check depend on our node being up
                except Exception as exc:  # noqa: BLE001 - a broken old update cannot be replayed
                    log.debug("skipping round %s update of %s: %s", earlier, trainer, exc)
        return known

    def _server_state(self, global_manifest: ModelManifest, strategy: Any) -> dict[str, np.ndarray] | None:
        """The server optimizer's state named by the previous aggregate (None in the first round)."""
        ref = (global_manifest.details or {}).get("server_state") if global_manifest.kind == "aggregate" else None
        if not isinstance(ref, dict) or ref.get("strategy") != strategy.name:
            return None
        state, _ = decode_model(self._fetch(ref["cid"], bytes.fromhex(ref["sha256"])), self.max_bytes)
        return state

    def _aggregate(self, task: Any, global_tensors: dict[str, np.ndarray], global_manifest: ModelManifest,
                   accepted: list[ClientUpdate], details: dict[str, Any],
                   round_ref: tuple[int, int] | None = None, rejected: int = 0) -> dict[str, np.ndarray]:
        params = json.loads(bytes(task.params.strategyParams).decode() or "{}")
        strategy = get_strategy(task.params.strategy, params)
        details["strategy"] = strategy.name
        if strategy.uses_round_context and round_ref is not None:  # central DP: chain-seeded noise
            previous = global_manifest.details if global_manifest.kind == "aggregate" else {}
            strategy = strategy.for_round(chain_round_context(self.fed, *round_ref, previous, self.central_dp_secret))
        if strategy.uses_validation:  # the validation filter of the default robust rule
            x_val, y_val = self._validation_set(task)
            strategy = strategy.with_validation(ValidationContext(task.params.architecture, x_val, y_val, rejected))
        if not accepted:
            details.update(strategy.round_details())
            return global_tensors
        if not getattr(strategy, "stateful", False):
            new_tensors = strategy.aggregate(global_tensors, accepted)
            details.update(strategy.round_details())
            return new_tensors
        new_tensors, state = strategy.aggregate_with_state(
            global_tensors, accepted, self._server_state(global_manifest, strategy))
        blob = encode_model(state, ModelManifest(kind="aggregate", architecture=task.params.architecture,
                                                 details={"server_state_of": strategy.name}))
        details["server_state"] = {"strategy": strategy.name, "cid": self.store.put(blob), "sha256": sha256(blob).hex()}
        return new_tensors

    def compute(self, task_id: int, round_: int) -> RoundComputation:
        """Fetch, validate, reject free riders, aggregate, score and encode the round's result."""
        task = self.fed.task(task_id)
        architecture = task.params.architecture
        shapes = expected_shapes(architecture)
        global_blob = self._fetch(task.globalModelCid, bytes(task.globalModelDigest))
        global_tensors, global_manifest = decode_model(global_blob, self.max_bytes)
        free_riders = FreeRiderCheck(global_tensors, self._earlier_updates(task_id, round_))
        accepted: list[ClientUpdate] = []
        privacy: dict[str, Any] = {}
        rejected: dict[str, dict[str, str]] = {}
        for trainer in self.fed.tasks.getRoundTrainers(task_id, round_):  # commit order
            entry = self.fed.tasks.getTrainerEntry(task_id, round_, trainer)
            if TrainerStatus(entry.status) not in (TrainerStatus.REVEALED, TrainerStatus.CLAIMED):
                continue
            try:
                tensors = self._check_update(task, task_id, round_, trainer, entry, shapes, privacy)
                free_riders.check(trainer, round_, tensors)
            except RejectedUpdate as exc:
                rejected[trainer.lower()] = {"code": exc.code, "message": exc.message}
                log.warning("round %s: rejected %s: %s (%s)", round_, trainer, exc.code, exc.message)
                continue
            accepted.append(ClientUpdate(trainer.lower(), tensors, int(entry.numSamples)))
        details: dict[str, Any] = {}
        new_tensors = self._aggregate(task, global_tensors, global_manifest, accepted, details, (task_id, round_),
                                      len(rejected))
        x_val, y_val = self._validation_set(task)
        breakdown = contributions(architecture, global_tensors, accepted, x_val, y_val)
        scores = {t: c.score for t, c in breakdown.items()}
        scores.update({t: 0 for t in rejected})
        quality = evaluate(architecture, new_tensors, x_val, y_val)
        accuracy_ppm, loss_micro = quantize_ppm(quality.accuracy), quantize_micro(quality.loss)
        samples = {u.trainer: u.num_samples for u in accepted}
        details["privacy"] = {t: privacy[t] for t in sorted(samples) if t in privacy}
        details.update({"scores": dict(sorted(scores.items())), "rejected": dict(sorted(rejected.items())),
                        "contributions": {t: breakdown[t].as_dict() for t in sorted(breakdown)}})
        manifest = ModelManifest(
            kind="aggregate",
            architecture=architecture,
            parent_cid=task.globalModelCid,
            task_id=task_id,
            round=round_,
            num_samples=sum(samples.values()),
            metrics={"accuracy": accuracy_ppm / 1e6, "loss": loss_micro / 1e6},
            details=details,
        )
        blob = encode_model(new_tensors, manifest)
        tree = ScoreTree(scores)
        result = AggregateResult(
            result_cid=self.store.put(blob),
            result_digest=sha256(blob),
            scores_root=tree.root,
            total_weight=sum(scores[t] * n for t, n in samples.items()),
            accepted=len(accepted),
            rejected=len(rejected),
            accuracy_ppm=accuracy_ppm,
            loss_micro=loss_micro,
        )
        return RoundComputation(result, blob, scores, rejected)

    # --- acting on the chain ------------------------------------------------------------------
    def _salt(self, task_id: int, round_: int) -> bytes:
        d = self.fed.deployment
        return derive_salt(ape_signer(self.account), "aggregator", d.chain_id, d.tasks, task_id, round_)

    def _send(self, description: str, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args, sender=self.account)
        except ContractLogicError as exc:
            raise FedchainError(f"{description} failed: {explain_revert(exc)}") from exc

    def step(self, task_id: int) -> str | None:
        """Do whatever is due now for the task's current round; returns what was done, if anything."""
        slashed = self.keeper.settle_recent(task_id)
        task = self.fed.task(task_id)
        if TaskStatus(task.status) != TaskStatus.ACTIVE:
            return "slashed" if slashed else None
        round_ = task.currentRound
        rnd = self.fed.round(task_id, round_)
        phase = Phase(rnd.phase)
        entry = self.fed.tasks.getAggregatorEntry(task_id, round_, self.address)
        status = AggregatorStatus(entry.status)
        open_ = chain_now() <= rnd.phaseDeadline
        if phase == Phase.AGGREGATOR_COMMIT and status == AggregatorStatus.NONE and open_:
            self.slash_non_revealers(task_id, round_)
            comp = self.compute(task_id, round_)
            salt = self._salt(task_id, round_)
            commitment = aggregator_commitment(self.address, task_id, round_, result_key(comp.result), salt)
            self._send("aggregate commit", self.fed.tasks.commitAggregate, task_id, commitment)
            return "committed"
        if phase == Phase.AGGREGATOR_REVEAL and status == AggregatorStatus.COMMITTED and open_:
            comp = self.compute(task_id, round_)
            salt = self._salt(task_id, round_)
            self._send("aggregate reveal", self.fed.tasks.revealAggregate, task_id, comp.result.as_tuple(), salt)
            return "revealed"
        if try_advance(self.fed, task_id, self.account) is not None:
            return "advanced"
        return "slashed" if slashed else None

    def slash_non_revealers(self, task_id: int, round_: int) -> int:
        """Keeper duty: slash trainers who committed but never revealed (anyone may do this)."""
        count = 0
        for trainer in self.fed.tasks.getRoundTrainers(task_id, round_):
            entry = self.fed.tasks.getTrainerEntry(task_id, round_, trainer)
            if TrainerStatus(entry.status) == TrainerStatus.COMMITTED:
                try:
                    self.fed.tasks.slashNonRevealingTrainer(task_id, round_, trainer, sender=self.account)
                    count += 1
                except ContractLogicError as exc:
                    log.info("could not slash %s: %s", trainer, explain_revert(exc))
        return count

    def run(self, task_ids: Sequence[int], *, poll_seconds: float | None = None,
            on_action: Callable[[int, str], None] | None = None, timeout: float | None = None) -> None:
        """Serve the tasks until all are completed (or timeout seconds pass)."""
        poll = settings().poll_seconds if poll_seconds is None else poll_seconds
        started = time.monotonic()
        while True:
            active = [t for t in task_ids if TaskStatus(self.fed.task(t).status) == TaskStatus.ACTIVE]
            if not active:
                for task_id in task_ids:  # the last round's keeper duties
                    self.keeper.settle_recent(task_id)
                return
            acted = False
            for task_id in active:
                try:
                    action = self.step(task_id)
                except StoreUnavailable as exc:  # the IPFS node is down: try again on the next poll
                    log.warning("task %s: content store unavailable, retrying: %s", task_id, exc)
                    action = None
                if action:
                    acted = True
                    if on_action:
                        on_action(task_id, action)
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"aggregator gave up after {timeout:.0f}s")
            if not acted:
                time.sleep(poll)

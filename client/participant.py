"""A trainer on the chain: stake, train one round, commit, reveal, claim. Thin over the contracts."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ape.exceptions import ContractLogicError

from client.privacy import check_budget, epsilon_spent, plan_noise_multiplier
from client.task_config import task_train_config
from client.trainer import TrainConfig, dp_schedule, train_local
from fedchain.chain import Fedchain, FedchainError, Phase, TaskStatus, TrainerStatus, explain_revert
from fedchain.codec import ModelManifest, decode_model, encode_model, sha256
from fedchain.commitments import ScoreTree, ape_signer, derive_salt, trainer_commitment
from fedchain.config import settings
from fedchain.rounds import chain_now, in_phase, try_advance, wait_for
from fedchain.store import ContentStore

log = logging.getLogger(__name__)
DEFAULT_DELTA = 1e-5


@dataclass(frozen=True)
class PendingUpdate:
    """What a trainer must remember between commit and reveal (kept in a local journal file)."""

    task_id: int
    round: int
    cid: str
    digest: str
    num_samples: int
    epsilon_spent: float | None


def _transact(description: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ContractLogicError as exc:
        raise FedchainError(f"{description} failed: {explain_revert(exc)}") from exc


class TrainerNode:
    """One organisation's trainer: its account, its private data, and a content store."""

    def __init__(
        self,
        fed: Fedchain,
        account: Any,
        store: ContentStore,
        data: tuple[np.ndarray, np.ndarray],
        config: TrainConfig | None = None,
        target_epsilon: float | None = None,
        delta: float = DEFAULT_DELTA,
    ) -> None:
        self.fed = fed
        self.account = account
        self.store = store
        self.x, self.y = data
        self.config = config or TrainConfig()
        self.target_epsilon = target_epsilon
        self.delta = delta

    @property
    def address(self) -> str:
        return self.account.address

    # --- staking -----------------------------------------------------------------------------
    def stake(self, amount: int) -> Any:
        if amount <= 0:
            raise FedchainError("stake amount must be positive")
        balance = self.fed.token.balanceOf(self.address)
        if balance < amount:
            raise FedchainError(f"balance {balance} is lower than the stake {amount}")
        _transact("approve", self.fed.token.approve, self.fed.staking.address, amount, sender=self.account)
        return _transact("stake", self.fed.staking.stake, amount, sender=self.account)

    def request_unstake(self, amount: int) -> Any:
        return _transact("unstake", self.fed.staking.requestUnstake, amount, sender=self.account)

    def withdraw(self) -> Any:
        return _transact("withdraw", self.fed.staking.withdraw, sender=self.account)

    # --- one round ---------------------------------------------------------------------------
    def _journal_path(self, task_id: int, round_: int) -> Path:
        d = self.fed.deployment
        name = f"{d.chain_id}-{d.tasks.lower()}-{task_id}-{round_}-{self.address.lower()}.json"
        return settings().journal_dir / name

    def _salt(self, task_id: int, round_: int) -> bytes:
        d = self.fed.deployment
        return derive_salt(ape_signer(self.account), "trainer", d.chain_id, d.tasks, task_id, round_)

    def privacy_plan(self, task: Any, steps_per_round: int, sample_rate: float) -> tuple[float, float]:
        """(noise multiplier, epsilon budget) for this task: the smaller of our target and the task bound."""
        bound = task.params.dpEpsilonMilli / 1000 if task.params.dpEpsilonMilli else None
        budget = min(e for e in (self.target_epsilon, bound) if e is not None)
        noise = plan_noise_multiplier(budget, self._delta(task), sample_rate, steps_per_round, task.params.numRounds)
        return noise, budget

    def _delta(self, task: Any) -> float:
        return task.params.dpDeltaE18 / 1e18 if task.params.dpDeltaE18 else self.delta

    def rounds_participated(self, task_id: int, before_round: int) -> int:
        done = (TrainerStatus.REVEALED, TrainerStatus.CLAIMED)
        return sum(
            TrainerStatus(self.fed.tasks.getTrainerEntry(task_id, r, self.address).status) in done
            for r in range(1, before_round)
        )

    def train_and_commit(self, task_id: int) -> PendingUpdate:
        """Fetch the global model, train locally (DP if the task or trainer asks), upload, commit."""
        task = self.fed.task(task_id)
        round_ = task.currentRound
        rnd = self.fed.round(task_id, round_)
        if Phase(rnd.phase) != Phase.TRAINER_COMMIT or chain_now() > rnd.phaseDeadline:
            phase = Phase(rnd.phase).label
            raise FedchainError(f"task {task_id} round {round_} is not accepting commits (phase {phase})")
        entry = self.fed.tasks.getTrainerEntry(task_id, round_, self.address)
        if TrainerStatus(entry.status) != TrainerStatus.NONE:
            raise FedchainError(f"already committed to task {task_id} round {round_}")
        blob = self.store.get(task.globalModelCid, sha256=bytes(task.globalModelDigest),
                              max_bytes=settings().max_model_bytes)
        global_tensors, _ = decode_model(blob, settings().max_model_bytes)
        config = task_train_config(self.config, task)  # e.g. FedProx's proximal term
        spent: float | None = None
        dp_required = task.params.dpEpsilonMilli > 0
        if dp_required or self.target_epsilon is not None or config.dp:
            rate, steps = dp_schedule(len(self.y), config)
            noise, budget = self.privacy_plan(task, steps, rate) if (dp_required or self.target_epsilon) else (
                config.noise_multiplier, float("inf"))
            done = self.rounds_participated(task_id, round_)
            spent = epsilon_spent(noise, rate, steps * (done + 1), self._delta(task))
            bound = task.params.dpEpsilonMilli / 1000 if dp_required else None
            check_budget(spent, self.target_epsilon if self.target_epsilon is not None else budget, bound)
            config = _replace(config, dp=True, noise_multiplier=noise)
        result = train_local(task.params.architecture, global_tensors, self.x, self.y, config)
        manifest = ModelManifest(
            kind="update",
            architecture=task.params.architecture,
            parent_cid=task.globalModelCid,
            task_id=task_id,
            round=round_,
            trainer=self.address,
            num_samples=result.num_samples,
            epsilon_spent=spent,
            metrics={"train_loss": round(float(result.train_loss), 6)},
        )
        update = encode_model(result.tensors, manifest)
        cid = self.store.put(update)
        digest = sha256(update)
        pending = PendingUpdate(task_id, round_, cid, digest.hex(), result.num_samples, spent)
        path = self._journal_path(task_id, round_)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(pending)))
        commitment = trainer_commitment(self.address, task_id, round_, digest, result.num_samples,
                                        self._salt(task_id, round_))
        _transact("commit", self.fed.tasks.commitUpdate, task_id, commitment, sender=self.account)
        log.info("trainer %s committed task %s round %s (%s)", self.address, task_id, round_, cid)
        return pending

    def reveal(self, task_id: int, round_: int) -> Any:
        """Reveal the update committed for `round_` (read back from the local journal)."""
        path = self._journal_path(task_id, round_)
        if not path.exists():
            raise FedchainError(f"no committed update recorded for task {task_id} round {round_} ({path})")
        pending = PendingUpdate(**json.loads(path.read_text()))
        salt = self._salt(task_id, round_)
        return _transact("reveal", self.fed.tasks.revealUpdate, task_id, pending.cid,
                         bytes.fromhex(pending.digest), pending.num_samples, salt, sender=self.account)

    # --- whole rounds ------------------------------------------------------------------------
    def participate(self, task_id: int, echo: Callable[[str], None] = log.info, timeout: float | None = None) -> int:
        """Wait for a round open to commits, train and commit, wait for the reveal phase, reveal."""
        poll = settings().poll_seconds

        def open_for_us(task: Any, rnd: Any) -> bool:
            if Phase(rnd.phase) != Phase.TRAINER_COMMIT or chain_now() > rnd.phaseDeadline:
                return False
            entry = self.fed.tasks.getTrainerEntry(task_id, task.currentRound, self.address)
            return TrainerStatus(entry.status) == TrainerStatus.NONE

        task, _ = wait_for(self.fed, task_id, open_for_us, sender=self.account, poll_seconds=poll, timeout=timeout)
        if TaskStatus(task.status) != TaskStatus.ACTIVE:
            raise FedchainError(f"task {task_id} is completed")
        round_ = task.currentRound
        echo(f"round {round_}: training on {len(self.y)} samples")
        pending = self.train_and_commit(task_id)
        echo(f"round {round_}: committed {pending.cid}")
        _, rnd = wait_for(self.fed, task_id, in_phase(round_, Phase.TRAINER_REVEAL), sender=self.account,
                          poll_seconds=poll, timeout=timeout)
        rnd = self.fed.round(task_id, round_)
        if Phase(rnd.phase) != Phase.TRAINER_REVEAL:
            phase = Phase(rnd.phase).label
            raise FedchainError(f"round {round_} left the reveal phase before we could reveal ({phase})")
        self.reveal(task_id, round_)
        echo(f"round {round_}: revealed")
        return round_

    def follow(self, task_id: int, echo: Callable[[str], None] = log.info) -> None:
        """Take part in every round until the task completes, claiming rewards as rounds finalize."""
        while TaskStatus(self.fed.task(task_id).status) == TaskStatus.ACTIVE:
            try:
                self.participate(task_id, echo)
            except FedchainError as exc:
                if TaskStatus(self.fed.task(task_id).status) != TaskStatus.ACTIVE:
                    break
                echo(f"skipping: {exc}")
                time.sleep(settings().poll_seconds)
            claimed = self.claim(task_id)
            if claimed:
                echo(f"claimed {claimed / 10**18:g} FED")
        claimed = self.claim(task_id)
        if claimed:
            echo(f"claimed {claimed / 10**18:g} FED")
        echo(f"task {task_id} completed")

    def epsilon_report(self, task_id: int) -> float | None:
        """Epsilon spent on this task so far, as written in our latest revealed update's manifest."""
        task = self.fed.task(task_id)
        for r in range(task.currentRound, 0, -1):
            entry = self.fed.tasks.getTrainerEntry(task_id, r, self.address)
            if TrainerStatus(entry.status) in (TrainerStatus.REVEALED, TrainerStatus.CLAIMED):
                blob = self.store.get(entry.cid, sha256=bytes(entry.updateDigest), max_bytes=settings().max_model_bytes)
                return decode_model(blob, settings().max_model_bytes)[1].epsilon_spent
        return None

    # --- rewards -----------------------------------------------------------------------------
    def claimable(self, task_id: int) -> list[tuple[int, int, int, list[bytes]]]:
        """(round, score, reward, proof) for every finalized round this trainer can still claim."""
        task = self.fed.task(task_id)
        out = []
        for r in range(1, task.currentRound + 1):
            entry = self.fed.tasks.getTrainerEntry(task_id, r, self.address)
            if TrainerStatus(entry.status) != TrainerStatus.REVEALED:
                continue
            rnd = self.fed.round(task_id, r)
            if Phase(rnd.phase) != Phase.FINALIZED or rnd.totalWeight == 0:
                continue
            scores = self.round_scores(rnd)
            score = scores.get(self.address.lower(), 0)
            if score == 0:
                continue
            reward = rnd.roundBudget * score * entry.numSamples // rnd.totalWeight
            out.append((r, score, reward, ScoreTree(scores).proof(self.address)))
        return out

    def round_scores(self, rnd: Any) -> dict[str, int]:
        blob = self.store.get(rnd.resultCid, sha256=bytes(rnd.resultDigest), max_bytes=settings().max_model_bytes)
        _, manifest = decode_model(blob, settings().max_model_bytes)
        return {k.lower(): int(v) for k, v in manifest.details.get("scores", {}).items()}

    def claim(self, task_id: int) -> int:
        """Claim every claimable round of the task; returns the total claimed."""
        total = 0
        for r, score, reward, proof in self.claimable(task_id):
            _transact(f"claim round {r}", self.fed.tasks.claimReward, task_id, r, score, proof, sender=self.account)
            total += reward
        return total

    def advance_if_due(self, task_id: int) -> Any | None:
        return try_advance(self.fed, task_id, self.account)


def _replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    from dataclasses import replace

    return replace(config, **changes)

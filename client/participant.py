"""A trainer on the chain: stake, train one round, commit, reveal, claim. Thin over the contracts."""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ape.exceptions import ContractLogicError

from client.privacy import (
    BudgetExceeded,
    HistoryEntry,
    budget_limit,
    check_budget,
    epsilon_spent,
    history_epsilon,
    plan_noise_multiplier,
)
from client.task_config import task_train_config
from client.trainer import TrainConfig, dp_schedule, train_local
from fedchain.chain import Fedchain, FedchainError, Phase, TaskStatus, TrainerStatus, explain_revert
from fedchain.codec import ModelManifest, decode_model, encode_model, sha256
from fedchain.commitments import ScoreTree, ape_signer, derive_salt, reward_share, trainer_commitment
from fedchain.config import settings
from fedchain.rounds import chain_now, in_phase, try_advance, wait_for
from fedchain.store import ContentStore, StoreUnavailable

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
    privacy: dict[str, Any] | None = None


@dataclass(frozen=True)
class RoundPrivacy:
    """A trainer's privacy for one round: what the update manifest records under ``details.privacy``."""

    accountant: str
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    grad_sample_mode: str
    epsilon_round: float
    epsilon_total: float
    epsilon_budget: float | None

    def history_entry(self) -> HistoryEntry:
        return (self.noise_multiplier, self.sample_rate, self.steps)

    @classmethod
    def non_private(cls, accountant: str, delta: float) -> RoundPrivacy:
        """A round trained without DP: no noise, so it spends infinite epsilon (and so does every total after it)."""
        return cls(accountant=accountant, delta=delta, noise_multiplier=0.0, sample_rate=1.0, steps=1,
                   max_grad_norm=math.inf, grad_sample_mode="none", epsilon_round=math.inf, epsilon_total=math.inf,
                   epsilon_budget=None)

    def to_record(self) -> dict[str, Any]:
        """The manifest's ``details.privacy`` record: JSON has no infinity, so an infinite value is written as
        ``null`` (``privacy_from_details`` reads it back as infinite)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}


_INFINITE_WHEN_NULL = ("epsilon_round", "epsilon_total", "max_grad_norm")


def privacy_from_details(details: Any) -> RoundPrivacy | None:
    """The ``details.privacy`` record of an update manifest, or None if it has none or a malformed one."""
    record = details.get("privacy") if isinstance(details, dict) else None
    if not isinstance(record, dict):
        return None
    record = {k: math.inf if k in _INFINITE_WHEN_NULL and v is None else v for k, v in record.items()}
    try:
        return RoundPrivacy(**record)
    except TypeError:
        return None


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
        accountant: str = "rdp",
    ) -> None:
        self.fed = fed
        self.account = account
        self.store = store
        self.x, self.y = data
        self.config = config or TrainConfig()
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.accountant = accountant

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

    def _delta(self, task: Any) -> float:
        return task.params.dpDeltaE18 / 1e18 if task.params.dpDeltaE18 else self.delta

    @staticmethod
    def task_bound(task: Any) -> float | None:
        """The task's on-chain epsilon bound for the whole task, or None if the task requires no DP."""
        return task.params.dpEpsilonMilli / 1000 if task.params.dpEpsilonMilli else None

    def privacy_history(self, task_id: int, before_round: int) -> list[RoundPrivacy]:
        """Our privacy record of every earlier round of the task in which we committed an update.

        Read from our revealed update's manifest, or from the local journal for an update committed but not
        revealed (it was still trained and uploaded, so it counts). A round trained without DP (an update or a
        journal entry with no privacy record) counts as ``RoundPrivacy.non_private``: infinite epsilon. A
        committed round with neither an update nor a journal entry left is an error: its privacy cost is
        unknown, so we refuse to guess.
        """
        out = []
        for r in range(1, before_round):
            entry = self.fed.tasks.getTrainerEntry(task_id, r, self.address)
            if TrainerStatus(entry.status) == TrainerStatus.NONE:
                continue
            record = None
            if entry.cid:
                blob = self.store.get(entry.cid, sha256=bytes(entry.updateDigest),
                                      max_bytes=settings().max_model_bytes)
                record = privacy_from_details(decode_model(blob, settings().max_model_bytes)[1].details)
            path = self._journal_path(task_id, r)
            if record is None and path.exists():
                record = privacy_from_details({"privacy": json.loads(path.read_text()).get("privacy")})
            if record is None and not entry.cid and not path.exists():
                raise FedchainError(f"round {r} of task {task_id} was committed but its privacy record is lost "
                                    f"({path}); cannot account for it")
            out.append(record if record is not None else RoundPrivacy.non_private(self.accountant, self.delta))
        return out

    def plan_round_privacy(self, task: Any, task_id: int, round_: int) -> RoundPrivacy:
        """Plan this round's noise so that every round so far plus every round still to come stays inside the
        smaller of our target and the task's on-chain bound; ``BudgetExceeded`` if that is impossible."""
        config = self.config
        rate, steps = dp_schedule(len(self.y), config)
        delta = self._delta(task)
        bound = self.task_bound(task)
        limit = budget_limit(self.target_epsilon, bound)
        history = self.privacy_history(task_id, round_)
        if math.isfinite(limit) and any(math.isinf(p.epsilon_total) for p in history):
            raise BudgetExceeded(f"an earlier round of task {task_id} was trained without DP: epsilon inf already "
                                 f"spent, over the budget of {limit:g}; no further rounds can be trained")
        past = [p.history_entry() for p in history]
        rounds_left = task.params.numRounds - round_ + 1
        if math.isfinite(limit):
            noise = plan_noise_multiplier(limit, delta, rate, steps, rounds_left, self.accountant, past)
        else:
            noise = config.noise_multiplier
        total = history_epsilon([*past, (noise, rate, steps)], delta, self.accountant)
        check_budget(total, self.target_epsilon, bound)
        return RoundPrivacy(
            accountant=self.accountant, delta=delta, noise_multiplier=noise, sample_rate=rate, steps=steps,
            max_grad_norm=config.max_grad_norm, grad_sample_mode=config.grad_sample_mode,
            epsilon_round=epsilon_spent(noise, rate, steps, delta, self.accountant), epsilon_total=total,
            epsilon_budget=limit if math.isfinite(limit) else None,
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
        privacy: RoundPrivacy | None = None
        if self.task_bound(task) is not None or self.target_epsilon is not None or config.dp:
            privacy = self.plan_round_privacy(task, task_id, round_)  # BudgetExceeded: we do not train
            # a secret seed: Poisson batches and noise must be unpredictable, or an observer could subtract the
            # noise and the sampling amplification the accountant assumes would not hold
            config = _replace(config, dp=True, noise_multiplier=privacy.noise_multiplier, accountant=self.accountant,
                              seed=secrets.randbits(62))
        spent = privacy.epsilon_total if privacy else None
        result = train_local(task.params.architecture, global_tensors, self.x, self.y, config)
        if privacy is not None and result.dp_history != [privacy.history_entry()]:
            # the epsilon we publish is computed from the plan: it must be the mechanism that really ran
            raise FedchainError(f"DP-SGD ran {result.dp_history}, not the planned (noise, sample rate, steps) "
                                f"{privacy.history_entry()}; nothing was committed")
        manifest = ModelManifest(
            kind="update",
            architecture=task.params.architecture,
            parent_cid=task.globalModelCid,
            task_id=task_id,
            round=round_,
            trainer=self.address,
            num_samples=result.num_samples,
            epsilon_spent=spent if spent is not None and math.isfinite(spent) else None,  # JSON has no inf
            # the training loss is computed on the private data without noise: published only without DP
            metrics={} if privacy else {"train_loss": round(float(result.train_loss), 6)},
            details={"privacy": privacy.to_record()} if privacy else {},
        )
        update = encode_model(result.tensors, manifest)
        cid = self.store.put(update)
        digest = sha256(update)
        pending = PendingUpdate(task_id, round_, cid, digest.hex(), result.num_samples, spent,
                                privacy.to_record() if privacy else None)
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
            except BudgetExceeded as exc:
                echo(f"stopping: privacy budget reached: {exc}")
                break
            except StoreUnavailable as exc:  # the IPFS node is down: wait and try again
                echo(f"content store unavailable, retrying: {exc}")
                time.sleep(settings().poll_seconds)
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
        if TaskStatus(self.fed.task(task_id).status) == TaskStatus.ACTIVE:  # stopped at the privacy budget
            echo(f"stopped taking part in task {task_id}; claim later rounds with `fedchain client claim`")
        else:
            echo(f"task {task_id} completed")

    def epsilon_report(self, task_id: int) -> dict[int, tuple[float | None, float | None]]:
        """Round -> (epsilon spent in that round, total epsilon after it) from our revealed updates' manifests
        (``None`` where an update carries no DP record; ``inf`` after a round trained without DP)."""
        task = self.fed.task(task_id)
        out: dict[int, tuple[float | None, float | None]] = {}
        for r in range(1, task.currentRound + 1):
            entry = self.fed.tasks.getTrainerEntry(task_id, r, self.address)
            if not entry.cid:
                continue
            blob = self.store.get(entry.cid, sha256=bytes(entry.updateDigest), max_bytes=settings().max_model_bytes)
            manifest = decode_model(blob, settings().max_model_bytes)[1]
            record = privacy_from_details(manifest.details)
            total = record.epsilon_total if record and math.isinf(record.epsilon_total) else manifest.epsilon_spent
            out[r] = (record.epsilon_round if record else None, total)
        return out

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
            reward = reward_share(rnd.roundBudget, score, entry.numSamples, rnd.totalWeight)
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

"""A trainer on the chain: stake, train one round, commit, reveal, claim. Thin over the contracts.

The jobs live apart: local training in ``client.trainer``, the journal in ``client.journal``, privacy planning and
history in ``client.ledger``, reward eligibility in ``fedchain.rewards``, claims and bond releases in
``client.settlement``; ``TrainerNode`` runs the round loop.

Before training, ``TrainerNode.readiness`` checks everything a commit needs (task active, round open, not paused,
free stake for the bond, data that fits the model): a round that cannot be committed is never trained, and what
is trained is journaled before it is uploaded, so every release is counted. Every pending reveal in the journal
is resumed first.
"""

from __future__ import annotations

import logging
import math
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from client.journal import Journal, PendingUpdate
from client.ledger import PrivacyLedger
from client.privacy import BudgetExceeded
from client.settlement import Settlement, claim_rewards, release_bonds
from client.task_config import task_train_config
from client.trainer import TrainConfig, train_local
from fedchain.ape.chain import Fedchain
from fedchain.ape.rounds import try_advance, wait_for
from fedchain.architectures import dataset_problem
from fedchain.chainview import RoundView, TaskView
from fedchain.codec import ModelManifest
from fedchain.commitments import ape_signer, derive_salt, trainer_commitment
from fedchain.config import settings
from fedchain.errors import FedchainError
from fedchain.manifests import PrivacyRecord
from fedchain.modelfile import from_compact, read_stored_model, to_compact
from fedchain.protocol import Phase, TaskStatus, TrainerStatus, format_tokens
from fedchain.rewards import Claim, ResultCache, claimable
from fedchain.rounds import in_phase, open_for
from fedchain.store import ContentStore, StoreUnavailable
from fedchain.store.base import file_sha256


def round_seed(seed: int, task_id: int, round_: int, address: str) -> int:
    """The local-training seed of one trainer's round, derived from its configured seed."""
    words = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, task_id, round_, int(address, 16) & 0xFFFFFFFF]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> np.uint64(2))


log = logging.getLogger(__name__)
DEFAULT_DELTA = 1e-5


class NotEnoughStake(FedchainError):
    """The trainer's free stake does not cover the task's bond: it must stake more (or release bonds) first."""


class NotReady(FedchainError):
    """The round cannot take this trainer's commit now (phase, pause, already committed): wait, do not train."""


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
        self.max_bytes = settings().max_model_bytes
        self.journal = Journal(fed.deployment, account.address)
        self._results = ResultCache()
        self.training_seconds = 0.0  # local training time so far (the demo's per-round time split)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def ledger(self) -> PrivacyLedger:
        return PrivacyLedger(self.fed, self.journal, self.store, self.address, self.accountant, self.delta,
                             self.max_bytes)

    # --- staking -----------------------------------------------------------------------------
    def stake(self, amount: int) -> Any:
        if amount <= 0:
            raise FedchainError("stake amount must be positive")
        balance = int(self.fed.token.balanceOf(self.address))
        if balance < amount:
            raise FedchainError(f"the balance of {format_tokens(balance)} is lower than the stake of "
                                f"{format_tokens(amount)}")
        self.fed.send("approve", self.fed.token.approve, self.fed.staking.address, amount, sender=self.account)
        return self.fed.send("stake", self.fed.staking.stake, amount, sender=self.account)

    def request_unstake(self, amount: int) -> Any:
        free = self.fed.free_stake(self.address)
        if amount > free:
            reserved = self.fed.reserved_stake(self.address)
            raise FedchainError(
                f"only {format_tokens(free)} of your stake is free to unstake; {format_tokens(reserved)} is reserved "
                "as bonds of rounds you committed to (claim or release them with `fedchain client claim --task N` "
                "once those rounds settle)")
        return self.fed.send("unstake", self.fed.staking.requestUnstake, amount, sender=self.account)

    def withdraw(self) -> Any:
        return self.fed.send("withdraw", self.fed.staking.withdraw, sender=self.account)

    # --- one round ---------------------------------------------------------------------------
    def _salt(self, task_id: int, round_: int) -> bytes:
        d = self.fed.deployment
        return derive_salt(ape_signer(self.account), "trainer", d.chain_id, d.tasks, task_id, round_)

    @staticmethod
    def task_bound(task: TaskView) -> float | None:
        """The task's on-chain epsilon bound for the whole task, or None if the task requires no DP."""
        return task.spec.dp_epsilon

    def privacy_history(self, task_id: int, before_round: int) -> list[PrivacyRecord]:
        return self.ledger.history(task_id, before_round)

    def plan_round_privacy(self, task: TaskView, round_: int) -> PrivacyRecord:
        return self.ledger.plan(task, round_, len(self.y), self.config, self.target_epsilon)

    def readiness(self, task_id: int, round_: int | None = None) -> tuple[TaskView, RoundView]:
        """The task and its current round when a commit from us would go through now (in round ``round_``, when
        given: the contract refuses a commit naming a round that is no longer current); otherwise ``NotReady``
        (wait), ``NotEnoughStake`` (stake more) or ``FedchainError`` (the task or our data is unusable)."""
        task, rnd = self.fed.current_round(task_id)
        if task.status != TaskStatus.ACTIVE:
            raise FedchainError(f"task {task_id} is {task.status.label}: it takes no more commits")
        if round_ is not None and task.current_round != round_:
            raise NotReady(f"task {task_id} moved on to round {task.current_round} while we trained for round "
                           f"{round_}: that update is not committed")
        try:
            problem = dataset_problem(task.spec.architecture, self.x, self.y)
        except ValueError as exc:  # a family this machine does not have installed, or a malformed id
            raise FedchainError(f"task {task_id} cannot be trained here: {exc}") from None
        if problem is not None:
            raise FedchainError(f"your data cannot train task {task_id}'s {task.spec.architecture}: {problem}")
        round_ = task.current_round
        if not open_for(Phase.TRAINER_COMMIT, rnd, self.fed.pending_timestamp()):
            raise NotReady(f"task {task_id} round {round_} is not taking commits (phase {rnd.phase.label})")
        if self.fed.trainer_entry(task_id, round_, self.address, with_reveal=False).status != TrainerStatus.NONE:
            raise NotReady(f"already committed to task {task_id} round {round_}")
        if self.fed.policy is not None and bool(self.fed.policy.paused()):
            until = int(self.fed.policy.pausedUntil())
            raise NotReady(f"the guardian paused new commits until {time.ctime(until)}; running rounds wait too")
        self.require_stake(task_id)
        return task, rnd

    def require_stake(self, task_id: int) -> None:
        """``NotEnoughStake`` unless our free stake covers the task's bond now."""
        bond, free = self.fed.trainer_bond(task_id), self.fed.free_stake(self.address)
        if free < bond:
            raise NotEnoughStake(
                f"task {task_id} reserves a bond of {format_tokens(bond)} per round and your free stake is "
                f"{format_tokens(free)}: stake {format_tokens(bond - free)} more with `fedchain client stake`, or "
                "release settled bonds with `fedchain client claim`")

    def train_and_commit(self, task_id: int) -> PendingUpdate:
        """Check the commit would go through, fetch the global model, train locally (DP if the task or trainer
        asks), journal, check again, upload, commit. A journaled but uncommitted update of this round is committed
        instead of training again."""
        task, rnd = self.readiness(task_id)
        round_ = task.current_round
        pending = self.journal.load(task_id, round_)
        update = self.journal.update_file(task_id, round_) if pending is not None else None
        if pending is None or update is None or pending.parent_cid != task.global_model_cid or pending.withheld:
            pending, update = self._train(task, round_)
        try:
            self.readiness(task_id, round_)  # the phase may have closed or the stake moved while we trained
        except FedchainError:
            self.journal.withhold(pending)  # never uploaded: not a release
            raise
        if not pending.cid:
            pending = replace(pending, cid=self.store.put_file(update))  # streamed from the journal's file
            self.journal.record(pending)
            self.readiness(task_id, round_)  # and once more after the upload, which may take a while
        commitment = trainer_commitment(self.address, task_id, round_, bytes.fromhex(pending.digest),
                                        pending.num_samples, self._salt(task_id, round_))
        self.fed.send("commit", self.fed.tasks.commitUpdate, task_id, round_, commitment, sender=self.account)
        log.info("trainer %s committed task %s round %s (%s)", self.address, task_id, round_, pending.cid)
        return pending

    def global_model(self, task: TaskView) -> dict[str, np.ndarray]:
        """The task's global model, streamed from the store (to a temporary file unless the store keeps one) and
        read tensor by tensor; bounded by the architecture's size under ``FEDCHAIN_MAX_MODEL_BYTES``."""
        with tempfile.TemporaryDirectory(prefix="fedchain-global-") as scratch:
            return read_stored_model(self.store, task.global_model_cid, task.global_model_digest,
                                     task.spec.file_bound(self.max_bytes), Path(scratch))[0]

    def _train(self, task: TaskView, round_: int) -> tuple[PendingUpdate, Path]:
        """Train this round's update and journal it (before any upload); the journal entry and the file."""
        task_id = task.task_id
        global_tensors = self.global_model(task)
        config = task_train_config(self.config, task.spec)  # e.g. FedProx's proximal term
        # a fresh, reproducible shuffle every round and for every trainer: one seed for all rounds would replay the
        # same batch order each round (the bench saw 47% against 71% accuracy after 10 rounds from that alone)
        config = replace(config, seed=round_seed(config.seed, task_id, round_, self.address))
        privacy: PrivacyRecord | None = None
        if self.task_bound(task) is not None or self.target_epsilon is not None or config.dp:
            privacy = self.plan_round_privacy(task, round_)  # BudgetExceeded: we do not train
            # a secret seed: Poisson batches and noise must be unpredictable, or an observer could subtract the
            # noise and the sampling amplification the accountant assumes would not hold
            config = replace(config, dp=True, noise_multiplier=privacy.noise_multiplier, accountant=self.accountant,
                             seed=secrets.randbits(62))
        spent = privacy.epsilon_total if privacy else None
        started = time.monotonic()
        result = train_local(task.spec.architecture, global_tensors, self.x, self.y, config)
        self.training_seconds += time.monotonic() - started
        claimed = result.num_samples if not task.spec.max_samples else min(result.num_samples, task.spec.max_samples)
        if privacy is not None and result.dp_history != [privacy.history_entry()]:
            # the epsilon we publish is computed from the plan: it must be the mechanism that really ran
            raise FedchainError(f"DP-SGD ran {result.dp_history}, not the planned (noise, sample rate, steps) "
                                f"{privacy.history_entry()}; nothing was committed")
        manifest = ModelManifest(
            kind="update",
            architecture=task.spec.architecture,
            parent_cid=task.global_model_cid,
            task_id=task_id,
            round=round_,
            trainer=self.address,
            num_samples=claimed,
            epsilon_spent=spent if spent is not None and math.isfinite(spent) else None,  # JSON has no inf
            # the training loss is computed on the private data without noise: published only without DP
            metrics={} if privacy else {"train_loss": round(float(result.train_loss), 6)},
            details={"privacy": privacy.to_record()} if privacy else {},
        )
        try:
            code = task.spec.update_dtype()  # the task's transport: float32, or a compact one
        except ValueError as exc:
            raise FedchainError(f"task {task_id} cannot be trained: {exc}") from None
        if code != "F32" and not all(np.isfinite(from_compact(to_compact(t, code), code)).all()
                                     for t in result.tensors.values()):
            raise FedchainError(f"task {task_id}'s updates travel as {code} and this update has weights beyond its "
                                "range; nothing was committed")
        update = self.journal.write_update(task_id, round_, result.tensors, manifest, code)
        size = update.stat().st_size
        if size > task.spec.max_model_bytes:  # every aggregator would reject it: it is never uploaded
            update.unlink()
            raise FedchainError(f"task {task_id}'s update file is {size} bytes, over the task's maxModelBytes "
                                f"{task.spec.max_model_bytes}; nothing was committed")
        pending = PendingUpdate(task_id, round_, "", file_sha256(update).hex(), claimed, spent,
                                privacy.to_record() if privacy else None, parent_cid=task.global_model_cid)
        self.journal.record(pending)
        return pending, update

    def reveal(self, task_id: int, round_: int) -> Any:
        """Reveal the update committed for ``round_`` (read back from the journal)."""
        pending = self.journal.load(task_id, round_)
        if pending is None or not pending.cid:
            raise FedchainError(f"no committed update recorded for task {task_id} round {round_} "
                                f"({self.journal.path(task_id, round_)})")
        return self.fed.send("reveal", self.fed.tasks.revealUpdate, task_id, pending.cid,
                             bytes.fromhex(pending.digest), pending.num_samples, self._salt(task_id, round_),
                             sender=self.account)

    def pending_reveals(self, task_id: int) -> list[int]:
        """Rounds of the task we committed to (journal and chain agree) and have not revealed."""
        return [r for r in self.journal.rounds(task_id)
                if self.fed.trainer_entry(task_id, r, self.address, with_reveal=False).status == TrainerStatus.COMMITTED
                and (self.journal.load(task_id, r) or PendingUpdate(task_id, r, "", "", 0, None)).cid]

    def reveal_pending(self, task_id: int, echo: Callable[[str], None] = log.info,
                       timeout: float | None = None) -> list[int]:
        """Reveal every pending commitment of the task, waiting for each round's reveal phase; the rounds
        revealed. A round whose reveal phase already closed is reported (its bond goes to the non-reveal
        slash)."""
        revealed = []
        for round_ in self.pending_reveals(task_id):
            wait_for(self.fed, task_id, in_phase(round_, Phase.TRAINER_REVEAL), sender=self.account,
                     poll_seconds=settings().poll_seconds, timeout=timeout)
            task, rnd = self.fed.current_round(task_id)
            if task.current_round != round_ or not open_for(Phase.TRAINER_REVEAL, rnd, self.fed.pending_timestamp()):
                echo(f"round {round_}: its reveal phase closed before the update could be revealed; the round's "
                     "bond is forfeit")
                continue
            self.reveal(task_id, round_)
            echo(f"round {round_}: revealed")
            revealed.append(round_)
        return revealed

    # --- whole rounds ------------------------------------------------------------------------
    def participate(self, task_id: int, echo: Callable[[str], None] = log.info, timeout: float | None = None) -> int:
        """Reveal what is pending, wait for a round open to commits, train and commit, wait for the reveal phase,
        reveal."""
        poll = settings().poll_seconds
        self.reveal_pending(task_id, echo, timeout)
        self._echo_settled(echo, self.settle(task_id))  # claims release bonds: free stake for this round
        self.require_stake(task_id)  # before waiting for a round we could not commit to

        def open_for_us(task: TaskView, rnd: RoundView) -> bool:
            if not open_for(Phase.TRAINER_COMMIT, rnd, self.fed.pending_timestamp()):
                return False
            entry = self.fed.trainer_entry(task_id, task.current_round, self.address, with_reveal=False)
            return entry.status == TrainerStatus.NONE

        task, _ = wait_for(self.fed, task_id, open_for_us, sender=self.account, poll_seconds=poll, timeout=timeout)
        if task.status != TaskStatus.ACTIVE:
            raise FedchainError(f"task {task_id} is completed")
        round_ = task.current_round
        self.readiness(task_id)
        echo(f"round {round_}: training on {len(self.y)} samples")
        pending = self.train_and_commit(task_id)
        echo(f"round {round_}: committed {pending.cid}")
        wait_for(self.fed, task_id, in_phase(round_, Phase.TRAINER_REVEAL), sender=self.account, poll_seconds=poll,
                 timeout=timeout)
        rnd = self.fed.round(task_id, round_)
        if rnd.phase != Phase.TRAINER_REVEAL:
            raise FedchainError(f"round {round_} left the reveal phase before we could reveal ({rnd.phase.label})")
        self.reveal(task_id, round_)
        echo(f"round {round_}: revealed")
        return round_

    def follow(self, task_id: int, echo: Callable[[str], None] = log.info) -> None:
        """Take part in every round until the task completes, claiming rewards and releasing bonds as rounds
        finalize. Stops with ``NotEnoughStake`` when the stake cannot cover the bond (nothing is trained)."""
        last_message = ""

        def once(message: str) -> None:
            nonlocal last_message
            if message != last_message:
                echo(message)
            last_message = message

        while self.fed.task(task_id).status == TaskStatus.ACTIVE:
            try:
                self.participate(task_id, echo)
            except BudgetExceeded as exc:
                echo(f"stopping: privacy budget reached: {exc}")
                break
            except NotEnoughStake:
                raise
            except StoreUnavailable as exc:  # the IPFS node is down: wait and try again
                once(f"content store unavailable, retrying: {exc}")
                time.sleep(settings().poll_seconds)
            except FedchainError as exc:
                if self.fed.task(task_id).status != TaskStatus.ACTIVE:
                    break
                once(f"waiting: {exc}" if isinstance(exc, NotReady) else f"skipping: {exc}")
                time.sleep(settings().poll_seconds)
        self.reveal_pending(task_id, echo)
        self._echo_settled(echo, self.settle(task_id))
        if self.fed.task(task_id).status == TaskStatus.ACTIVE:  # stopped at the privacy budget
            echo(f"stopped taking part in task {task_id}; claim later rounds with `fedchain client claim`")
        else:
            echo(f"task {task_id} completed")

    @staticmethod
    def _echo_settled(echo: Callable[[str], None], done: Settlement) -> None:
        if done.claimed:
            echo(f"claimed {format_tokens(done.claimed)} (rounds {', '.join(map(str, done.claimed_rounds))})")
        if done.released:
            echo(f"bond of {format_tokens(done.released)} released (rounds "
                 f"{', '.join(map(str, done.released_rounds))})")

    def epsilon_report(self, task_id: int) -> dict[int, tuple[float | None, float | None]]:
        """Round -> (epsilon spent in that round, total epsilon after it) (``None`` where a round carries no DP
        record; ``inf`` after a round trained without DP)."""
        return self.ledger.report(task_id, self.fed.task(task_id).current_round)

    # --- rewards -----------------------------------------------------------------------------
    def claimable(self, task_id: int) -> list[Claim]:
        """Every finalized round of the task this trainer can still claim (scores verified against the chain)."""
        return claimable(self.fed, self.store, self.address, self.max_bytes, [task_id], self._results)

    def claim(self, task_id: int) -> int:
        """Claim every claimable round of the task (one transaction); returns the total claimed."""
        return claim_rewards(self.fed, self.account, task_id, self.claimable(task_id))

    def settle(self, task_id: int) -> Settlement:
        """Claim every claimable round, then release every bond the chain lets go of."""
        claims = self.claimable(task_id)
        claimed = claim_rewards(self.fed, self.account, task_id, claims)
        released, rounds, waiting = release_bonds(self.fed, self.account, task_id)
        return Settlement(claimed, tuple(c.round for c in claims), released, rounds, waiting)

    def advance_if_due(self, task_id: int) -> Any | None:
        return try_advance(self.fed, task_id, self.account)

"""Helpers for Byzantine end-to-end tests: tasks with a chosen strategy / committee, hostile trainers' updates."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from aggregator.compute import RoundComputation
from aggregator.service import AggregatorNode
from client.trainer import TrainConfig, train_local
from fedchain.codec import ModelManifest, decode_model, encode_model, sha256
from fedchain.commitments import AggregateResult, trainer_commitment
from fedchain.protocol import ONE_TOKEN, Phase
from fedchain.taskspec import encode_strategy_params
from sponsor.tasks import create_task as sponsor_creates
from tests.support.attacks import flip_labels
from tests.support.federation import Federation, advance_to, build_federation

PHASE_SECONDS = 1800  # long phases: tests step the phases explicitly, a loaded machine must not close them
SALT = b"\x22" * 32


def create_task(f: Federation, *, strategy: str, params: dict | None = None, rounds: int = 1, min_trainers: int = 2,
                quorum: int = 1, committee: int = 1, max_model_bytes: int | None = None) -> int:
    """A new task on the federation's deployment reusing its initial model and validation set."""
    first = f.fed.task(f.task_id).spec
    spec = replace(first, num_rounds=rounds, min_trainers=min_trainers, max_trainers=len(f.people.trainers),
                   max_model_bytes=first.max_model_bytes if max_model_bytes is None else max_model_bytes,
                   aggregator_quorum=quorum, max_aggregators=committee, commit_duration=PHASE_SECONDS,
                   reveal_duration=PHASE_SECONDS, aggregator_commit_duration=PHASE_SECONDS,
                   aggregator_reveal_duration=PHASE_SECONDS, strategy=strategy,
                   strategy_params=encode_strategy_params(params))
    return sponsor_creates(f.fed, f.people.sponsor, spec, f.store)


def add_aggregators(f: Federation, accounts: list[Any]) -> None:
    """Approve, fund and stake extra aggregator accounts."""
    for acct in accounts:
        f.fed.committee.grantRole(f.fed.committee.AGGREGATOR_ROLE(), acct.address, sender=f.people.deployer)
        f.fed.token.mint(acct, 1000 * ONE_TOKEN, sender=f.people.deployer)
        f.fed.token.approve(f.fed.staking.address, 500 * ONE_TOKEN, sender=acct)
        f.fed.staking.stake(500 * ONE_TOKEN, sender=acct)


def federation(home, trainers: int, **overrides: Any) -> Federation:
    overrides.setdefault("train", TrainConfig(epochs=2))
    return build_federation(home, trainers=trainers, rounds=1, **overrides)


def global_model(f: Federation, task_id: int) -> dict[str, np.ndarray]:
    task = f.fed.task(task_id)
    return decode_model(f.store.get(task.global_model_cid, sha256=task.global_model_digest, max_bytes=1 << 26),
                        1 << 26)[0]


def train_shard(f: Federation, task_id: int, index: int, flip: bool = False) -> tuple[dict, int]:
    """What trainer ``index`` would train honestly (or on labels ``9 - y``) from the task's global model."""
    x, y = f.data["train"]
    idx = f.data["parts"][index]
    labels = flip_labels(y[idx], 10) if flip else y[idx]
    result = train_local(f.fed.task(task_id).spec.architecture, global_model(f, task_id), x[idx], labels,
                         f.cfg.train)
    return result.tensors, result.num_samples


def commit_tensors(f: Federation, task_id: int, account: Any, tensors: dict[str, np.ndarray],
                   num_samples: int) -> tuple[str, bytes, int]:
    """Encode a (possibly hostile) update with a correct manifest and commit it; returns what to reveal."""
    task = f.fed.task(task_id)
    manifest = ModelManifest(kind="update", architecture=task.spec.architecture, parent_cid=task.global_model_cid,
                             task_id=task_id, round=task.current_round, trainer=account.address,
                             num_samples=num_samples)
    blob = encode_model(tensors, manifest)
    digest = sha256(blob)
    commitment = trainer_commitment(account.address, task_id, task.current_round, digest, num_samples, SALT)
    f.fed.tasks.commitUpdate(task_id, task.current_round, commitment, sender=account)
    return f.store.put(blob), digest, num_samples


def reveal_all(f: Federation, task_id: int, round_: int, reveals: dict[Any, tuple[str, bytes, int]]) -> None:
    advance_to_task(f, task_id, round_, Phase.TRAINER_REVEAL)
    for account, (cid, digest, n) in reveals.items():
        f.fed.tasks.revealUpdate(task_id, cid, digest, n, SALT, sender=account)
    advance_to_task(f, task_id, round_, Phase.AGGREGATOR_COMMIT)


def advance_to_task(f: Federation, task_id: int, round_: int, phase: Phase) -> None:
    advance_to(replace(f, task_id=task_id), round_, phase)


class DishonestAggregator(AggregatorNode):
    """Reveals a result whose scores favour one trainer (a bribed aggregator): same model, different root."""

    def __init__(self, *args: Any, favour: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.favour = favour

    def compute(self, task_id: int, round_: int) -> RoundComputation:
        honest = super().compute(task_id, round_)
        r = honest.result
        forged = AggregateResult(r.result_cid, r.result_digest, bytes(31) + bytes([self.favour]),
                                 r.total_weight * 2, r.accepted, r.rejected, r.accuracy_ppm, r.loss_micro)
        return RoundComputation(honest.inputs, forged, honest.result_file, honest.details, honest.scratch)


@dataclass
class Roles:
    honest: list[int]
    attacks: dict[int, str]

"""Faulty and hostile trainers on anvil: malformed updates are rejected with a reason, non-revealers slashed,
rounds with too few trainers fail and roll their budget over."""

from __future__ import annotations

import numpy as np
import pytest
from ape import accounts

from client.participant import TrainerNode
from fedchain.architectures import initial_tensors
from fedchain.codec import ModelManifest, decode_model, encode_model, sha256
from fedchain.commitments import trainer_commitment
from fedchain.errors import FedchainError
from fedchain.protocol import Phase, TrainerStatus
from tests.support.chain import warp
from tests.support.federation import advance_to, build_federation

SALT = b"\x11" * 32


def commit_raw(f, account, blob: bytes, num_samples: int, *, reveal_digest: bytes | None = None) -> tuple:
    """Commit an arbitrary blob as an update, the way a hostile trainer would."""
    cid = f.store.put(blob)
    digest = reveal_digest or sha256(blob)
    round_ = f.fed.task(f.task_id).current_round
    commitment = trainer_commitment(account.address, f.task_id, round_, digest, num_samples, SALT)
    f.fed.tasks.commitUpdate(f.task_id, round_, commitment, sender=account)
    return cid, digest, num_samples


def hostile_blobs(f, account) -> dict[str, bytes]:
    arch = f.fed.task(f.task_id).spec.architecture
    good = initial_tensors(arch, 1)
    manifest = ModelManifest(kind="update", architecture=arch, parent_cid=f.fed.task(f.task_id).global_model_cid,
                             task_id=f.task_id, round=1, trainer=account.address, num_samples=50)
    nan = {k: v.copy() for k, v in good.items()}
    next(iter(nan.values())).flat[0] = np.nan
    wrong = {k: np.zeros((3, 3), dtype=np.float32) if k == sorted(good)[0] else v for k, v in good.items()}
    return {
        "not_safetensors": b"definitely not a model" * 10,
        "non_finite": encode_model(nan, manifest),
        "wrong_shape": encode_model(wrong, manifest),
    }


def test_malformed_updates_are_rejected_with_reasons_and_earn_nothing(fedchain_home):
    f = build_federation(fedchain_home, trainers=5, rounds=1)
    honest, hostile = f.trainers[:2], f.people.trainers[2:]
    token = f.fed.token
    for t in honest:
        t.train_and_commit(f.task_id)
    kinds = ["not_safetensors", "non_finite", "wrong_shape"]
    reveals = {}
    for account, kind in zip(hostile, kinds, strict=True):
        reveals[account.address] = commit_raw(f, account, hostile_blobs(f, account)[kind], 50)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(f.task_id, 1)
    for account in hostile:
        cid, digest, n = reveals[account.address]
        f.fed.tasks.revealUpdate(f.task_id, cid, digest, n, SALT, sender=account)
    before = {a.address: token.balanceOf(a.address) for a in f.people.trainers}
    while f.fed.task(f.task_id).current_round == 1 and f.fed.task(f.task_id).status == 1:
        assert f.aggregator.step(f.task_id) is not None
    rnd = f.fed.round(f.task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED
    assert (rnd.accepted, rnd.rejected) == (2, 3)
    blob = f.store.get(rnd.result_cid, sha256=bytes(rnd.result_digest), max_bytes=1 << 26)
    details = decode_model(blob)[1].details
    for account, kind in zip(hostile, kinds, strict=True):
        assert details["rejected"][account.address.lower()]["code"] == kind
        assert details["scores"][account.address.lower()] == 0
    for t in honest:
        t.claim(f.task_id)
        assert token.balanceOf(t.address) > before[t.address]
    for account in hostile:
        assert token.balanceOf(account.address) == before[account.address]
    part = f.fed.round_split(f.task_id, 1)[0]
    paid = f.fed.call("vault", "paidOf", f.task_id, 1)[0]
    assert paid <= part and part - paid < 10  # only rounding dust is left


def test_update_whose_bytes_do_not_match_the_revealed_digest_is_rejected(fedchain_home):
    f = build_federation(fedchain_home, trainers=3, rounds=1)
    for t in f.trainers[:2]:
        t.train_and_commit(f.task_id)
    liar = f.people.trainers[2]
    cid, digest, n = commit_raw(f, liar, b"some bytes", 10, reveal_digest=sha256(b"other bytes"))
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in f.trainers[:2]:
        t.reveal(f.task_id, 1)
    f.fed.tasks.revealUpdate(f.task_id, cid, digest, n, SALT, sender=liar)
    advance_to(f, 1, Phase.AGGREGATOR_COMMIT)
    comp = f.aggregator.compute(f.task_id, 1)
    assert comp.rejected[liar.address.lower()].code == "DigestMismatch"
    assert comp.result.accepted == 2


def test_trainer_who_does_not_reveal_is_slashed_to_treasury(fedchain_home):
    f = build_federation(fedchain_home, trainers=3, rounds=1)
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in f.trainers[:2]:
        t.reveal(f.task_id, 1)
    silent = f.trainers[2].address
    stake = f.fed.staking.stakeOf(silent)
    bond = f.fed.trainer_entry(f.task_id, 1, silent).bond
    treasury = f.fed.token.balanceOf(f.people.treasury.address)
    warp(f.cfg.phase_seconds + 1)
    while f.fed.task(f.task_id).status == 1:
        assert f.aggregator.step(f.task_id) is not None
    slashed = bond * f.fed.tasks.trainerSlashBps() // 10_000  # the bond of the commitment, not the stake
    assert slashed == bond > 0 and f.fed.reserved_stake(silent) == 0
    assert f.fed.staking.stakeOf(silent) == stake - slashed
    assert f.fed.token.balanceOf(f.people.treasury.address) == treasury + slashed
    assert TrainerStatus(f.fed.tasks.getTrainerEntry(f.task_id, 1, silent).status) == TrainerStatus.SLASHED
    rnd = f.fed.round(f.task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED and rnd.accepted == 2


def test_round_with_too_few_trainers_fails_and_budget_rolls_over(fedchain_home):
    f = build_federation(fedchain_home, trainers=4, rounds=2)  # minTrainers = 2
    budget = f.fed.task(f.task_id).remaining_budget
    f.trainers[0].train_and_commit(f.task_id)
    warp(f.cfg.phase_seconds + 1)
    advance_to(f, 1, Phase.FAILED)
    rnd = f.fed.round(f.task_id, 1)
    assert rnd.failure_reason.rstrip(b"\0") == b"TooFewTrainers"
    task = f.fed.task(f.task_id)
    assert task.current_round == 2 and task.remaining_budget == budget
    # round 2 gets the whole budget: remaining / 1 round left
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, 2, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, 2)
    while f.fed.task(f.task_id).status == 1:
        assert f.aggregator.step(f.task_id) is not None
    assert f.fed.round(f.task_id, 2).round_budget == budget


def test_reverts_reach_the_user_as_clear_messages(fedchain_home):
    f = build_federation(fedchain_home, trainers=2, rounds=1)
    unstaked = accounts.test_accounts[15]
    node = TrainerNode(f.fed, unstaked, f.store, (f.data["train"][0][:50], f.data["train"][1][:50]), f.cfg.train)
    with pytest.raises(FedchainError, match="reserves a bond of 20 FED per round and your free stake is 0 FED"):
        node.train_and_commit(f.task_id)
    f.trainers[0].train_and_commit(f.task_id)
    with pytest.raises(FedchainError, match="not in the phase this action needs"):
        f.trainers[0].reveal(f.task_id, 1)
    with pytest.raises(FedchainError, match="already committed"):
        f.trainers[0].train_and_commit(f.task_id)


def test_a_lost_advance_race_is_not_an_error(fedchain_home, monkeypatch, caplog, capfd):
    """Two keepers see the same deadline pass; the second `advance` reverts (`PhaseNotOver` of the next phase).
    That is no error: `try_advance` returns None, logs at debug level only and prints nothing (no ape trace)."""
    import logging

    from ape_ethereum.trace import Trace

    import fedchain.ape.rounds as rounds

    f = build_federation(fedchain_home, trainers=1, rounds=1)
    capfd.readouterr()
    shown: list = []  # ape prints a call trace on a revert it sees (what a full suite's output showed)
    monkeypatch.setattr(Trace, "show", lambda self, *args, **kwargs: shown.append(self))
    monkeypatch.setattr(rounds, "can_advance", lambda *args: True)  # as if our view were one block stale
    caplog.set_level(logging.DEBUG)
    height = f.fed.head()
    assert rounds.try_advance(f.fed, f.task_id, f.people.trainers[0]) is None  # refused by the gas estimate
    assert f.fed.head() == height  # nothing was sent
    # the other way to lose: our gas estimate ran before the winner's transaction, ours is mined after it
    w3 = f.fed.tasks.provider.web3
    monkeypatch.setattr(w3.eth, "estimate_gas", lambda *args, **kwargs: 300_000)
    assert rounds.try_advance(f.fed, f.task_id, f.people.trainers[0]) is None
    assert f.fed.head() == height + 1  # it was mined, and reverted
    assert f.fed.round(f.task_id, 1).phase == Phase.TRAINER_COMMIT  # nothing moved
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [r.getMessage() for r in loud]
    assert any("raced" in r.getMessage() for r in caplog.records)
    assert not shown
    out, err = capfd.readouterr()
    assert "PhaseNotOver" not in out + err and "Traceback" not in out + err, out + err


def test_an_update_trained_for_a_round_that_moved_on_is_never_committed_to_the_next(fedchain_home, monkeypatch):
    """A trainer whose round failed while it trained (or uploaded) must not commit its round-1 commitment into
    round 2: it could never be revealed there, and the bond would be forfeited. The trainer checks before it
    sends; the contract refuses a commit naming a round that is not current (``StaleRound``)."""
    from client.participant import NotReady

    f = build_federation(fedchain_home, trainers=4, rounds=2)  # minTrainers = 2: one commit cannot save round 1
    slow = f.trainers[0]
    real_train = slow._train

    def train_while_the_round_fails(task, round_):
        out = real_train(task, round_)
        warp(f.cfg.phase_seconds + 1)
        advance_to(f, 1, Phase.FAILED)  # TooFewTrainers: round 2 opens for commits
        return out

    monkeypatch.setattr(slow, "_train", train_while_the_round_fails)
    with pytest.raises(NotReady, match="moved on to round 2"):
        slow.train_and_commit(f.task_id)
    assert f.fed.task(f.task_id).current_round == 2
    assert f.fed.trainer_entry(f.task_id, 2, slow.address).status == TrainerStatus.NONE
    assert f.fed.reserved_stake(slow.address) == 0  # no bond at risk
    with pytest.raises(FedchainError, match="StaleRound"):  # had the check been raced, the chain refuses
        f.fed.send("commit", f.fed.tasks.commitUpdate, f.task_id, 1, b"\x01" * 32, sender=slow.account)
    monkeypatch.undo()
    slow.train_and_commit(f.task_id)  # trained afresh for round 2, and committed there
    assert f.fed.trainer_entry(f.task_id, 2, slow.address).status == TrainerStatus.COMMITTED

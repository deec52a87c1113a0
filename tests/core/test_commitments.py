"""Commitments, result keys, score trees and salts (pure Python; the contract cross-check is separate)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from fedchain.commitments import (
    EMPTY_ROOT,
    AggregateResult,
    ScoreTree,
    aggregator_commitment,
    derive_salt,
    result_key,
    salt_message,
    score_leaf,
    total_weight,
    trainer_commitment,
    verify,
)

ADDRS = [Account.from_key(keccak(text=f"trainer-{i}")).address for i in range(12)]
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def word(value: int | bytes | str) -> bytes:
    """One ABI word, built by hand (independent of eth_abi)."""
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value[2:])
    if isinstance(value, bytes):
        assert len(value) == 32
        return value
    return value.to_bytes(32, "big")


def H(*parts: bytes) -> bytes:
    return keccak(b"".join(parts))


def sample_result(**overrides) -> AggregateResult:
    fields = dict(
        result_cid="bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        result_digest=hashlib.sha256(b"model").digest(),
        scores_root=b"\x11" * 32,
        total_weight=123_456_789,
        accepted=3,
        rejected=1,
        accuracy_ppm=912_345,
        loss_micro=301_234,
    )
    fields.update(overrides)
    return AggregateResult(**fields)


# --- commitments -------------------------------------------------------------------------------


def test_trainer_commitment_structure() -> None:
    digest, salt = hashlib.sha256(b"update").digest(), b"\x07" * 32
    expected = H(word(ADDRS[0]), word(5), word(2), digest, word(1000), salt)
    assert trainer_commitment(ADDRS[0], 5, 2, digest, 1000, salt) == expected
    assert trainer_commitment(ADDRS[0].lower(), 5, 2, digest, 1000, salt) == expected
    assert trainer_commitment(ADDRS[0], 5, 3, digest, 1000, salt) != expected
    assert trainer_commitment(ADDRS[0], 5, 2, digest, 1001, salt) != expected


@pytest.mark.parametrize(
    "args",
    [
        ("0x1234", 1, 1, b"\0" * 32, 1, b"\0" * 32),
        (ADDRS[0], -1, 1, b"\0" * 32, 1, b"\0" * 32),
        (ADDRS[0], 1, 1, b"\0" * 31, 1, b"\0" * 32),
        (ADDRS[0], 1, 1, b"\0" * 32, 2**64, b"\0" * 32),
        (ADDRS[0], 1, 1, b"\0" * 32, 1, "00" * 32),
        (ADDRS[0], True, 1, b"\0" * 32, 1, b"\0" * 32),
    ],
)
def test_trainer_commitment_rejects_bad_values(args) -> None:
    with pytest.raises(ValueError):
        trainer_commitment(*args)


def test_bad_checksum_is_rejected() -> None:
    address = next(a for a in ADDRS if sum(c.isupper() for c in a[2:]) >= 2)
    i = next(i for i, c in enumerate(address) if i >= 2 and c.isupper())
    bad = address[:i] + address[i].lower() + address[i + 1 :]  # still mixed case, wrong checksum
    with pytest.raises(ValueError):
        trainer_commitment(bad, 1, 1, b"\0" * 32, 1, b"\0" * 32)


def test_result_key_structure() -> None:
    r = sample_result()
    expected = H(
        keccak(r.result_cid.encode()),
        r.result_digest,
        r.scores_root,
        word(r.total_weight),
        word(r.accepted),
        word(r.rejected),
        word(r.accuracy_ppm),
        word(r.loss_micro),
    )
    assert result_key(r) == expected
    changes = [("result_cid", "bafyother"), ("accepted", 4), ("loss_micro", 1), ("total_weight", 0)]
    for field, value in changes:
        assert result_key(dataclasses.replace(r, **{field: value})) != expected


def test_aggregate_result_tuple_order_and_immutability() -> None:
    r = sample_result()
    assert [f.name for f in dataclasses.fields(AggregateResult)] == [
        "result_cid", "result_digest", "scores_root", "total_weight",
        "accepted", "rejected", "accuracy_ppm", "loss_micro",
    ]  # fmt: skip
    assert r.as_tuple() == (
        r.result_cid, r.result_digest, r.scores_root, r.total_weight,
        r.accepted, r.rejected, r.accuracy_ppm, r.loss_micro,
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.accepted = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "override",
    [
        {"result_cid": ""},
        {"result_cid": "x" * 129},
        {"result_digest": b"short"},
        {"scores_root": b"\0" * 33},
        {"accepted": 2**32},
        {"accuracy_ppm": -1},
        {"loss_micro": 2**64},
        {"total_weight": 2**256},
    ],
)
def test_aggregate_result_validates(override) -> None:
    with pytest.raises(ValueError):
        sample_result(**override)


def test_aggregator_commitment_structure() -> None:
    key, salt = result_key(sample_result()), b"\x09" * 32
    expected = H(word(ADDRS[1]), word(7), word(1), key, salt)
    assert aggregator_commitment(ADDRS[1], 7, 1, key, salt) == expected
    assert aggregator_commitment(ADDRS[2], 7, 1, key, salt) != expected


def test_score_leaf_structure() -> None:
    assert score_leaf(ADDRS[0], 750_000, 42) == keccak(H(word(ADDRS[0]), word(750_000), word(42)))
    assert score_leaf(ADDRS[0], 750_000, 42) != score_leaf(ADDRS[0], 750_000, 43)  # the weight is attested
    with pytest.raises(ValueError):
        score_leaf(ADDRS[0], 2**32, 1)
    with pytest.raises(ValueError):
        score_leaf(ADDRS[0], 1, 2**64)


def weights_of(scores: dict) -> dict:
    """A weight per trainer, different for each, 0 for a rejected (score 0) trainer."""
    return {t: (0 if s == 0 else 10 + i) for i, (t, s) in enumerate(scores.items())}


# --- score tree --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 10))
def test_every_proof_verifies(n: int) -> None:
    scores = {a: (i * 137_911) % 1_000_001 for i, a in enumerate(ADDRS[:n])}
    weights = weights_of(scores)
    tree = ScoreTree(scores, weights)
    assert len(tree) == n
    for trainer, score in scores.items():
        leaf = score_leaf(trainer, score, weights[trainer])
        assert tree.leaf(trainer) == leaf
        proof = tree.proof(trainer)
        assert len(proof) <= max(1, (n - 1).bit_length())
        assert verify(tree.root, leaf, proof)
        assert not verify(tree.root, score_leaf(trainer, score + 1, weights[trainer]), proof)
        assert not verify(tree.root, score_leaf(trainer, score, weights[trainer] + 1), proof)  # inflated weight
        others = [t for t in scores if t != trainer]
        for other in others:
            assert not verify(tree.root, score_leaf(other, score, weights[trainer]), proof)
            assert not verify(tree.root, tree.leaf(other), proof)


def test_tree_shape_and_ordering() -> None:
    a, b, c = sorted(ADDRS[:3], key=lambda x: int(x, 16))
    leaves = [score_leaf(a, 1, 5), score_leaf(b, 2, 5), score_leaf(c, 3, 5)]

    def pair(x: bytes, y: bytes) -> bytes:
        return keccak(min(x, y) + max(x, y))

    tree = ScoreTree({c: 3, a: 1, b: 2}, {a: 5, b: 5, c: 5})
    assert tree.trainers == (a, b, c)
    assert tree.root == pair(pair(leaves[0], leaves[1]), leaves[2])  # odd node promoted unchanged
    assert tree.proof(c) == [pair(leaves[0], leaves[1])]
    assert tree.proof(a) == [leaves[1], leaves[2]]
    assert ScoreTree({a: 1}, {a: 5}).root == leaves[0]
    assert ScoreTree({a: 1}, {a: 5}).proof(a) == []


def test_root_ignores_insertion_order_and_address_case() -> None:
    scores = {a: i * 1000 for i, a in enumerate(ADDRS[:7])}
    weights = {a: 3 for a in scores}
    roots = {ScoreTree(dict(p), weights).root for p in itertools.islice(itertools.permutations(scores.items()), 20)}
    roots.add(ScoreTree({a.lower(): s for a, s in scores.items()}, {a.upper().replace("0X", "0x"): 3
                                                                     for a in scores}).root)
    assert len(roots) == 1


def test_empty_tree() -> None:
    tree = ScoreTree({}, {})
    assert tree.root == EMPTY_ROOT == b"\0" * 32
    with pytest.raises(KeyError):
        tree.proof(ADDRS[0])


def test_tree_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ScoreTree({ADDRS[0]: 1, ADDRS[0].lower(): 2}, {ADDRS[0]: 1})
    with pytest.raises(ValueError):
        ScoreTree({ADDRS[0]: 1_000_001}, {ADDRS[0]: 1})
    with pytest.raises(ValueError):
        ScoreTree({"nobody": 1}, {"nobody": 1})
    with pytest.raises(ValueError):  # a weight for every score, and no other
        ScoreTree({ADDRS[0]: 1}, {ADDRS[1]: 1})
    with pytest.raises(ValueError):
        ScoreTree({ADDRS[0]: 1}, {ADDRS[0]: 2**64})
    with pytest.raises(KeyError):
        ScoreTree({ADDRS[0]: 1}, {ADDRS[0]: 1}).proof(ADDRS[1])


def test_total_weight() -> None:
    scores = {ADDRS[0]: 500_000, ADDRS[1]: 0, ADDRS[2]: 1_000_000}
    samples = {ADDRS[0].lower(): 100, ADDRS[1]: 50, ADDRS[2]: 7}
    assert total_weight(scores, samples) == 500_000 * 100 + 1_000_000 * 7
    with pytest.raises(ValueError):
        total_weight(scores, {ADDRS[0]: 1})
    assert total_weight({}, {}) == 0


# --- salts -------------------------------------------------------------------------------------


def test_salt_message_format() -> None:
    msg = salt_message("trainer", 31337, CONTRACT, 4, 2)
    assert msg == f"fedchain-salt/v1:trainer:31337:{CONTRACT.lower()}:4:2".encode()


def test_derive_salt_hashes_the_signature() -> None:
    seen: list[bytes] = []

    def signer(message: bytes) -> bytes:
        seen.append(message)
        return b"sig:" + message

    salt = derive_salt(signer, "aggregator", 1, CONTRACT, 9, 3)
    assert seen == [salt_message("aggregator", 1, CONTRACT, 9, 3)]
    assert salt == keccak(b"sig:" + seen[0])


def test_derive_salt_with_a_real_key_is_deterministic_and_separated() -> None:
    acct = Account.from_key(keccak(text="salt-key"))

    def signer(message: bytes) -> bytes:
        return bytes(acct.sign_message(encode_defunct(primitive=message)).signature)

    salt = derive_salt(signer, "trainer", 31337, CONTRACT, 1, 1)
    assert len(salt) == 32
    assert salt == derive_salt(signer, "trainer", 31337, CONTRACT.lower(), 1, 1)
    others = {
        derive_salt(signer, "trainer", 31337, CONTRACT, 1, 2),
        derive_salt(signer, "trainer", 31337, CONTRACT, 2, 1),
        derive_salt(signer, "aggregator", 31337, CONTRACT, 1, 1),
        derive_salt(signer, "trainer", 1, CONTRACT, 1, 1),
        derive_salt(signer, "trainer", 31337, ADDRS[0], 1, 1),
    }
    assert salt not in others and len(others) == 5


def test_derive_salt_rejects_empty_signature() -> None:
    with pytest.raises(ValueError):
        derive_salt(lambda m: b"", "trainer", 1, CONTRACT, 1, 1)

"""Commitments, result keys, score Merkle trees and salts, bit for bit as the contracts compute them.

All hashes are keccak256 over ``abi.encode`` (not packed); see docs/PROTOCOL.md "Commitments".
Addresses may be all lower or upper case or correctly checksummed (or objects with an ``.address``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import Any

from eth_abi import encode
from eth_utils import is_checksum_address, is_hex_address, keccak, to_checksum_address

MAX_SCORE = 1_000_000
EMPTY_ROOT = b"\x00" * 32  # root of a tree without leaves (no round finalizes with one)
SALT_PREFIX = "fedchain-salt/v1"

_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1
_UINT256 = 2**256 - 1


def _address(value: Any) -> str:
    """Checksummed address from a hex string or an object with ``.address`` (e.g. an ape account)."""
    raw = getattr(value, "address", value)
    if not isinstance(raw, str) or not raw.startswith("0x") or not is_hex_address(raw):
        raise ValueError(f"not an address: {value!r}")
    body = raw[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(raw):
        raise ValueError(f"address has a bad checksum: {raw}")
    return to_checksum_address(raw.lower())


def _uint(value: int, maximum: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an int in [0, {maximum}], got {value!r}")
    return value


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return bytes(value)


def trainer_commitment(
    trainer: str, task_id: int, round_: int, update_digest: bytes, num_samples: int, salt: bytes
) -> bytes:
    """``keccak256(abi.encode(trainer, taskId, round, updateDigest, numSamples, salt))``."""
    return keccak(
        encode(
            ["address", "uint256", "uint256", "bytes32", "uint64", "bytes32"],
            [
                _address(trainer),
                _uint(task_id, _UINT256, "task_id"),
                _uint(round_, _UINT256, "round_"),
                _bytes32(update_digest, "update_digest"),
                _uint(num_samples, _UINT64, "num_samples"),
                _bytes32(salt, "salt"),
            ],
        )
    )


@dataclass(frozen=True)
class AggregateResult:
    """Mirror of the Solidity ``AggregateResult`` struct (same field order)."""

    result_cid: str
    result_digest: bytes
    scores_root: bytes
    total_weight: int
    accepted: int
    rejected: int
    accuracy_ppm: int
    loss_micro: int

    def __post_init__(self) -> None:
        if not isinstance(self.result_cid, str) or not 1 <= len(self.result_cid.encode()) <= 128:
            raise ValueError("result_cid must be a string of 1..128 bytes")
        _bytes32(self.result_digest, "result_digest")
        _bytes32(self.scores_root, "scores_root")
        _uint(self.total_weight, _UINT256, "total_weight")
        _uint(self.accepted, _UINT32, "accepted")
        _uint(self.rejected, _UINT32, "rejected")
        _uint(self.accuracy_ppm, _UINT32, "accuracy_ppm")
        _uint(self.loss_micro, _UINT64, "loss_micro")

    def as_tuple(self) -> tuple[str, bytes, bytes, int, int, int, int, int]:
        """The struct as a tuple in Solidity order, for passing to the contract."""
        return astuple(self)  # type: ignore[return-value]


def result_key(result: AggregateResult) -> bytes:
    """``keccak256(abi.encode(keccak256(bytes(resultCid)), resultDigest, scoresRoot, totalWeight,
    accepted, rejected, accuracyPpm, lossMicro))``."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "uint32", "uint32", "uint32", "uint64"],
            [
                keccak(result.result_cid.encode()),
                bytes(result.result_digest),
                bytes(result.scores_root),
                result.total_weight,
                result.accepted,
                result.rejected,
                result.accuracy_ppm,
                result.loss_micro,
            ],
        )
    )


def aggregator_commitment(
    aggregator: str, task_id: int, round_: int, result_key: bytes, salt: bytes
) -> bytes:
    """``keccak256(abi.encode(aggregator, taskId, round, resultKey, salt))``."""
    return keccak(
        encode(
            ["address", "uint256", "uint256", "bytes32", "bytes32"],
            [
                _address(aggregator),
                _uint(task_id, _UINT256, "task_id"),
                _uint(round_, _UINT256, "round_"),
                _bytes32(result_key, "result_key"),
                _bytes32(salt, "salt"),
            ],
        )
    )


def score_leaf(trainer: str, score: int, weight: int) -> bytes:
    """OpenZeppelin standard leaf: ``keccak256(bytes.concat(keccak256(abi.encode(trainer, score, weight))))`` with
    ``score`` a uint32 and ``weight`` (the committee's attested weight of the update) a uint64."""
    inner = keccak(encode(["address", "uint32", "uint64"],
                          [_address(trainer), _uint(score, _UINT32, "score"), _uint(weight, _UINT64, "weight")]))
    return keccak(inner)


def _hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin ``Hashes.commutativeKeccak256``."""
    return keccak(a + b) if a < b else keccak(b + a)


def verify(root: bytes, leaf: bytes, proof: Iterable[bytes]) -> bool:
    """Mirror of OpenZeppelin ``MerkleProof.verify`` (sorted-pair hashing)."""
    node = bytes(leaf)
    for sibling in proof:
        node = _hash_pair(node, bytes(sibling))
    return node == bytes(root)


def _by_address(values: Mapping[str, int], maximum: int, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for trainer, value in values.items():
        address = _address(trainer)
        if address in out:
            raise ValueError(f"trainer {address} appears twice")
        out[address] = _uint(value, maximum, f"{name} of {address}")
    return out


class ScoreTree:
    """Merkle tree of ``(trainer, score, weight)`` leaves as the aggregators attest them (a rejected update's leaf
    is ``(trainer, 0, 0)``).

    Leaves are ordered by trainer address ascending (as 20-byte integers); each level hashes adjacent
    pairs with sorted-pair keccak256; an odd node at the end of a level is promoted unchanged.  The root
    of an empty tree is defined as ``EMPTY_ROOT`` (32 zero bytes), which no proof can reach.
    """

    def __init__(self, scores: Mapping[str, int], weights: Mapping[str, int]) -> None:
        by_score = _by_address(scores, MAX_SCORE, "score")
        by_weight = _by_address(weights, _UINT64, "weight")
        if by_score.keys() != by_weight.keys():
            raise ValueError("scores and weights must name the same trainers")
        self.trainers: tuple[str, ...] = tuple(sorted(by_score, key=lambda a: int(a, 16)))
        self.scores: dict[str, int] = {t: by_score[t] for t in self.trainers}
        self.weights: dict[str, int] = {t: by_weight[t] for t in self.trainers}
        self._index = {t: i for i, t in enumerate(self.trainers)}
        self._levels: list[list[bytes]] = [[score_leaf(t, self.scores[t], self.weights[t]) for t in self.trainers]]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            above = [_hash_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            self._levels.append(above)

    def __len__(self) -> int:
        return len(self.trainers)

    @property
    def root(self) -> bytes:
        leaves = self._levels[-1]
        return leaves[0] if leaves else EMPTY_ROOT

    def leaf(self, trainer: str) -> bytes:
        return self._levels[0][self._position(trainer)]

    def _position(self, trainer: str) -> int:
        address = _address(trainer)
        if address not in self._index:
            raise KeyError(f"{address} has no leaf in this tree")
        return self._index[address]

    def proof(self, trainer: str) -> list[bytes]:
        """Sibling hashes from ``trainer``'s leaf to the root (``KeyError`` if it has no leaf)."""
        index = self._position(trainer)
        proof: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof


def total_weight(scores: Mapping[str, int], weights: Mapping[str, int]) -> int:
    """``sum(score * weight)`` over the trainers (the result's ``totalWeight``); both name the same trainers."""
    by_score = _by_address(scores, MAX_SCORE, "score")
    by_weight = _by_address(weights, _UINT64, "weight")
    if by_score.keys() != by_weight.keys():
        raise ValueError("scores and weights must name the same trainers")
    return sum(by_score[t] * by_weight[t] for t in by_score)


def reward_share(trainer_budget: int, score: int, weight: int, total: int) -> int:
    """A trainer's reward as ``RewardVault.claimReward`` pays it: ``trainerBudget * score * weight / totalWeight``,
    rounded down."""
    return int(trainer_budget) * int(score) * int(weight) // int(total)


def salt_message(domain: str, chain_id: int, contract: str, task_id: int, round_: int) -> bytes:
    """The message whose signature seeds a salt."""
    contract = _address(contract).lower()
    return f"{SALT_PREFIX}:{domain}:{chain_id}:{contract}:{task_id}:{round_}".encode()


def derive_salt(
    signer: Callable[[bytes], bytes], domain: str, chain_id: int, contract: str, task_id: int, round_: int
) -> bytes:
    """``keccak256(signer(salt_message(...)))``.  ``signer`` must be deterministic (RFC 6979 ECDSA is),
    so a restarted participant derives the same salt; nobody without the key can predict it."""
    signature = signer(salt_message(domain, chain_id, contract, task_id, round_))
    if not isinstance(signature, bytes | bytearray) or not signature:
        raise ValueError("signer must return non-empty signature bytes")
    return keccak(bytes(signature))


def ape_signer(account: Any) -> Callable[[bytes], bytes]:
    """A ``derive_salt`` signer using an ape account's EIP-191 ``sign_message`` (65-byte r||s||v)."""

    def sign(message: bytes) -> bytes:
        from eth_account.messages import encode_defunct

        signature = account.sign_message(encode_defunct(primitive=message))
        if signature is None:
            raise ValueError(f"account {account!r} refused to sign the salt message")
        return bytes(signature.encode_rsv())

    return sign

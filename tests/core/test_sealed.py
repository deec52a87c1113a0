"""Sealed validation sets: each section opens with its key only, and a hostile sealed file is a CodecError."""

from __future__ import annotations

import numpy as np
import pytest

from fedchain.codec import CodecError, ModelManifest, encode_model
from fedchain.sealed import KeyMismatch, is_sealed, key_hash, read_sealed, seal_dataset, section_of

X = np.arange(40, dtype=np.float32).reshape(10, 4)
Y = np.arange(10) % 3


def test_sections_open_round_by_round_with_their_own_keys() -> None:
    blob, keys = seal_dataset(X, Y, "val", 3)
    assert is_sealed(blob) and len(set(keys)) == 3
    sealed = read_sealed(blob)
    assert sealed.sections == 3 and list(sealed.key_hashes) == [key_hash(k) for k in keys]
    for round_ in range(1, 7):
        index = section_of(round_, 3)
        x, y = sealed.open(round_, keys[index])
        assert np.array_equal(x, X[index::3]) and np.array_equal(y, Y[index::3])
        with pytest.raises(KeyMismatch):
            sealed.open(round_, keys[(index + 1) % 3])
    with pytest.raises(KeyMismatch):
        sealed.open(1, keys[0][:16])
    assert X.tobytes()[:16] not in blob  # no plaintext rows
    again, _ = seal_dataset(X, Y, "val", 3, keys)
    assert again == blob  # deterministic given the keys
    assert seal_dataset(X, Y, "val", 3)[0] != blob  # fresh keys by default


def test_bad_parameters_are_refused() -> None:
    for sections in (0, 11):
        with pytest.raises(ValueError, match="sections"):
            seal_dataset(X, Y, "val", sections)
    with pytest.raises(ValueError, match="keys"):
        seal_dataset(X, Y, "val", 2, [b"\0" * 32, b"\1" * 32])  # a zero key is "not published" on chain
    with pytest.raises(ValueError):
        section_of(0, 2)


def _sealed_file(details: dict, tensors: dict | None = None) -> bytes:
    tensors = {"section.0000": np.zeros(8, np.uint8)} if tensors is None else tensors
    return encode_model(tensors, ModelManifest(kind="sealed_dataset", architecture="val", details=details))


def test_hostile_sealed_files_are_codec_errors() -> None:
    good_hash = "ab" * 32
    cases = [
        _sealed_file({"sections": 0, "key_hashes": []}),
        _sealed_file({"sections": True, "key_hashes": [good_hash]}),
        _sealed_file({"sections": 10**9, "key_hashes": [good_hash]}),
        _sealed_file({"sections": 2, "key_hashes": [good_hash, good_hash]}),  # one tensor for two sections
        _sealed_file({"sections": 1, "key_hashes": ["zz" * 32]}),
        _sealed_file({"sections": 1, "key_hashes": good_hash}),
        _sealed_file({"sections": 1}),
        _sealed_file({"sections": 1, "key_hashes": [good_hash]}, {"section.0000": np.zeros((2, 2), np.uint8)}),
        _sealed_file({"sections": 1, "key_hashes": [good_hash]}, {"section.0000": np.zeros(4, np.int32)}),
        encode_model({"x": np.zeros(2, np.float32)}, ModelManifest(kind="initial", architecture="val")),
        b"not a file",
    ]
    for blob in cases:
        with pytest.raises(CodecError):
            read_sealed(blob)
    assert not is_sealed(b"not a file")
    blob = _sealed_file({"sections": 1, "key_hashes": [key_hash(b"k" * 32).hex()]})
    with pytest.raises(CodecError):  # the right key, but the section is not a dataset
        read_sealed(blob).open(1, b"k" * 32)


def test_a_sponsors_keys_are_checked_against_the_sealed_file_before_publishing() -> None:
    from fedchain.errors import FedchainError
    from sponsor.keys import check_keys

    blob, keys = seal_dataset(X, Y, "val", 3)
    hashes = read_sealed(blob).key_hashes
    check_keys(keys, hashes)  # the right keys pass
    with pytest.raises(FedchainError, match="key 1 of the keys file does not open section 1"):
        check_keys([keys[0], keys[2], keys[1]], hashes)
    with pytest.raises(FedchainError, match="holds 2 key"):
        check_keys(keys[:2], hashes)
    _, other = seal_dataset(X, Y, "val", 3)
    with pytest.raises(FedchainError, match="key 0"):
        check_keys(other, hashes)

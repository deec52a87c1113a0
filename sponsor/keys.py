"""A sponsor's keys of sealed validation sets: kept on disk until due, published round by round.

The keys of a sealed file are written (mode 0600) to ``$FEDCHAIN_HOME/validation-keys/<file digest>.json`` before
the task is created, so a failure later loses nothing; ``publish_due_keys`` publishes, on ``ValidationKeys``,
the current round's key once its trainer phases are over (advancing the round first when its reveal phase is due).
Keys are secrets until published: they are never logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fedchain.config import settings
from fedchain.errors import FedchainError
from fedchain.sealed import KEY_BYTES, section_of

KEYS_DIR = "validation-keys"


def keys_path(digest: bytes) -> Path:
    """Where the keys of the sealed file with this sha256 are kept."""
    return settings().home / KEYS_DIR / f"{digest.hex()}.json"


def save_keys(digest: bytes, keys: list[bytes]) -> Path:
    """Write the keys (owner-only, atomically); returns the path."""
    path = keys_path(digest)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"sealed_sha256": digest.hex(), "keys": [k.hex() for k in keys]}, out)
    tmp.replace(path)
    return path


def load_keys(digest: bytes, path: Path | None = None) -> list[bytes]:
    """The keys of the sealed file with this sha256; ``FedchainError`` saying where they were looked for."""
    path = path or keys_path(digest)
    try:
        raw = json.loads(path.read_text())
        keys = [bytes.fromhex(k) for k in raw["keys"]]
        if raw["sealed_sha256"] != digest.hex() or not keys or any(len(k) != KEY_BYTES for k in keys):
            raise ValueError("not the keys of this task's validation set")
    except OSError as exc:
        raise FedchainError(f"no validation keys at {path} ({exc.strerror or exc}): the task's validation set is not "
                            "sealed, or it was sealed on another machine (copy its keys file there)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FedchainError(f"{path}: {exc}") from None
    return keys


def check_keys(keys: list[bytes], key_hashes: tuple[bytes, ...]) -> None:
    """``FedchainError`` unless ``keys`` are exactly the keys whose hashes the sealed file lists: a wrong key put
    on chain cannot be taken back, and the committee could not score its round."""
    from fedchain.sealed import key_hash

    if len(keys) != len(key_hashes):
        raise FedchainError(f"the keys file holds {len(keys)} key(s) but the sealed validation set has "
                            f"{len(key_hashes)} section(s): it is not this set's keys file")
    for index, (key, expected) in enumerate(zip(keys, key_hashes, strict=True)):
        if key_hash(key) != expected:
            raise FedchainError(f"key {index} of the keys file does not open section {index} of the sealed "
                                "validation set: the keys file was altered or belongs to another file")


def publish_due_keys(fed: Any, account: Any, task_id: int, keys: list[bytes]) -> list[int]:
    """Publish the current round's key when the round is in an aggregator phase (its trainers done, its committee
    at work) and its key is not on chain yet; returns the rounds published. A round past its reveal deadline is
    advanced first. Earlier rounds are finalized or failed: a key for them would score nothing."""
    from fedchain.ape.rounds import try_advance
    from fedchain.rounds import AGGREGATOR_PHASES

    if fed.validation_keys is None:
        raise FedchainError("this deployment has no ValidationKeys contract: sealed validation sets need one")
    task = fed.task(task_id)
    if task.sponsor.lower() != account.address.lower():
        raise FedchainError(f"task {task_id} belongs to {task.sponsor}; only its sponsor publishes its keys")
    if not fed.round(task_id, task.current_round).aggregation_reached:
        try_advance(fed, task_id, account)
        task = fed.task(task_id)
    round_ = task.current_round
    if fed.round(task_id, round_).phase not in AGGREGATOR_PHASES or fed.validation_key(task_id, round_):
        return []
    fed.send(f"publishing the validation key of task {task_id} round {round_}", fed.validation_keys.revealKey,
             task_id, round_, keys[section_of(round_, len(keys))], sender=account)
    return [round_]

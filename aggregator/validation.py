"""Checks an update file before it is aggregated; anything malformed becomes ``RejectedUpdate``."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from fedchain.codec import CodecError, ModelManifest, decode_model
from fedchain.modelfile import LazyTensors, open_model_file

FINITE_CHUNK = 1 << 22  # elements of a file's tensor checked for NaN/Inf at a time


class RejectedUpdate(Exception):
    """An update the aggregator refuses; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def validate_update(
    blob: bytes, expected_shapes: dict[str, tuple[int, ...]], max_bytes: int
) -> tuple[dict[str, np.ndarray], ModelManifest]:
    """Decode an update file and check kind, tensor names, dtypes, shapes and finiteness.

    Codes: ``too_large``, ``not_safetensors``, ``bad_manifest`` (also for a kind other than ``update``; the codec
    checks every manifest field's JSON type), ``wrong_keys``, ``bad_dtype``, ``wrong_shape``, ``non_finite``
    (``check_change`` adds ``absurd_update``).
    Never raises anything else for any input bytes.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise RejectedUpdate("not_safetensors", f"update is {type(blob).__name__}, not bytes")
    blob = bytes(blob)
    if len(blob) > max_bytes:
        raise RejectedUpdate("too_large", f"update is {len(blob)} bytes, limit {max_bytes}")
    try:
        tensors, manifest = decode_model(blob, max_bytes)
    except CodecError as exc:
        raise RejectedUpdate(exc.code, str(exc)) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a Rust panic in safetensors is a BaseException
        raise RejectedUpdate("not_safetensors", f"cannot decode update: {type(exc).__name__}: {exc}") from exc
    _check_tensors(tensors, manifest, expected_shapes)
    return {name: np.ascontiguousarray(tensors[name]) for name in sorted(tensors)}, manifest


def validate_update_file(path: str | os.PathLike[str], expected_shapes: dict[str, tuple[int, ...]], max_bytes: int,
                         code: str = "F32") -> tuple[LazyTensors, ModelManifest]:
    """``validate_update`` for a file on disk: the same checks and codes, reading one chunk of one tensor at a
    time; the tensors come back unread (``LazyTensors``, float32 when read). ``code``: the task's transport dtype
    (``TaskSpec.update_dtype``), which every tensor must be stored in."""
    try:
        tensors, manifest = open_model_file(path, max_bytes)
    except CodecError as exc:
        raise RejectedUpdate(exc.code, str(exc)) from exc
    except OSError as exc:
        raise RejectedUpdate("not_safetensors", f"cannot read update: {type(exc).__name__}: {exc}") from exc
    _check_tensors(tensors, manifest, expected_shapes, code)
    return tensors, manifest


def _check_tensors(tensors: Mapping[str, np.ndarray], manifest: ModelManifest,
                   expected_shapes: dict[str, tuple[int, ...]], code: str = "F32") -> None:
    if manifest.kind != "update":
        raise RejectedUpdate("bad_manifest", f"manifest kind is {manifest.kind!r}, expected 'update'")
    if set(tensors) != set(expected_shapes):
        missing = sorted(set(expected_shapes) - set(tensors))
        extra = sorted(set(tensors) - set(expected_shapes))
        raise RejectedUpdate("wrong_keys", f"missing tensors {missing[:10]}, unexpected tensors {extra[:10]}")
    lazy = isinstance(tensors, LazyTensors)
    for name in sorted(expected_shapes):
        if lazy and tensors.code(name) != code:
            raise RejectedUpdate("bad_dtype", f"tensor {name} is {tensors.code(name)}, the task's updates are {code}")
        dtype = tensors.dtype(name) if lazy else tensors[name].dtype
        shape = tensors.shape(name) if lazy else tuple(tensors[name].shape)
        if dtype != np.float32:
            raise RejectedUpdate("bad_dtype", f"tensor {name} is {dtype}, expected float32")
        if tuple(shape) != tuple(expected_shapes[name]):
            raise RejectedUpdate("wrong_shape", f"tensor {name} has shape {tuple(shape)}, expected "
                                                f"{expected_shapes[name]}")
        chunks = range(0, tensors.size(name), FINITE_CHUNK) if lazy else (None,)
        for start in chunks:
            values = tensors[name] if start is None else tensors.read(name, start, start + FINITE_CHUNK)
            if not np.isfinite(values).all():
                raise RejectedUpdate("non_finite", f"tensor {name} contains NaN or Inf")


def check_change(tensors: dict[str, np.ndarray], global_tensors: dict[str, np.ndarray], max_ratio: float) -> None:
    """``RejectedUpdate('absurd_update')`` when ``||w - g|| > max_ratio * max(||g||, 1)`` (float64): a bound every
    strategy applies, fedavg included, so that finite but absurd weights (e.g. every weight 1e38) never reach an
    aggregate."""
    change = squared = 0.0
    for name in sorted(global_tensors):
        g = np.asarray(global_tensors[name], dtype=np.float64).ravel()
        d = np.asarray(tensors[name], dtype=np.float64).ravel() - g
        change += float(np.dot(d, d))
        squared += float(np.dot(g, g))
    bound = max_ratio * max(squared ** 0.5, 1.0)
    if not change ** 0.5 <= bound:  # also catches an overflow to inf
        raise RejectedUpdate("absurd_update", f"the update changes the model by {change ** 0.5:.3g}, more than "
                                              f"{max_ratio:g} times the global model's norm ({bound:.3g})")

"""Checks an update file before it is aggregated; anything malformed becomes ``RejectedUpdate``."""

from __future__ import annotations

import numpy as np

from fedchain.codec import CodecError, ModelManifest, decode_model


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
    if manifest.kind != "update":
        raise RejectedUpdate("bad_manifest", f"manifest kind is {manifest.kind!r}, expected 'update'")
    if set(tensors) != set(expected_shapes):
        missing = sorted(set(expected_shapes) - set(tensors))
        extra = sorted(set(tensors) - set(expected_shapes))
        raise RejectedUpdate("wrong_keys", f"missing tensors {missing[:10]}, unexpected tensors {extra[:10]}")
    for name in sorted(expected_shapes):
        array = tensors[name]
        if array.dtype != np.float32:
            raise RejectedUpdate("bad_dtype", f"tensor {name} is {array.dtype}, expected float32")
        if tuple(array.shape) != tuple(expected_shapes[name]):
            raise RejectedUpdate(
                "wrong_shape",
                f"tensor {name} has shape {tuple(array.shape)}, expected {expected_shapes[name]}",
            )
        if not np.isfinite(array).all():
            raise RejectedUpdate("non_finite", f"tensor {name} contains NaN or Inf")
    return {name: np.ascontiguousarray(tensors[name]) for name in sorted(tensors)}, manifest


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

"""Model and dataset files: safetensors with a canonical JSON manifest in the header. Never pickle."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import safetensors.numpy

MANIFEST_KEY = "fedchain.manifest"
MODEL_FORMAT = "fedchain.model/1"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32  # nesting of objects and arrays in any JSON a stranger sends us
MAX_INT_DIGITS = 40  # larger than any uint256 (78 digits would be, but no manifest field needs more than 40)
MAX_FLOAT_CHARS = 40
KINDS = ("initial", "update", "aggregate", "dataset", "sealed_dataset")
DATA_KINDS = ("dataset", "sealed_dataset")  # files whose tensors are not float32 model weights


class CodecError(ValueError):
    """A file is not a valid fedchain model or dataset file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ModelManifest:
    """What a model file says about itself; stored as canonical JSON in the safetensors header."""

    kind: str
    architecture: str
    parent_cid: str = ""
    task_id: int = 0
    round: int = 0
    trainer: str = ""
    num_samples: int = 0
    epsilon_spent: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    format: str = MODEL_FORMAT

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelManifest:
        try:
            raw = loads_bounded(text)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise CodecError("bad_manifest", f"manifest is not acceptable JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != MODEL_FORMAT:
            raise CodecError("bad_manifest", f"manifest format is not {MODEL_FORMAT}")
        known = {f for f in cls.__dataclass_fields__}
        try:
            manifest = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise CodecError("bad_manifest", f"manifest is missing fields: {exc}") from exc
        manifest._check_types()
        if manifest.kind not in KINDS:
            raise CodecError("bad_manifest", f"unknown manifest kind {manifest.kind!r}")
        return manifest

    def _check_types(self) -> None:
        """Reject manifests whose fields have the wrong JSON types (files come from strangers)."""
        for name in ("kind", "architecture", "parent_cid", "trainer", "format"):
            if not isinstance(getattr(self, name), str):
                raise CodecError("bad_manifest", f"manifest field {name} must be a string")
        for name in ("task_id", "round", "num_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CodecError("bad_manifest", f"manifest field {name} must be a non-negative integer")
        if self.epsilon_spent is not None and not _is_finite_number(self.epsilon_spent):
            raise CodecError("bad_manifest", "manifest field epsilon_spent must be a number or null")
        if not isinstance(self.metrics, dict) or not all(
            isinstance(k, str) and _is_finite_number(v) for k, v in self.metrics.items()
        ):
            raise CodecError("bad_manifest", "manifest field metrics must map names to numbers")
        if not isinstance(self.details, dict):
            raise CodecError("bad_manifest", "manifest field details must be an object")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"JSON integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise ValueError(f"JSON number longer than {MAX_FLOAT_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"JSON number {text[:20]} is out of range")
    return value


def json_depth(data: bytes) -> int:
    """The deepest nesting of objects and arrays in JSON text (brackets inside strings do not count).

    Vectorised and linear in the length: a quote opens or closes a string unless an odd run of backslashes
    precedes it; brackets count only outside strings.
    """
    text = np.frombuffer(bytes(data), dtype=np.uint8)
    if not text.size:
        return 0
    index = np.arange(text.size)
    not_backslash = np.where(text != ord("\\"), index, -1)
    last_plain = np.maximum.accumulate(not_backslash)  # last position <= i that is not a backslash
    backslashes_before = np.empty_like(index)
    backslashes_before[0] = 0
    backslashes_before[1:] = index[:-1] - last_plain[:-1]
    quotes = (text == ord('"')) & (backslashes_before % 2 == 0)
    inside = (np.cumsum(quotes) - quotes) % 2 == 1  # after an opening quote and before its closing one
    outside = ~inside & ~quotes
    steps = np.zeros(text.size, dtype=np.int64)
    steps[outside & ((text == ord("[")) | (text == ord("{")))] = 1
    steps[outside & ((text == ord("]")) | (text == ord("}")))] = -1
    return int(np.cumsum(steps).max(initial=0))


def loads_bounded(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for untrusted text: nesting, integer digits and float length bounded, no NaN/Infinity.

    Raises ``ValueError`` (never ``RecursionError``) for anything over the bounds or not JSON.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if json_depth(raw) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ValueError(f"JSON is not UTF-8: {exc}") from None
    except RecursionError:  # unreachable after the depth check; kept so no caller ever sees one
        raise ValueError("JSON nested too deeply") from None


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encode_model(tensors: dict[str, np.ndarray], manifest: ModelManifest) -> bytes:
    """Serialise float32 tensors plus manifest; identical inputs give identical bytes."""
    clean: dict[str, np.ndarray] = {}
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        if manifest.kind not in DATA_KINDS and array.dtype != np.float32:
            raise CodecError("bad_dtype", f"tensor {name} is {array.dtype}, models are float32")
        clean[name] = array
    return safetensors.numpy.save(clean, metadata={MANIFEST_KEY: manifest.to_json()})


def read_header(blob: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Parse and bound the safetensors header without touching tensor data."""
    if len(blob) > max_bytes:
        raise CodecError("too_large", f"file is {len(blob)} bytes, limit {max_bytes}")
    if len(blob) < 8:
        raise CodecError("not_safetensors", "file is shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(blob):
        raise CodecError("not_safetensors", f"bad safetensors header length {header_len}")
    try:
        header = loads_bounded(blob[8 : 8 + header_len])
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CodecError("not_safetensors", f"safetensors header is not acceptable JSON: {exc}") from None
    if not isinstance(header, dict):
        raise CodecError("not_safetensors", "safetensors header is not an object")
    return header


def decode_model(
    blob: bytes, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[dict[str, np.ndarray], ModelManifest]:
    """Parse a model or dataset file; raise CodecError with a reason code on anything malformed."""
    header = read_header(blob, max_bytes)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise CodecError("bad_manifest", "file has no fedchain manifest")
    manifest = ModelManifest.from_json(metadata[MANIFEST_KEY])
    try:
        loaded = safetensors.numpy.load(bytes(blob))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - safetensors' own errors, and a Rust panic is a BaseException
        raise CodecError("not_safetensors", f"cannot decode tensors: {type(exc).__name__}: {exc}") from None
    # safetensors returns its tensors in no fixed order (it varies between processes): sort by name, so that
    # whatever iterates a decoded model (and draws random numbers per tensor) does so in one order everywhere
    tensors = {name: loaded[name] for name in sorted(loaded)}
    if manifest.kind not in DATA_KINDS:
        for name, array in tensors.items():
            if array.dtype != np.float32:
                raise CodecError("bad_dtype", f"tensor {name} is {array.dtype}, models are float32")
    return tensors, manifest


def encode_dataset(x: np.ndarray, y: np.ndarray, name: str) -> bytes:
    """A labelled dataset (features float32, labels int64) as a fedchain file."""
    manifest = ModelManifest(kind="dataset", architecture=name, num_samples=int(len(y)))
    tensors = {"x": np.asarray(x, dtype=np.float32), "y": np.asarray(y, dtype=np.int64)}
    return encode_model(tensors, manifest)


def decode_dataset(blob: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    tensors, manifest = decode_model(blob, max_bytes)
    if manifest.kind != "dataset" or set(tensors) != {"x", "y"}:
        raise CodecError("bad_manifest", "file is not a fedchain dataset")
    x, y = tensors["x"], tensors["y"]
    if x.dtype != np.float32 or y.dtype != np.int64:
        raise CodecError("bad_dtype", f"dataset dtypes x {x.dtype} y {y.dtype}, expected float32 and int64")
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise CodecError("bad_shape", f"dataset shapes x{x.shape} y{y.shape} do not match")
    if len(x) == 0 or x.shape[1] == 0:
        raise CodecError("bad_shape", f"dataset x{x.shape} has no rows or no features")
    if not np.isfinite(x).all():
        raise CodecError("non_finite", "dataset features contain NaN or Inf")
    if int(y.min()) < 0:
        raise CodecError("bad_labels", f"dataset labels include {int(y.min())}; labels are class indices >= 0")
    return x, y

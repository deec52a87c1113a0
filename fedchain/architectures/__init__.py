"""The architecture registry: ids, parameter specs, deterministic initial weights and the numpy forward pass.

An architecture id is ``"<family>:<arguments>"``, a short string stored on chain in each task and model manifest.
The family parses the arguments into an ``ArchitectureSpec``: the tensors a model file must hold (names, shapes,
float32), the input it takes (a row of ``num_features`` numbers) and its ``num_classes`` logits. Trainers build
the matching PyTorch module (``client.modules``); aggregators evaluate with the spec's float64 numpy forward
pass, which gives the same bits on every machine (``fedchain.architectures.numeric``).

Built-in families (docs/PROTOCOL.md, Architectures):

* ``mlp:<in>-<h1>-...-<out>``: ``Linear`` layers with ``ReLU`` between them.
* ``logreg:<in>-<out>``: one ``Linear`` layer.
* ``cnn:<C>x<H>x<W>-<c1>-...-<out>``: 3x3 convolutions (``c1``, ... channels) each followed by ``ReLU`` and a 2x2
  max-pool, then one ``Linear`` layer; an input row is the image flattened in (channel, row, column) order.

More families come from installed packages through the ``fedchain.architectures`` entry-point group (an entry
point named after the family, loading an ``ArchitectureFamily``). A family is looked up by name only: no model
code ever comes from the chain or the content store.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from fedchain.architectures.base import MAX_PARAMETERS, ArchitectureSpec, bounded_sizes
from fedchain.architectures.conv import ConvFamily
from fedchain.architectures.dense import DenseFamily

__all__ = [
    "MAX_PARAMETERS", "ArchitectureFamily", "ArchitectureSpec", "bounded_sizes", "check_dataset", "dataset_problem",
    "expected_shapes", "families", "initial_tensors", "model_problem", "parameter_spec_digest",
    "parse_architecture",
]

MAX_ID_LENGTH = 512
ENTRY_POINT_GROUP = "fedchain.architectures"
_FAMILY_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@runtime_checkable
class ArchitectureFamily(Protocol):
    """One family of architecture ids: ``parse`` turns the text after ``"<name>:"`` into a spec or raises
    ``ValueError`` saying what is wrong. ``usage`` is the id's grammar, shown in error messages."""

    name: str
    usage: str

    def parse(self, architecture: str, arguments: str) -> ArchitectureSpec: ...


_BUILTIN: dict[str, ArchitectureFamily] = {
    family.name: family for family in (DenseFamily("mlp"), DenseFamily("logreg"), ConvFamily())
}
_installed: dict[str, ArchitectureFamily | str] | None = None


def _installed_families() -> dict[str, ArchitectureFamily | str]:
    """Families from entry points (loaded once): the family, or why it could not be loaded."""
    global _installed
    if _installed is None:
        found: dict[str, ArchitectureFamily | str] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in _BUILTIN or not _FAMILY_NAME.fullmatch(point.name):
                continue  # built-in names cannot be replaced; odd names are ignored
            try:
                loaded = point.load()
                family = loaded() if isinstance(loaded, type) else loaded
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the other families
                found[point.name] = f"its package failed to load ({type(exc).__name__}: {exc})"
                continue
            if not isinstance(family, ArchitectureFamily) or family.name != point.name:
                found[point.name] = f"entry point {point.value} is not an ArchitectureFamily named {point.name!r}"
                continue
            found[point.name] = family
        _installed = found
    return _installed


def families() -> dict[str, str]:
    """Every family this process can serve -> its id grammar (built-in first, then installed)."""
    out = {name: family.usage for name, family in _BUILTIN.items()}
    out.update({name: f.usage for name, f in _installed_families().items() if not isinstance(f, str)})
    return out


def _family(name: str, architecture: str) -> ArchitectureFamily:
    family = _BUILTIN.get(name) or _installed_families().get(name)
    if isinstance(family, str):
        raise ValueError(f"architecture {architecture!r}: the installed family {name!r} is unusable: {family}")
    if family is None:
        known = ", ".join(f"'{usage}'" for usage in families().values())
        raise ValueError(
            f"unknown architecture {architecture!r}: expected one of {known} "
            f"(other families come from packages that register a {ENTRY_POINT_GROUP!r} entry point)"
        )
    return family


def parse_architecture(architecture: str) -> ArchitectureSpec:
    """Parse and bound an architecture id; ``ValueError`` with a clear message if it is not valid."""
    if not isinstance(architecture, str):
        raise ValueError(f"architecture id must be a string, got {type(architecture).__name__}")
    if len(architecture) > MAX_ID_LENGTH:
        raise ValueError(f"architecture id is longer than {MAX_ID_LENGTH} characters")
    name, sep, arguments = architecture.partition(":")
    family = _family(name if sep else "", architecture)
    try:
        spec = family.parse(architecture, arguments)
        if not isinstance(spec, ArchitectureSpec):
            raise ValueError(f"architecture {architecture!r}: family {name!r} did not return an ArchitectureSpec")
        _check_spec(architecture, spec)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's bug on a stranger's id is a refusal, never a crash
        raise ValueError(f"architecture {architecture!r}: family {name!r} failed on it "
                         f"({type(exc).__name__}: {exc})") from None
    return spec


def _check_spec(architecture: str, spec: ArchitectureSpec) -> None:
    """Bounds every spec must meet, whichever family made it."""
    shapes = spec.parameter_shapes()
    if not shapes or not all(isinstance(name, str) and name and len(name) <= 256 for name in shapes):
        raise ValueError(f"architecture {architecture!r} has no tensors or a tensor name that is empty or too long")
    if not all(s and all(isinstance(d, int) and d >= 1 for d in s) for s in shapes.values()):
        raise ValueError(f"architecture {architecture!r} has a tensor with an empty or non-positive shape")
    if spec.num_parameters() > MAX_PARAMETERS:
        raise ValueError(
            f"architecture {architecture!r} has {spec.num_parameters()} parameters, limit {MAX_PARAMETERS}"
        )
    if spec.num_classes < 2 or spec.num_features < 1:
        raise ValueError(f"architecture {architecture!r} needs at least one input and 2 output classes")


def expected_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of every tensor a model file for this architecture must hold."""
    return parse_architecture(architecture).parameter_shapes()


def parameter_spec_digest(architecture: str) -> bytes:
    """SHA-256 of the parameter spec (every tensor's name, shape and dtype, in the module's order, as canonical
    JSON): two implementations of an id agree on the model files they read and write iff their digests match."""
    shapes = parse_architecture(architecture).parameter_shapes()
    spec = [[name, list(shape), "float32"] for name, shape in shapes.items()]
    return hashlib.sha256(json.dumps(spec, separators=(",", ":")).encode()).digest()


def initial_tensors(architecture: str, seed: int) -> dict[str, np.ndarray]:
    """Deterministic float32 initial weights (PyTorch's default for Linear and Conv2d: U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for weights and biases), drawn in tensor order with numpy's PCG64, the same on every
    platform."""
    return parse_architecture(architecture).initial_tensors(seed)


def dataset_problem(architecture: str, x: np.ndarray, y: np.ndarray) -> str | None:
    """Why a labelled dataset cannot train or evaluate this architecture (None when it fits): rows, feature
    count, label range, finite features. One rule for trainers' data, sponsors' validation sets and the
    aggregator's evaluation."""
    spec = parse_architecture(architecture)
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        return f"data x{x.shape} y{y.shape} is not a table with one label per row"
    if len(x) == 0:
        return "the data has no rows"
    if x.shape[1] != spec.num_features:
        return f"the data has {x.shape[1]} features, {architecture} takes {spec.num_features}"
    if not np.issubdtype(y.dtype, np.integer):
        return f"labels are {y.dtype}, not integers"
    if int(y.min()) < 0 or int(y.max()) >= spec.num_classes:
        return (f"labels run from {int(y.min())} to {int(y.max())}; {architecture} has {spec.num_classes} classes "
                f"(labels 0..{spec.num_classes - 1})")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(np.asarray(x, dtype=np.float64)).all():
        return "the features contain NaN, infinite or non-numeric values"
    return None


def model_problem(architecture: str, tensors: dict[str, np.ndarray]) -> str | None:
    """Why these tensors are not a usable model of this architecture (None when they are): exactly its tensor
    names and shapes, float32, finite. One rule for sponsors' initial models and the aggregator's global model."""
    shapes = expected_shapes(architecture)
    found = {name: tuple(np.shape(t)) for name, t in tensors.items()}
    if found != shapes:
        missing, extra = sorted(set(shapes) - set(found)), sorted(set(found) - set(shapes))
        wrong = sorted(k for k in set(shapes) & set(found) if shapes[k] != found[k])
        parts = [f"missing {missing[:4]}" if missing else "", f"unexpected {len(extra)} tensor(s)" if extra else "",
                 f"wrong shape for {wrong[:4]}" if wrong else ""]
        return f"the tensors are not those of {architecture} ({', '.join(p for p in parts if p)})"
    if any(np.asarray(t).dtype != np.float32 for t in tensors.values()):
        return "the tensors are not all float32"
    if not all(np.isfinite(t).all() for t in tensors.values()):
        return "the tensors contain NaN or infinite values"
    return None


def check_dataset(architecture: str, x: np.ndarray, y: np.ndarray) -> None:
    """``ValueError`` saying why the data does not fit the architecture (see ``dataset_problem``)."""
    problem = dataset_problem(architecture, x, y)
    if problem is not None:
        raise ValueError(problem)

"""Architecture ids: parsing and bounds, the tensors a model file must hold, deterministic initial weights.

numpy only: the trainer builds the matching PyTorch module (``client.modules``), the aggregator evaluates with a
numpy forward pass (``aggregator.scoring``).

Supported ids (the ``architecture`` field of a task and of every model manifest):

* ``"mlp:<in>-<h1>-...-<out>"``: ``Linear`` layers with ``ReLU`` between them (no activation at the end).
* ``"logreg:<in>-<out>"``: a single ``Linear`` layer (multinomial logistic regression).

Tensors are named as the ``state_dict`` of the equivalent ``torch.nn.Sequential``: ``"0.weight"``, ``"0.bias"``,
``"2.weight"``, ... Outputs are logits for cross-entropy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MAX_PARAMETERS = 50_000_000
MAX_LAYER_WIDTH = 1_000_000
MAX_LAYERS = 64
MAX_ID_LENGTH = 512

_SIZE = re.compile(r"[1-9][0-9]{0,6}")


@dataclass(frozen=True)
class ArchitectureSpec:
    """A parsed architecture id."""

    family: str
    sizes: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return self.sizes[-1]

    @property
    def num_features(self) -> int:
        return self.sizes[0]

    def linear_names(self) -> list[tuple[str, str]]:
        """``(weight_name, bias_name)`` of each Linear layer in forward order."""
        return [(f"{2 * i}.weight", f"{2 * i}.bias") for i in range(len(self.sizes) - 1)]

    def num_parameters(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))


def parse_architecture(architecture: str) -> ArchitectureSpec:
    """Parse and bound an architecture id; ``ValueError`` with a clear message if it is not valid."""
    if not isinstance(architecture, str):
        raise ValueError(f"architecture id must be a string, got {type(architecture).__name__}")
    if len(architecture) > MAX_ID_LENGTH:
        raise ValueError(f"architecture id is longer than {MAX_ID_LENGTH} characters")
    family, sep, rest = architecture.partition(":")
    if not sep or family not in ("mlp", "logreg"):
        raise ValueError(
            f"unknown architecture {architecture!r}: "
            "expected 'mlp:<in>-<h1>-...-<out>' or 'logreg:<in>-<out>'"
        )
    parts = rest.split("-")
    if not all(_SIZE.fullmatch(p) for p in parts):
        raise ValueError(
            f"malformed architecture {architecture!r}: layer sizes must be positive integers "
            f"(no signs, spaces or leading zeros) of at most {MAX_LAYER_WIDTH} separated by '-'"
        )
    sizes = tuple(int(p) for p in parts)
    if family == "logreg" and len(sizes) != 2:
        raise ValueError(f"malformed architecture {architecture!r}: logreg takes exactly '<in>-<out>'")
    if len(sizes) < 2:
        raise ValueError(f"malformed architecture {architecture!r}: need at least '<in>-<out>'")
    if len(sizes) - 1 > MAX_LAYERS:
        raise ValueError(f"architecture {architecture!r} has more than {MAX_LAYERS} layers")
    if max(sizes) > MAX_LAYER_WIDTH:
        raise ValueError(f"architecture {architecture!r} has a layer wider than {MAX_LAYER_WIDTH}")
    if sizes[-1] < 2:
        raise ValueError(f"architecture {architecture!r} needs at least 2 output classes")
    spec = ArchitectureSpec(family, sizes)
    if spec.num_parameters() > MAX_PARAMETERS:
        raise ValueError(
            f"architecture {architecture!r} has {spec.num_parameters()} parameters, limit {MAX_PARAMETERS}"
        )
    return spec


def expected_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of every tensor a model file for this architecture must hold."""
    spec = parse_architecture(architecture)
    shapes: dict[str, tuple[int, ...]] = {}
    for (w, b), fan_in, fan_out in zip(spec.linear_names(), spec.sizes[:-1], spec.sizes[1:], strict=True):
        shapes[w] = (fan_out, fan_in)
        shapes[b] = (fan_out,)
    return shapes


def initial_tensors(architecture: str, seed: int) -> dict[str, np.ndarray]:
    """Deterministic float32 initial weights (PyTorch's Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))).

    Drawn with numpy's PCG64, which gives the same numbers on every platform.
    """
    spec = parse_architecture(architecture)
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for (w, b), fan_in, fan_out in zip(spec.linear_names(), spec.sizes[:-1], spec.sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        tensors[w] = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
        tensors[b] = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
    return tensors


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

"""Architecture registry: architecture ids <-> PyTorch modules and plain float32 tensor dicts.

Supported ids (the ``architecture`` field of a task and of every model manifest):

* ``"mlp:<in>-<h1>-...-<out>"``: ``Linear`` layers with ``ReLU`` between them (no activation at the end).
* ``"logreg:<in>-<out>"``: a single ``Linear`` layer (multinomial logistic regression).

Both are ``torch.nn.Sequential`` modules, so tensors are named ``"0.weight"``, ``"0.bias"``,
``"2.weight"``, ... exactly as in a plain ``state_dict``. Outputs are logits for cross-entropy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MAX_PARAMETERS = 50_000_000
MAX_LAYER_WIDTH = 1_000_000
MAX_LAYERS = 64
MAX_ID_LENGTH = 512
OPACUS_PREFIX = "_module."

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


def build_model(architecture: str) -> nn.Module:
    """A fresh (default-initialised) module for an architecture id."""
    spec = parse_architecture(architecture)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True)):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


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


def _strip_prefix(name: str) -> str:
    while name.startswith(OPACUS_PREFIX):
        name = name[len(OPACUS_PREFIX) :]
    return name


def _unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside an Opacus ``GradSampleModule`` (or the module itself)."""
    inner = getattr(module, "_module", None)
    return inner if isinstance(inner, nn.Module) else module


def to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """Plain ``state_dict`` names -> float32 contiguous copies; Opacus ``_module.`` prefixes stripped."""
    out: dict[str, np.ndarray] = {}
    for name, value in module.state_dict().items():
        clean = _strip_prefix(name)
        if clean in out:
            raise ValueError(f"duplicate tensor name {clean!r} after stripping Opacus prefixes")
        array = value.detach().cpu().numpy()
        out[clean] = np.ascontiguousarray(array, dtype=np.float32).copy()
    return out


def load_tensors(module: nn.Module, tensors: dict[str, np.ndarray]) -> None:
    """Copy named float32 tensors into a module; ``ValueError`` on missing, extra or misshapen tensors."""
    target = _unwrap(module)
    own = {name: tuple(value.shape) for name, value in target.state_dict().items()}
    given = {_strip_prefix(name): value for name, value in tensors.items()}
    if set(own) != set(given):
        missing = sorted(set(own) - set(given))
        extra = sorted(set(given) - set(own))
        raise ValueError(f"tensor names do not match the model: missing {missing}, extra {extra}")
    state: dict[str, torch.Tensor] = {}
    for name, shape in own.items():
        array = np.asarray(given[name])
        if tuple(array.shape) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(array.shape)}, model expects {shape}")
        state[name] = torch.from_numpy(np.array(array, dtype=np.float32, copy=True))
    target.load_state_dict(state, strict=True)

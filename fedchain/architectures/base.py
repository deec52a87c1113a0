"""What every architecture spec provides, and the bounds every family's ids are held to."""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod

import numpy as np

MAX_PARAMETERS = 1 << 30  # a 4 GiB float32 model: FEDCHAIN_MAX_MODEL_BYTES by default
MAX_LAYER_WIDTH = 1_000_000
MAX_LAYERS = 64
_CHUNK_ELEMENTS = 1 << 22  # bound on samples * activations per sample in one forward chunk
_SIZE = re.compile(r"[1-9][0-9]{0,6}")


def bounded_sizes(architecture: str, text: str, what: str = "layer sizes", sep: str = "-") -> tuple[int, ...]:
    """``"64-32-10"`` -> ``(64, 32, 10)``: positive integers of at most ``MAX_LAYER_WIDTH``, no signs, spaces or
    leading zeros, at most ``MAX_LAYERS + 1`` of them; ``ValueError`` naming the id otherwise."""
    parts = text.split(sep)
    if len(parts) > MAX_LAYERS + 1:
        raise ValueError(f"architecture {architecture!r} has more than {MAX_LAYERS} layers")
    if not all(_SIZE.fullmatch(p) for p in parts) or max(int(p) for p in parts) > MAX_LAYER_WIDTH:
        raise ValueError(
            f"malformed architecture {architecture!r}: {what} must be positive integers "
            f"(no signs, spaces or leading zeros) of at most {MAX_LAYER_WIDTH} separated by {sep!r}"
        )
    return tuple(int(p) for p in parts)


class ArchitectureSpec(ABC):
    """A parsed architecture id: its tensors, its input and output sizes, and its deterministic forward pass.

    Subclasses (one per family) implement ``parameter_shapes``, ``fan_in``, ``activations_per_sample`` and
    ``forward``; a family from a plugin also implements ``build_module`` (the PyTorch module trainers train).
    """

    architecture: str
    family: str

    @property
    @abstractmethod
    def num_features(self) -> int:
        """Numbers per input row (an image is flattened in channel, row, column order)."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Logits per row (labels are ``0..num_classes-1``)."""

    @abstractmethod
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape, in the module's ``state_dict`` order."""

    @abstractmethod
    def fan_in(self, name: str) -> int:
        """The fan-in that bounds tensor ``name``'s initial values (its layer's inputs per output)."""

    @abstractmethod
    def activations_per_sample(self) -> int:
        """The largest number of values one sample occupies in any layer (bounds the forward pass' memory)."""

    @abstractmethod
    def forward(self, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Float64 logits ``[n, classes]`` for float64 ``x`` ``[n, features]``, computed deterministically (only
        the elementwise operations of ``fedchain.architectures.numeric``: the same bits on every machine)."""

    def build_module(self) -> object:
        """The PyTorch module (built-in families are built by ``client.modules``; plugins override this)."""
        raise NotImplementedError(f"{self.architecture}: this family does not build a PyTorch module")

    def num_parameters(self) -> int:
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    def initial_tensors(self, seed: int) -> dict[str, np.ndarray]:
        """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every tensor in order, from numpy's PCG64 (platform-stable)."""
        rng = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for name, shape in self.parameter_shapes().items():
            bound = 1.0 / np.sqrt(self.fan_in(name))
            out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
        return out

    def logits(self, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """``forward`` in float64 over bounded chunks of rows."""
        weights = {name: np.asarray(tensors[name], dtype=np.float64) for name in self.parameter_shapes()}
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"x has shape {x.shape}, {self.architecture} expects [n, {self.num_features}]")
        chunk = max(1, _CHUNK_ELEMENTS // max(1, self.activations_per_sample()))
        parts = []
        with np.errstate(all="ignore"):
            for start in range(0, len(x), chunk):
                parts.append(self.forward(weights, x[start : start + chunk]))
        if not parts:
            return np.zeros((0, self.num_classes))
        return np.concatenate(parts)

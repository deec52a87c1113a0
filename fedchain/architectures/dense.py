"""``mlp:<in>-<h1>-...-<out>`` and ``logreg:<in>-<out>``: ``Linear`` layers with ``ReLU`` between them.

Tensors are named as the ``state_dict`` of the equivalent ``torch.nn.Sequential``: ``"0.weight"``, ``"0.bias"``,
``"2.weight"``, ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedchain.architectures.base import ArchitectureSpec, bounded_sizes
from fedchain.architectures.numeric import linear, relu


@dataclass(frozen=True)
class DenseSpec(ArchitectureSpec):
    """A stack of Linear layers of ``sizes[0] -> sizes[1] -> ...``."""

    architecture: str
    family: str
    sizes: tuple[int, ...]

    @property
    def num_features(self) -> int:
        return self.sizes[0]

    @property
    def num_classes(self) -> int:
        return self.sizes[-1]

    def linear_names(self) -> list[tuple[str, str]]:
        """``(weight_name, bias_name)`` of each Linear layer in forward order."""
        return [(f"{2 * i}.weight", f"{2 * i}.bias") for i in range(len(self.sizes) - 1)]

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for (w, b), fan_in, fan_out in zip(self.linear_names(), self.sizes[:-1], self.sizes[1:], strict=True):
            shapes[w] = (fan_out, fan_in)
            shapes[b] = (fan_out,)
        return shapes

    def fan_in(self, name: str) -> int:
        return self.sizes[int(name.split(".")[0]) // 2]

    def activations_per_sample(self) -> int:
        return max(self.sizes)

    def forward(self, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(self.linear_names()):
            h = linear(relu(h) if i > 0 else h, tensors[w], tensors[b])
        return h


class DenseFamily:
    """The ``mlp`` and ``logreg`` families."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.usage = "logreg:<in>-<out>" if name == "logreg" else "mlp:<in>-<h1>-...-<out>"

    def parse(self, architecture: str, arguments: str) -> DenseSpec:
        sizes = bounded_sizes(architecture, arguments)
        if self.name == "logreg" and len(sizes) != 2:
            raise ValueError(f"malformed architecture {architecture!r}: logreg takes exactly '<in>-<out>'")
        if len(sizes) < 2:
            raise ValueError(f"malformed architecture {architecture!r}: need at least '<in>-<out>'")
        if sizes[-1] < 2:
            raise ValueError(f"architecture {architecture!r} needs at least 2 output classes")
        return DenseSpec(architecture, self.name, sizes)

"""``bilinear:<in>-<hidden>-<out>``: two Linear layers with an elementwise square between them.

A sponsor's own family: a spec (tensor names and shapes, a deterministic numpy forward pass built from
``fedchain.architectures.numeric``) and the PyTorch module trainers train (``build_module``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedchain.architectures import ArchitectureSpec, bounded_sizes
from fedchain.architectures.numeric import linear


@dataclass(frozen=True)
class BilinearSpec(ArchitectureSpec):
    architecture: str
    family: str
    sizes: tuple[int, int, int]

    @property
    def num_features(self) -> int:
        return self.sizes[0]

    @property
    def num_classes(self) -> int:
        return self.sizes[2]

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        a, h, c = self.sizes
        return {"inner.weight": (h, a), "inner.bias": (h,), "outer.weight": (c, h), "outer.bias": (c,)}

    def fan_in(self, name: str) -> int:
        return self.sizes[0] if name.startswith("inner") else self.sizes[1]

    def activations_per_sample(self) -> int:
        return max(self.sizes)

    def forward(self, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        h = linear(x, tensors["inner.weight"], tensors["inner.bias"])
        return linear(h * h, tensors["outer.weight"], tensors["outer.bias"])

    def build_module(self) -> object:
        import torch
        from torch import nn

        a, h, c = self.sizes

        class Bilinear(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = nn.Linear(a, h)
                self.outer = nn.Linear(h, c)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.outer(self.inner(x).square())

        return Bilinear()


class BilinearFamily:
    name = "bilinear"
    usage = "bilinear:<in>-<hidden>-<out>"

    def parse(self, architecture: str, arguments: str) -> BilinearSpec:
        if arguments == "crash":  # a plugin bug: fedchain must turn it into a refusal, not a crash
            raise KeyError(arguments)
        sizes = bounded_sizes(architecture, arguments)
        if len(sizes) != 3:
            raise ValueError(f"malformed architecture {architecture!r}: expected {self.usage}")
        return BilinearSpec(architecture, self.name, (sizes[0], sizes[1], sizes[2]))

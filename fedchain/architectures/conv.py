"""``cnn:<C>x<H>x<W>-<c1>-...-<classes>``: a small convolutional network for images.

Each ``c_i`` is a 3x3 convolution (padding 1) with ``c_i`` output channels, followed by ``ReLU`` and a 2x2
max-pool; one ``Linear`` layer maps the last feature map to the classes. An input row is the ``C x H x W`` image
flattened in (channel, row, column) order. Tensors are named as the ``state_dict`` of

    Sequential(Unflatten(1, (C, H, W)), Conv2d, ReLU, MaxPool2d(2), ..., Flatten(), Linear)

(``"1.weight"``, ``"1.bias"``, ``"4.weight"``, ...). No BatchNorm: it mixes samples, which DP-SGD forbids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedchain.architectures.base import ArchitectureSpec, bounded_sizes
from fedchain.architectures.numeric import conv2d_same, linear, max_pool2, relu

KERNEL = 3
MAX_ACTIVATIONS = 1 << 22  # values one sample may occupy in any layer
MAX_CONV_LAYERS = 8
MAX_KERNEL_LOOPS = 1 << 16  # input channels x kernel cells over all convs: the numpy forward's Python-level loops


@dataclass(frozen=True)
class ConvSpec(ArchitectureSpec):
    """Input shape ``(C, H, W)``, conv channels and classes."""

    architecture: str
    family: str
    input_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    classes: int

    @property
    def num_features(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def num_classes(self) -> int:
        return self.classes

    def feature_maps(self) -> list[tuple[int, int, int]]:
        """``(channels, height, width)`` of the input and after each conv block."""
        c, h, w = self.input_shape
        maps = [(c, h, w)]
        for out in self.channels:
            h, w = h // 2, w // 2
            maps.append((out, h, w))
        return maps

    def conv_names(self) -> list[tuple[str, str]]:
        return [(f"{1 + 3 * i}.weight", f"{1 + 3 * i}.bias") for i in range(len(self.channels))]

    def head_names(self) -> tuple[str, str]:
        index = 2 + 3 * len(self.channels)
        return f"{index}.weight", f"{index}.bias"

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        maps = self.feature_maps()
        for (w, b), (c_in, _, _), out in zip(self.conv_names(), maps, self.channels, strict=False):
            shapes[w] = (out, c_in, KERNEL, KERNEL)
            shapes[b] = (out,)
        c, h, w_ = maps[-1]
        head_w, head_b = self.head_names()
        shapes[head_w] = (self.classes, c * h * w_)
        shapes[head_b] = (self.classes,)
        return shapes

    def fan_in(self, name: str) -> int:
        weight = name.rsplit(".", 1)[0] + ".weight"
        shape = self.parameter_shapes()[weight]
        return int(np.prod(shape[1:]))

    def activations_per_sample(self) -> int:
        maps = self.feature_maps()  # a conv's output has its input's height and width, before the pool
        c, h, w = maps[0]
        return max([c * h * w] + [out * h_in * w_in for (_, h_in, w_in), out in zip(maps, self.channels, strict=False)])

    def kernel_loops(self) -> int:
        return sum(c_in * KERNEL * KERNEL for c_in, _, _ in self.feature_maps()[:-1])

    def forward(self, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), *self.input_shape)
        for w, b in self.conv_names():
            h = max_pool2(relu(conv2d_same(h, tensors[w], tensors[b])))
        head_w, head_b = self.head_names()
        return linear(h.reshape(len(h), -1), tensors[head_w], tensors[head_b])


class ConvFamily:
    """The ``cnn`` family."""

    name = "cnn"
    usage = "cnn:<C>x<H>x<W>-<c1>-...-<classes>"

    def parse(self, architecture: str, arguments: str) -> ConvSpec:
        shape_text, sep, rest = arguments.partition("-")
        if not sep:
            raise ValueError(f"malformed architecture {architecture!r}: expected {self.usage}, e.g. cnn:1x8x8-16-32-10")
        shape = bounded_sizes(architecture, shape_text, "the input shape <C>x<H>x<W>", sep="x")
        sizes = bounded_sizes(architecture, rest, "channel and class counts")
        if len(shape) != 3:
            raise ValueError(f"malformed architecture {architecture!r}: the input shape must be <C>x<H>x<W>")
        if len(sizes) < 2:
            raise ValueError(f"malformed architecture {architecture!r}: need at least one conv layer and the classes")
        channels, classes = sizes[:-1], sizes[-1]
        if len(channels) > MAX_CONV_LAYERS:
            raise ValueError(f"architecture {architecture!r} has more than {MAX_CONV_LAYERS} conv layers")
        if classes < 2:
            raise ValueError(f"architecture {architecture!r} needs at least 2 output classes")
        _, height, width = shape
        if min(height, width) >> len(channels) < 1:
            raise ValueError(f"architecture {architecture!r}: a {height}x{width} image is too small for "
                             f"{len(channels)} 2x2 poolings")
        spec = ConvSpec(architecture, self.name, (shape[0], shape[1], shape[2]), channels, classes)
        if spec.activations_per_sample() > MAX_ACTIVATIONS:
            raise ValueError(f"architecture {architecture!r}: a layer holds {spec.activations_per_sample()} values "
                             f"per sample, limit {MAX_ACTIVATIONS}")
        if spec.kernel_loops() > MAX_KERNEL_LOOPS:
            raise ValueError(f"architecture {architecture!r}: its convolutions read {spec.kernel_loops()} input "
                             f"channel x kernel cells, limit {MAX_KERNEL_LOOPS}")
        return spec

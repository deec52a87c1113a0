"""Deterministic float64 layers for the aggregator's forward pass.

Every output element is computed by the same sequence of elementwise IEEE operations (multiply, add, max) in a
fixed order -- no BLAS, no reductions whose order depends on SIMD width or threads -- so two machines give the
same bits for the same inputs.
"""

from __future__ import annotations

import numpy as np


def linear(h: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``h @ weight.T + bias`` for ``h`` of shape ``[n, in]``, accumulated input feature by input feature (each
    feature's weights read as one contiguous row of ``weight.T``: the same products in the same order, without a
    strided column read per feature, which made large layers several times slower)."""
    out = np.broadcast_to(bias, (h.shape[0], bias.shape[0])).copy()
    columns = np.ascontiguousarray(weight.T)
    for k in range(columns.shape[0]):
        out += h[:, k : k + 1] * columns[k]
    return out


def conv2d_same(h: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A stride-1 convolution with zero padding ``k // 2`` (odd square kernels), as ``torch.nn.Conv2d(C, O, k,
    padding=k // 2)``: ``h`` is ``[n, C, H, W]``, ``weight`` ``[O, C, k, k]``; accumulated over (channel, row,
    column) of the kernel in that order."""
    n, channels, height, width = h.shape
    out_channels, _, k, _ = weight.shape
    pad = k // 2
    padded = np.zeros((n, channels, height + 2 * pad, width + 2 * pad))
    padded[:, :, pad : pad + height, pad : pad + width] = h
    out = np.broadcast_to(bias[None, :, None, None], (n, out_channels, height, width)).copy()
    for c in range(channels):
        for i in range(k):
            for j in range(k):
                out += padded[:, c : c + 1, i : i + height, j : j + width] * weight[None, :, c, i, j, None, None]
    return out


def max_pool2(h: np.ndarray) -> np.ndarray:
    """``torch.nn.MaxPool2d(2)``: 2x2 windows, stride 2, a trailing odd row or column dropped."""
    rows, cols = h.shape[2] // 2, h.shape[3] // 2
    h = h[:, :, : 2 * rows, : 2 * cols]
    top = np.maximum(h[:, :, 0::2, 0::2], h[:, :, 0::2, 1::2])
    bottom = np.maximum(h[:, :, 1::2, 0::2], h[:, :, 1::2, 1::2])
    return np.maximum(top, bottom)


def relu(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0.0)

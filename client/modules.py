"""PyTorch modules for architecture ids, and plain float32 tensor dicts in and out of them.

Built-in families are ``torch.nn.Sequential`` modules whose ``state_dict`` names are the spec's tensor names
(``fedchain.architectures``); a family from a plugin builds its own (``ArchitectureSpec.build_module``). Outputs
are logits for cross-entropy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedchain.architectures import ArchitectureSpec, parse_architecture
from fedchain.architectures.conv import KERNEL, ConvSpec
from fedchain.architectures.dense import DenseSpec

OPACUS_PREFIX = "_module."


def build_model(architecture: str) -> nn.Module:
    """A fresh (default-initialised) module for an architecture id; ``ValueError`` when its tensors are not the
    spec's (a plugin whose module and spec disagree)."""
    spec = parse_architecture(architecture)
    model = _build(spec)
    own = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    if own != spec.parameter_shapes():
        raise ValueError(f"{architecture}: the module's tensors {sorted(own)[:4]} are not the spec's parameter spec")
    return model


def _build(spec: ArchitectureSpec) -> nn.Module:
    if isinstance(spec, DenseSpec):
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True)):
            if i > 0:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(fan_in, fan_out))
        return nn.Sequential(*layers)
    if isinstance(spec, ConvSpec):
        maps = spec.feature_maps()
        layers = [nn.Unflatten(1, spec.input_shape)]
        for (c_in, _, _), out in zip(maps, spec.channels, strict=False):
            layers += [nn.Conv2d(c_in, out, KERNEL, padding=KERNEL // 2), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = maps[-1]
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, spec.classes))
    module = spec.build_module()
    if not isinstance(module, nn.Module):
        raise ValueError(f"{spec.architecture}: build_module() returned {type(module).__name__}, not a torch module")
    return module


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

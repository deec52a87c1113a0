"""DP-SGD for the trainer: Poisson batches, ghost clipping and Opacus' DP optimizer and accountant.

For a ``Sequential`` of ``Linear`` layers and parameter-free element-wise layers (every registered architecture),
``DirectGhostClipping`` computes the per-sample gradient norms and the clipped gradient sum straight from the
layers' inputs and output gradients, in one forward and one backward pass. Opacus' own ghost clipping gets the
same quantities through module hooks and a second backward pass, which on small models costs several times the
non-private step (bench/results/dp_throughput.md). Noise, scaling, the optimizer step and the privacy accounting
stay Opacus': ``DPOptimizerFastGradientClipping`` and its accountants. Any other model goes through Opacus'
``GradSampleModuleFastGradientClipping`` (ghost clipping where a layer has a norm formula, per-sample gradients
for the others). Both paths give the same parameters for the same seeds (tests/ml/test_dp_step.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from client.batches import PoissonBatches, TensorBatches, batches_per_epoch, keep_batch

# Layers without parameters whose output for a sample depends on that sample only.
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Identity)
# Opacus' ghost clipping divides by ``norm + 1e-6`` (GradSampleModuleFastGradientClipping.get_clipping_coef).
NORM_EPSILON = 1e-6

GradientStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def supports_direct_clipping(model: nn.Module) -> bool:
    """Whether ``DirectGhostClipping`` handles ``model``: a ``Sequential`` of ``Linear`` and element-wise layers."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return False
    layers = list(model)
    return any(type(layer) is nn.Linear for layer in layers) and all(
        type(layer) is nn.Linear or (isinstance(layer, ELEMENTWISE) and not any(True for _ in layer.parameters()))
        for layer in layers
    )


class DirectGhostClipping:
    """Clipped per-sample gradient sum of a batch, written to ``p.grad`` for Opacus' ghost-clipping optimizer.

    For a ``Linear`` layer with input ``a_i`` and output gradient ``g_i`` of sample ``i`` (2-D inputs), the
    per-sample gradient is ``g_i a_i^T`` (weight) and ``g_i`` (bias), so its squared norm is
    ``|g_i|^2 (|a_i|^2 + 1)`` -- Opacus' ``compute_linear_norm_sample``. The sample's norm over all layers is
    ``n_i``, its clipping factor ``c_i = min(1, C / (n_i + 1e-6))`` and the clipped sum ``sum_i c_i g_i a_i^T``
    is one matrix product per layer. Calling the object on a batch returns the per-sample losses (detached).
    """

    def __init__(self, model: nn.Sequential, per_sample_loss: nn.Module, max_grad_norm: float) -> None:
        if not supports_direct_clipping(model):
            raise ValueError("direct ghost clipping needs a Sequential of Linear and element-wise layers")
        if max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be positive")
        self.layers = list(model)
        self.linears = [layer for layer in self.layers if type(layer) is nn.Linear]
        self.per_sample_loss = per_sample_loss
        self.max_grad_norm = float(max_grad_norm)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:  # the norm formula above is for one feature vector per sample
            raise ValueError(f"direct ghost clipping needs inputs of shape [batch, features], got {tuple(x.shape)}")
        inputs: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        hidden = x
        for layer in self.layers:
            if type(layer) is nn.Linear:
                inputs.append(hidden.detach())
                hidden = layer(hidden)
                outputs.append(hidden)
            else:
                hidden = layer(hidden)
        losses = self.per_sample_loss(hidden, y)
        output_grads = torch.autograd.grad(losses.sum(), outputs)
        with torch.no_grad():
            squared: torch.Tensor | None = None
            for layer, a, g in zip(self.linears, inputs, output_grads, strict=True):
                term = g.square().sum(1) * (a.square().sum(1) + (1.0 if layer.bias is not None else 0.0))
                squared = term if squared is None else squared + term
            assert squared is not None
            factor = (self.max_grad_norm / (squared.sqrt() + NORM_EPSILON)).clamp(max=1.0).unsqueeze(1)
            for layer, a, g in zip(self.linears, inputs, output_grads, strict=True):
                clipped = g * factor
                layer.weight.grad = clipped.t() @ a
                if layer.bias is not None:
                    layer.bias.grad = clipped.sum(0)
        return losses.detach()


def ghost_clipping_optimizer(optimizer: torch.optim.Optimizer, noise_multiplier: float, max_grad_norm: float,
                             expected_batch_size: int, generator: torch.Generator) -> torch.optim.Optimizer:
    """Opacus' ghost-clipping DP optimizer around ``optimizer`` (mean loss reduction, as Opacus' default)."""
    return _ghost_optimizer_class()(
        optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
        expected_batch_size=expected_batch_size, loss_reduction="mean", generator=generator, secure_mode=False,
    )


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                 batch_size: int, noise_multiplier: float, max_grad_norm: float, accountant: str,
                 data_generator: torch.Generator, noise_generator: torch.Generator,
                 ) -> tuple[object, GradientStep, torch.optim.Optimizer, PoissonBatches | object]:
    """``(accountant, gradient_step, dp_optimizer, batches)`` for DP-SGD with ghost clipping.

    ``gradient_step(x, y)`` leaves the clipped gradient sum in ``p.grad`` and returns the batch's mean loss
    (detached); ``dp_optimizer.step()`` then adds the noise, averages, steps and records the step in
    ``accountant.history``. The sample rate is ``1 / ceil(n / batch_size)`` as in Opacus' Poisson data loader.
    """
    from opacus.accountants import create_accountant

    steps = batches_per_epoch(len(x), batch_size)
    sample_rate = 1.0 / steps
    expected_batch_size = int(len(x) * sample_rate)  # as PrivacyEngine.make_private computes it
    ledger = create_accountant(mechanism=accountant)
    if not supports_direct_clipping(model):
        return _opacus_ghost(model, optimizer, x, y, batch_size, noise_multiplier, max_grad_norm, ledger,
                             data_generator, noise_generator)
    dp_optimizer = ghost_clipping_optimizer(optimizer, noise_multiplier, max_grad_norm, expected_batch_size,
                                            noise_generator)
    dp_optimizer.attach_step_hook(ledger.get_optimizer_hook_fn(sample_rate=sample_rate))
    clipping = DirectGhostClipping(model, nn.CrossEntropyLoss(reduction="none"), max_grad_norm)

    def gradient_step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return clipping(xb, yb).mean()

    return ledger, gradient_step, dp_optimizer, PoissonBatches(x, y, steps, data_generator)


def _opacus_ghost(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  batch_size: int, noise_multiplier: float, max_grad_norm: float, ledger: object,
                  data_generator: torch.Generator, noise_generator: torch.Generator,
                  ) -> tuple[object, GradientStep, torch.optim.Optimizer, object]:
    """Opacus' ``PrivacyEngine`` with ``grad_sample_mode="ghost"``, for models ``DirectGhostClipping`` does not
    handle (hooks on every layer; per-sample gradients for layers without a ghost norm formula)."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "secure RNG off" and backward-hook notices
        engine = PrivacyEngine(secure_mode=False)
        engine.accountant = ledger
        net, dp_optimizer, dp_loss, loader = engine.make_private(
            module=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
            data_loader=DataLoader(TensorBatches(x, y), batch_size=batch_size, collate_fn=keep_batch,
                                   generator=data_generator),
            noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, poisson_sampling=True,
            grad_sample_mode="ghost", noise_generator=noise_generator,
        )
    dp_optimizer.__class__ = _ghost_optimizer_class()

    def gradient_step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = dp_loss(net(xb), yb)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss.backward()
        return loss.detach()

    return ledger, gradient_step, dp_optimizer, loader


_GHOST_OPTIMIZER: type | None = None


def _ghost_optimizer_class() -> type:
    """Opacus' ``DPOptimizerFastGradientClipping`` with ``accumulate`` copying the clipped gradient with
    ``Tensor.clone`` instead of ``copy.deepcopy`` (a Python-level deep copy per parameter per step; the values are
    identical). Noise, scaling and accounting are Opacus' own."""
    global _GHOST_OPTIMIZER
    if _GHOST_OPTIMIZER is None:
        from opacus.optimizers import DPOptimizerFastGradientClipping

        class _GhostClippingOptimizer(DPOptimizerFastGradientClipping):
            def accumulate(self) -> None:
                for p in self.params:
                    if p.summed_grad is not None:
                        p.summed_grad.add_(p.grad.detach())
                    else:
                        p.summed_grad = p.grad.detach().clone()

        _GHOST_OPTIMIZER = _GhostClippingOptimizer
    return _GHOST_OPTIMIZER

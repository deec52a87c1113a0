"""Local training of one trainer's update: plain SGD or DP-SGD with Opacus (Poisson sampling)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from client.batches import TensorBatches, batches_per_epoch, keep_batch
from client.dp_step import GradientStep, make_private
from client.modules import build_model, load_tensors, to_numpy
from fedchain.architectures import check_dataset, model_problem, parameter_spec_digest

GRAD_SAMPLE_MODES = ("ghost",)
# Local training defaults when the trainer trains with DP-SGD (a target epsilon or a task with a DP bound):
# the configuration that reaches the accuracy target at epsilon 3 in bench/dp_accuracy.py (with a `logreg:64-10`
# task aggregated by FedAvgM; see bench/results/dp_accuracy.md for what else was tried). DP-SGD spends
# budget per step, so few epochs with a large step and no local momentum (each round starts a fresh optimizer, so
# momentum barely builds up within a round's few steps) beat the non-private defaults, which are tuned for many
# cheap steps.
DP_DEFAULTS: dict[str, float | int] = {"epochs": 2, "batch_size": 64, "lr": 0.5, "momentum": 0.0, "max_grad_norm": 1.0}


@dataclass
class TrainConfig:
    """Local training hyper-parameters. Defaults are tuned for ``mlp:64-32-10`` on digits (see tests/ml).

    ``proximal_mu > 0`` adds FedProx's ``mu/2 * ||w - w_global||^2``, applied as a separate gradient step
    after each optimizer step; the term does not depend on the data, so under DP it is post-processing.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    dp: bool = False
    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    grad_sample_mode: str = "ghost"
    proximal_mu: float = 0.0
    accountant: str = "rdp"

    def check(self) -> None:
        """``ValueError`` for settings that cannot train."""
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and self.proximal_mu >= 0):
            raise ValueError("need lr > 0, 0 <= momentum < 1 and proximal_mu >= 0")
        if self.dp:
            if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
                raise ValueError(f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}")
            if not (self.noise_multiplier >= 0 and self.max_grad_norm > 0):
                raise ValueError("need noise_multiplier >= 0 and max_grad_norm > 0")
            if self.accountant not in ("rdp", "prv", "gdp"):
                raise ValueError("accountant must be one of rdp, prv, gdp")


def default_train_config(private: bool, **overrides: object) -> TrainConfig:
    """The trainer's settings: ``TrainConfig``'s defaults, or ``DP_DEFAULTS`` for a trainer that trains with DP,
    with every override that is not ``None`` applied on top."""
    fields: dict[str, object] = dict(DP_DEFAULTS) if private else {}
    fields.update({name: value for name, value in overrides.items() if value is not None})
    return TrainConfig(**fields)  # type: ignore[arg-type]


@dataclass
class TrainResult:
    """The trained tensors (clean ``state_dict`` names, float32) and what the round needs to report.

    ``dp_history`` is the history of Opacus' own accountant after the round (``(noise, rate, steps)`` entries;
    empty without DP), so callers can check their accounting against the engine's.
    """

    tensors: dict[str, np.ndarray]
    num_samples: int
    train_loss: float
    steps: int
    sample_rate: float
    dp_history: list[tuple[float, float, int]] = field(default_factory=list)


def dp_schedule(num_samples: int, config: TrainConfig) -> tuple[float, int]:
    """``(sample_rate, steps_per_round)`` that ``train_local`` will use for ``num_samples`` samples.

    Opacus' Poisson loader samples each point with probability ``1 / ceil(n / batch_size)`` and runs that
    many steps per epoch. Use this to plan the noise multiplier before training.
    """
    if num_samples < 1:
        raise ValueError("need at least one training sample")
    batches = batches_per_epoch(num_samples, config.batch_size)
    return 1.0 / batches, batches * config.epochs


def _seeds(seed: int) -> tuple[int, int]:
    """Independent seeds for batch sampling and DP noise, derived from one seed."""
    a, b = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    return int(a >> np.uint64(1)), int(b >> np.uint64(1))


def _check_data(architecture: str, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    check_dataset(architecture, x, y)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x32).all():
        raise ValueError("the features overflow float32")
    return torch.from_numpy(x32.copy()), torch.from_numpy(np.asarray(y, dtype=np.int64).copy())


def train_local(
    architecture: str,
    global_tensors: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig | None = None,
) -> TrainResult:
    """Train from ``global_tensors`` on local ``(x, y)``; seeded and reproducible on one machine."""
    config = config or TrainConfig()
    config.check()
    xt, yt = _check_data(architecture, x, y)
    data_seed, noise_seed = _seeds(config.seed)

    problem = model_problem(architecture, global_tensors)
    if problem is not None:  # e.g. a plugin family installed here in another version than the sponsor's
        raise ValueError(f"the global model is not a model of {architecture} as this machine implements it "
                         f"(parameter spec {parameter_spec_digest(architecture).hex()[:16]}): {problem}")
    model = build_model(architecture)
    load_tensors(model, global_tensors)
    anchor = [p.detach().clone() for p in model.parameters()] if config.proximal_mu > 0 else []
    optimizer: torch.optim.Optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum
    )
    accountant = None
    if config.dp:
        accountant, gradient_step, optimizer, batches = make_private(
            model, optimizer, xt, yt, batch_size=config.batch_size, noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.max_grad_norm, accountant=config.accountant,
            data_generator=torch.Generator().manual_seed(data_seed),
            noise_generator=torch.Generator().manual_seed(noise_seed),
        )
        sample_rate = 1.0 / len(batches)
    else:
        batches = DataLoader(TensorBatches(xt, yt), batch_size=config.batch_size, collate_fn=keep_batch,
                             shuffle=True, generator=torch.Generator().manual_seed(data_seed))
        gradient_step = _plain_gradient_step(model)
        sample_rate, _ = dp_schedule(len(xt), config)

    model.train()
    steps, loss_sum, seen = _run_epochs(model, gradient_step, optimizer, batches, config, anchor)
    tensors = to_numpy(model)
    for name, array in tensors.items():
        if not np.isfinite(array).all():
            raise FloatingPointError(f"training diverged: tensor {name} is not finite (lower the lr)")
    train_loss = loss_sum / seen if seen else float("nan")
    history = [(float(z), float(q), int(n)) for z, q, n in accountant.history] if accountant else []
    return TrainResult(tensors, int(len(xt)), train_loss, steps, float(sample_rate), history)


def _plain_gradient_step(model: nn.Module) -> GradientStep:
    """Non-private: the batch's mean cross-entropy, back-propagated into ``p.grad``."""
    criterion = nn.CrossEntropyLoss()

    def gradient_step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = criterion(model(xb), yb)
        loss.backward()
        return loss.detach()

    return gradient_step


def _run_epochs(
    model: nn.Module,
    gradient_step: GradientStep,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    config: TrainConfig,
    anchor: list[torch.Tensor],
) -> tuple[int, float, int]:
    """The SGD loop; returns (steps, summed loss of the last epoch, samples seen in the last epoch).

    The last epoch's batch losses are kept as tensors and summed once at the end: no ``.item()`` per step.
    """
    steps = 0
    batch_losses: list[torch.Tensor] = []
    batch_sizes: list[int] = []
    for epoch in range(config.epochs):
        last_epoch = epoch == config.epochs - 1
        for xb, yb in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = gradient_step(xb, yb)
            optimizer.step()  # under DP: add noise (also for an empty Poisson batch), average, step, account
            steps += 1
            if anchor:
                _proximal_step(model, anchor, config.lr * config.proximal_mu)
            if last_epoch and len(yb) > 0:
                batch_losses.append(loss)
                batch_sizes.append(len(yb))
    if not batch_losses:
        return steps, 0.0, 0
    sizes = torch.tensor(batch_sizes, dtype=torch.float64)
    return steps, float((torch.stack(batch_losses).double() * sizes).sum()), sum(batch_sizes)


@torch.no_grad()
def _proximal_step(model: nn.Module, anchor: list[torch.Tensor], step: float) -> None:
    """``w -= lr * mu * (w - w_global)``: the gradient step of FedProx's proximal term."""
    for param, ref in zip(model.parameters(), anchor, strict=True):
        param.sub_(step * (param - ref))

"""The trainer's DP-SGD step computes what stock Opacus computes: the same Poisson batches, per-sample norms,
clipped sums, noise, parameters and accounting for the same seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from opacus.data_loader import DPDataLoader
from opacus.grad_sample.linear import compute_linear_norm_sample
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import client.dp_step as dp_step
from client.batches import PoissonBatches
from client.modules import build_model, load_tensors
from client.trainer import TrainConfig, dp_schedule, train_local
from fedchain.architectures import initial_tensors
from fedchain.data import load_dataset


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_dataset("digits")
    return torch.from_numpy(x[:300].astype(np.float32)), torch.from_numpy(y[:300].astype(np.int64))


def _model(architecture: str) -> nn.Module:
    model = build_model(architecture)
    load_tensors(model, initial_tensors(architecture, 4))
    return model


def _train_direct(architecture, x, y, steps, noise=0.7, clip=0.5, batch_size=40):
    model = _model(architecture)
    ledger, gradient_step, optimizer, batches = dp_step.make_private(
        model, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5), x, y, batch_size=batch_size,
        noise_multiplier=noise, max_grad_norm=clip, accountant="rdp",
        data_generator=torch.Generator().manual_seed(11), noise_generator=torch.Generator().manual_seed(12))
    losses = []
    for _, (xb, yb) in zip(range(steps), batches, strict=False):
        optimizer.zero_grad(set_to_none=True)
        losses.append(gradient_step(xb, yb))
        optimizer.step()
    return model, ledger.history, losses


def _train_stock_opacus(architecture, x, y, steps, mode, noise=0.7, clip=0.5, batch_size=40):
    """Opacus as documented: PrivacyEngine.make_private with the same generators."""
    model = _model(architecture)
    engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, generator=torch.Generator().manual_seed(11))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = engine.make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5),
            criterion=nn.CrossEntropyLoss(), data_loader=loader, noise_multiplier=noise, max_grad_norm=clip,
            poisson_sampling=True, grad_sample_mode=mode, noise_generator=torch.Generator().manual_seed(12))
        if mode == "ghost":
            net, optimizer, loss_fn, loader = wrapped
        else:
            (net, optimizer, loader), loss_fn = wrapped, nn.CrossEntropyLoss()
        losses = []
        for _, (xb, yb) in zip(range(steps), loader, strict=False):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return model, engine.accountant.history, losses


@pytest.mark.parametrize("architecture", ["logreg:64-10", "mlp:64-32-10", "mlp:64-16-16-10"])
@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_direct_ghost_clipping_trains_like_stock_opacus(digits, architecture, mode):
    direct, direct_history, direct_losses = _train_direct(architecture, *digits, steps=8)
    stock, stock_history, stock_losses = _train_stock_opacus(architecture, *digits, steps=8, mode=mode)
    assert direct_history == stock_history == [(0.7, 1 / 8, 8)]
    for (name, a), (_, b) in zip(direct.state_dict().items(), stock.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(torch.stack(direct_losses), torch.stack(stock_losses), rtol=1e-5, atol=1e-6)
    assert not torch.equal(direct.state_dict()["0.weight"], _model(architecture).state_dict()["0.weight"])


def _tanh_model_without_last_bias() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 10, bias=False))


@pytest.mark.parametrize("build", [lambda: _model("mlp:64-16-16-10"), _tanh_model_without_last_bias])
def test_clipped_sum_and_norms_match_per_sample_autograd(digits, build):
    """Ground truth without Opacus: one backward pass per sample, norms and clipping by hand."""
    x, y = digits[0][:12], digits[1][:12]
    model = build()
    count = len(list(model.parameters()))
    per_sample = []
    for i in range(len(x)):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        per_sample.append([p.grad.clone() for p in model.parameters()])
    norms = torch.stack([torch.sqrt(sum(g.square().sum() for g in grads)) for grads in per_sample])
    clip = float(norms.median())
    factors = (clip / (norms + dp_step.NORM_EPSILON)).clamp(max=1.0)
    assert (factors < 1).any() and (factors == 1).any()  # both regimes are exercised
    expected = [sum(f * grads[k] for f, grads in zip(factors, per_sample, strict=True)) for k in range(count)]

    model.zero_grad()
    losses = dp_step.DirectGhostClipping(model, nn.CrossEntropyLoss(reduction="none"), clip)(x, y)
    assert losses.shape == (12,)
    for p, want in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="batch, features"):
        dp_step.DirectGhostClipping(model, nn.CrossEntropyLoss(reduction="none"), clip)(x.view(12, 8, 8), y)


def test_per_sample_norm_is_opacus_linear_norm_sampler(digits):
    x = digits[0][:16]
    layer = nn.Linear(64, 10)
    g = torch.randn(16, 10, generator=torch.Generator().manual_seed(1))
    norms = compute_linear_norm_sample(layer, [x], g)
    opacus_norm = torch.stack(list(norms.values())).norm(2, dim=0)
    ours = torch.sqrt(g.square().sum(1) * (x.square().sum(1) + 1))
    torch.testing.assert_close(ours, opacus_norm)


def test_poisson_batches_are_opacus_data_loader_batches(digits):
    x, y = digits
    ours = PoissonBatches(x, y, 7, torch.Generator().manual_seed(3))
    loader = DPDataLoader.from_data_loader(DataLoader(TensorDataset(x, y), batch_size=43),
                                           generator=torch.Generator().manual_seed(3))
    assert len(ours) == len(loader) == 7 and loader.sample_rate == pytest.approx(1 / 7)
    sizes = []
    for _epoch in range(2):
        for (xb, yb), (xs, ys) in zip(ours, loader, strict=True):
            assert torch.equal(xb, xs) and torch.equal(yb, ys)
            sizes.append(len(yb))
    assert len(set(sizes)) > 1  # Poisson: the batch size varies around 300 / 7
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            PoissonBatches(x, y, bad, torch.Generator())


def test_every_planned_step_runs_where_opacus_sampler_would_run_one_fewer(digits):
    """93 batches per epoch: Opacus' sampler runs int(1 / (1 / 93)) == 92 steps; the trainer runs the 93 that
    ``dp_schedule`` planned (and the accountant records), so the plan and the history agree."""
    assert int(1 / (1 / 93)) == 92
    x, y = (t[:93].numpy() for t in digits)
    config = TrainConfig(epochs=2, batch_size=1, seed=1, dp=True, noise_multiplier=1.0)
    result = train_local("logreg:64-10", initial_tensors("logreg:64-10", 0), x, y, config)
    assert dp_schedule(93, config) == (1 / 93, 186)
    assert result.steps == 186 and result.dp_history == [(1.0, 1 / 93, 186)]


def test_an_empty_poisson_batch_still_adds_noise_and_counts(digits):
    model = _model("logreg:64-10")
    before = model.state_dict()["0.weight"].clone()
    ledger, gradient_step, optimizer, _ = dp_step.make_private(
        model, torch.optim.SGD(model.parameters(), lr=0.1), *digits, batch_size=30, noise_multiplier=1.0,
        max_grad_norm=1.0, accountant="rdp", data_generator=torch.Generator().manual_seed(0),
        noise_generator=torch.Generator().manual_seed(0))
    optimizer.zero_grad(set_to_none=True)
    loss = gradient_step(digits[0][:0], digits[1][:0])
    optimizer.step()
    assert torch.isnan(loss)  # mean of no samples; the trainer only averages non-empty batches
    assert not torch.equal(model.state_dict()["0.weight"], before)
    assert ledger.history == [(1.0, 0.1, 1)]


def test_clone_accumulate_equals_opacus_deepcopy_accumulate(digits, monkeypatch):
    fast, _, _ = _train_direct("mlp:64-32-10", *digits, steps=6)
    assert issubclass(dp_step._ghost_optimizer_class(), DPOptimizerFastGradientClipping)
    monkeypatch.setattr(dp_step, "_ghost_optimizer_class", lambda: DPOptimizerFastGradientClipping)
    stock, _, _ = _train_direct("mlp:64-32-10", *digits, steps=6)
    for a, b in zip(fast.state_dict().values(), stock.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_models_outside_the_direct_path_use_opacus_ghost_clipping(digits):
    assert dp_step.supports_direct_clipping(build_model("mlp:64-32-10"))
    odd = nn.Sequential(nn.Linear(64, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 10))
    assert not dp_step.supports_direct_clipping(odd)
    assert not dp_step.supports_direct_clipping(nn.Linear(64, 10))
    with pytest.raises(ValueError, match="Sequential"):
        dp_step.DirectGhostClipping(odd, nn.CrossEntropyLoss(reduction="none"), 1.0)
    torch.manual_seed(0)
    ledger, gradient_step, optimizer, batches = dp_step.make_private(
        odd, torch.optim.SGD(odd.parameters(), lr=0.1), *digits, batch_size=50, noise_multiplier=1.0,
        max_grad_norm=1.0, accountant="prv", data_generator=torch.Generator().manual_seed(0),
        noise_generator=torch.Generator().manual_seed(0))
    assert isinstance(optimizer, DPOptimizerFastGradientClipping)
    before = [p.detach().clone() for p in odd.parameters()]
    for xb, yb in batches:
        optimizer.zero_grad(set_to_none=True)
        gradient_step(xb, yb)
        optimizer.step()
    assert ledger.history == [(1.0, 1 / 6, 6)]
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, odd.parameters(), strict=True))


def test_direct_and_fallback_paths_give_the_same_trained_model(digits, monkeypatch):
    x, y = (t.numpy() for t in digits)
    config = TrainConfig(epochs=2, batch_size=32, seed=5, dp=True, noise_multiplier=0.9, max_grad_norm=0.7)
    start = initial_tensors("mlp:64-32-10", 2)
    direct = train_local("mlp:64-32-10", start, x, y, config)
    monkeypatch.setattr(dp_step, "supports_direct_clipping", lambda model: False)
    fallback = train_local("mlp:64-32-10", start, x, y, config)
    assert direct.dp_history == fallback.dp_history == [(0.9, 1 / 10, 20)]
    assert direct.train_loss == pytest.approx(fallback.train_loss, rel=1e-5)
    for name in start:
        np.testing.assert_allclose(direct.tensors[name], fallback.tensors[name], rtol=1e-5, atol=1e-6)

"""Central DP at the aggregator as a wrapper around any strategy, with noise seeded from chain data.

``CentralDP(inner, clip_norm, noise_multiplier, ...)`` clips every accepted update's delta to L2 norm ``C`` and
releases it through the Gaussian mechanism, then lets ``inner`` aggregate (post-processing):

- **Mean rules** (FedAvg, FedProx, the server optimizers: ``MeanStrategy``): DP-FedAvg (McMahan et al. 2018). The
  clipped deltas are summed, ``N(0, (z_d * C)^2)`` is added to every coordinate of the sum, and the average is
  ``g + server_lr * noisy_sum / m`` (``m`` accepted updates, public on chain; sample counts are ignored: they
  are the trainers' own claims). ``inner.step`` then applies its rule to that average (a server optimizer's
  momentum is post-processing of the release). ``dp-fedavg`` is ``CentralDP(FedAvg())``.
- **Any other rule** (median, trimmed mean, Krum, ``robust``): each clipped delta gets its own
  ``N(0, (z_d * C)^2)`` and ``inner`` aggregates the noisy updates. Every trainer's contribution is released by
  the same Gaussian mechanism as in the mean mode, so the guarantee per trainer is the same; the noise on a mean
  of the result is ``sqrt(m)`` times larger, the price of a robust rule.

A task selects the wrapper with strategy ``dp-fedavg`` or with a ``central_dp`` object in any strategy's
parameters, e.g. ``{"central_dp": {"noise_multiplier": 1.0, "clip_norm": 0.5}}`` for ``median``.

Adaptive clipping (Andrew et al. 2021): with a ``target_quantile`` gamma, the fraction of updates with norm <= C is
released with noise, ``b = (sum_i 1[|d_i| <= C] + N(0, sigma_b^2)) / m``, and the next round clips at
``C * exp(-eta * (b - gamma))``. The two releases together are one Gaussian mechanism with multiplier ``z`` when
the update noise uses ``z_d = (z^-2 - (2 sigma_b)^-2)^(-1/2)`` (their Theorem 1); without adaptive clipping
``z_d = z``.

Accounting: one round is one Gaussian mechanism on the whole round with multiplier ``z`` and no sampling
amplification, composed over released rounds with the RDP accountant (``fedchain.privacy``). Adjacency is adding
or removing one trainer's update.

Determinism: the noise comes from ``numpy.random.Generator(PCG64(SeedSequence(seed)))`` with ``seed`` the 32-byte
round seed, drawn in a fixed order (mean mode: tensors by sorted name; per-update mode: updates in address order,
then tensors by sorted name; each with ``standard_normal`` in float64; then one draw for the count), so every
committee member gets the same bytes on every machine and thread count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from eth_abi import encode
from eth_utils import keccak

from aggregator.strategies.averaging import FedAvg
from aggregator.strategies.base import Aggregation, ClientUpdate, MeanStrategy, RoundContext, Strategy, Tensors
from aggregator.strategies.ops import norm, number, ordered_updates
from fedchain.privacy import central_epsilon

SEED_DOMAIN = "fedchain.central-dp/1"
STATE_KEY = "central_dp"


def round_seed(chain_id: int, task_manager: str, task_id: int, round_: int, block_hash: bytes,
               committee_secret: bytes | None = None) -> bytes:
    """``keccak256(abi.encode(domain, chainId, taskManager, taskId, round, blockHash, keccak256(secret)))``.

    ``block_hash`` is the hash of the block whose ``advance`` moved the round into AggregatorCommit (the reveal
    phase closed there), so the seed is fixed once the updates are known and is the same for every committee
    member. Without ``committee_secret`` anyone can recompute the seed and therefore the noise: see
    docs/THREAT_MODEL.md.
    """
    if len(block_hash) != 32:
        raise ValueError("block_hash must be 32 bytes")
    secret_hash = keccak(committee_secret) if committee_secret else b"\x00" * 32
    return keccak(encode(
        ["string", "uint256", "address", "uint256", "uint256", "bytes32", "bytes32"],
        [SEED_DOMAIN, chain_id, task_manager, task_id, round_, bytes(block_hash), secret_hash],
    ))


def _quantize(value: float) -> float:
    """Round to 9 significant digits, so the clip norm carried between rounds is stable across libms."""
    return float(f"{value:.9g}")


class CentralDP(Strategy):
    """Clip, add seeded Gaussian noise, then aggregate with ``inner``; see the module docstring."""

    name: ClassVar[str] = "dp-fedavg"
    uses_round_seed: ClassVar[bool] = True

    def __init__(self, inner: Strategy | None = None, clip_norm: float = 1.0, noise_multiplier: float = 1.0,
                 target_quantile: float | None = None, clip_learning_rate: float = 0.2, count_noise_std: float = 1.0,
                 server_lr: float = 1.0, delta: float = 1e-5) -> None:
        self.inner = FedAvg() if inner is None else inner
        if isinstance(self.inner, CentralDP):
            raise ValueError("central DP cannot wrap central DP")
        self.name = "dp-fedavg" if type(self.inner) is FedAvg else f"{self.inner.name}+central_dp"  # type: ignore[misc]
        self.uses_validation = self.inner.uses_validation  # type: ignore[misc]
        self.uses_server_state = self.inner.uses_server_state  # type: ignore[misc]
        self.clip_norm = number(clip_norm, "clip_norm", 0.0, None, low_open=True)
        self.noise_multiplier = number(noise_multiplier, "noise_multiplier", 0.0, None)
        self.target_quantile = None if target_quantile is None else number(
            target_quantile, "target_quantile", 0.0, 1.0, high_open=False)
        self.clip_learning_rate = number(clip_learning_rate, "clip_learning_rate", 0.0, None, low_open=True)
        self.count_noise_std = number(count_noise_std, "count_noise_std", 0.0, None, low_open=True)
        self.server_lr = number(server_lr, "server_lr", 0.0, None, low_open=True)
        self.delta = number(delta, "delta", 0.0, 1.0, low_open=True)
        if self.adaptive and self.noise_multiplier >= 2 * self.count_noise_std:
            raise ValueError("adaptive clipping needs noise_multiplier < 2 * count_noise_std "
                             f"(got {self.noise_multiplier} and {self.count_noise_std})")

    @property
    def adaptive(self) -> bool:
        return self.target_quantile is not None

    @property
    def update_noise_multiplier(self) -> float:
        """``z_d``: the multiplier on the update noise (Andrew et al. Thm 1 when clipping adapts)."""
        if not self.adaptive or self.noise_multiplier == 0:
            return self.noise_multiplier
        z, sigma_b = self.noise_multiplier, self.count_noise_std
        return (z**-2 - (2 * sigma_b) ** -2) ** -0.5

    def clip_for(self, context: RoundContext) -> float:
        """This round's clip norm: carried in the global model's manifest when clipping adapts."""
        carried = context.previous.get(STATE_KEY) if isinstance(context.previous, Mapping) else None
        if self.adaptive and isinstance(carried, Mapping):
            value = carried.get("next_clip_norm")
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
                return float(value)
        return self.clip_norm

    def report(self, context: RoundContext, clip: float, next_clip: float, clients: int, clipped: int
               ) -> dict[str, Any]:
        rounds = max(1, int(context.released_rounds))
        eps_round = central_epsilon(self.noise_multiplier, 1, self.delta) if clients else 0.0
        eps_total = central_epsilon(self.noise_multiplier, rounds, self.delta)
        return {STATE_KEY: {
            "clip_norm": clip, "next_clip_norm": next_clip, "noise_multiplier": self.noise_multiplier,
            "update_noise_multiplier": self.update_noise_multiplier, "target_quantile": self.target_quantile,
            "count_noise_std": self.count_noise_std if self.adaptive else None, "clients": clients,
            "clipped": clipped, "delta": self.delta, "accountant": "rdp", "adjacency": "add/remove one trainer",
            "rounds": rounds, "epsilon_round": eps_round if math.isfinite(eps_round) else None,
            "epsilon_total": eps_total if math.isfinite(eps_total) else None,
        }}

    def report_without_updates(self, context: RoundContext | None = None) -> dict[str, Any]:
        context = self._checked(context)
        clip = self.clip_for(context)
        return {**self.inner.report_without_updates(context), **self.report(context, clip, clip, 0, 0)}

    @staticmethod
    def _checked(context: RoundContext | None) -> RoundContext:
        if context is None or len(context.seed) != 32:
            raise ValueError("central DP needs the round's 32-byte seed in the RoundContext")
        return context

    def aggregate(self, global_tensors: Tensors, updates: Sequence[ClientUpdate],
                  context: RoundContext | None = None) -> Aggregation:
        context = self._checked(context)
        ordered = ordered_updates(global_tensors, updates)
        names = sorted(global_tensors)
        base = {k: np.asarray(global_tensors[k], dtype=np.float64) for k in names}
        clip = self.clip_for(context)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(context.seed, "big"))))
        std = np.float64(self.update_noise_multiplier * clip)
        mean_mode = isinstance(self.inner, MeanStrategy)
        total = {k: np.zeros_like(base[k]) for k in names}
        noisy: list[ClientUpdate] = []
        below = 0
        for update in ordered:  # one delta at a time
            delta = {k: np.asarray(update.tensors[k], dtype=np.float64) - base[k] for k in names}
            size = norm(np.concatenate([delta[k].reshape(-1) for k in names]))
            below += int(size <= clip)
            scale = np.float64(1.0) if size <= clip else np.float64(clip) / np.float64(size)
            if mean_mode:
                for k in names:
                    total[k] = total[k] + delta[k] * scale
            else:
                noisy.append(ClientUpdate(update.trainer, {k: np.ascontiguousarray((
                    base[k] + delta[k] * scale + rng.standard_normal(size=base[k].shape, dtype=np.float64) * std
                ).astype(np.float32)) for k in names}, update.num_samples))
        if isinstance(self.inner, MeanStrategy):
            result = self.inner.step(global_tensors, self._noisy_average(base, total, len(ordered), rng, std),
                                     context)
        else:
            result = self.inner.aggregate(global_tensors, noisy, context)
        next_clip = clip
        if self.adaptive:
            count_noise = float(rng.standard_normal()) * self.count_noise_std
            fraction = (below + count_noise) / len(ordered)
            next_clip = _quantize(clip * math.exp(-self.clip_learning_rate * (fraction - self.target_quantile)))
        report = {**result.report, **self.report(context, clip, next_clip, len(ordered), len(ordered) - below)}
        return Aggregation(result.tensors, report, result.server_state)

    def _noisy_average(self, base: Mapping[str, np.ndarray], total: Mapping[str, np.ndarray], count: int,
                       rng: np.random.Generator, std: np.float64) -> Tensors:
        """``g + server_lr * (sum_i clip(d_i) + N(0, std^2)) / m`` per tensor, sorted names, float32."""
        m = np.float64(count)
        out: Tensors = {}
        for k in sorted(base):
            noise = rng.standard_normal(size=base[k].shape, dtype=np.float64)
            noisy_mean = (total[k] + noise * std) / m
            out[k] = np.ascontiguousarray((base[k] + np.float64(self.server_lr) * noisy_mean).astype(np.float32))
        return out

"""Central DP at the aggregator: DP-FedAvg with optional adaptive clipping, noise seeded from chain data.

DP-FedAvg (McMahan et al. 2018, "Learning differentially private recurrent language models"): every accepted
update's delta to the global model is clipped to L2 norm ``C``; the clipped deltas are summed, Gaussian noise
``N(0, (z_d * C)^2)`` is added to every coordinate of the sum, and the global model moves by
``server_lr * noisy_sum / m`` (``m`` accepted updates; ``m`` is public on chain anyway).

Adaptive clipping (Andrew et al. 2021, "Differentially private learning with adaptive clipping"): with a
``target_quantile`` gamma, the fraction of updates with norm <= C is released with noise,
``b = (sum_i 1[|d_i| <= C] + N(0, sigma_b^2)) / m``, and the next round clips at
``C * exp(-eta * (b - gamma))``. The two releases together are one Gaussian mechanism with multiplier ``z``
when the update noise uses ``z_d = (z^-2 - (2 sigma_b)^-2)^(-1/2)`` (their Theorem 1); without adaptive
clipping ``z_d = z``.

Accounting: one round is one Gaussian mechanism on the whole round with multiplier ``z`` and no sampling
amplification (trainers choose to join; nobody samples them), composed over rounds with Opacus' RDP analysis.
Adjacency is adding or removing one trainer's update.

Determinism: the noise comes from ``numpy.random.Generator(PCG64(SeedSequence(seed)))`` with ``seed`` the
32-byte round seed, drawn in a fixed order (tensors by sorted name, each with ``standard_normal`` in float64,
then one draw for the count); norms use ``math.fsum`` (exactly rounded), everything else is elementwise
float64, so every committee member gets the same bytes on every machine and thread count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis

from aggregator.strategies import ClientUpdate, RoundContext, Strategy, ordered_updates

SEED_DOMAIN = "fedchain.central-dp/1"
AGGREGATOR_COMMIT_PHASE = 3  # Phase.AggregatorCommit in TaskTypes.sol
STATE_KEY = "central_dp"


def round_seed(chain_id: int, task_manager: str, task_id: int, round_: int, block_hash: bytes,
               committee_secret: bytes | None = None) -> bytes:
    """``keccak256(abi.encode(domain, chainId, taskManager, taskId, round, blockHash, keccak256(secret)))``.

    ``block_hash`` is the hash of the block whose ``advance`` moved the round into AggregatorCommit (the
    reveal phase closed there), so the seed is fixed once the updates are known and is the same for every
    committee member. Without ``committee_secret`` anyone can recompute the seed and therefore the noise:
    see docs/THREAT_MODEL.md.
    """
    if len(block_hash) != 32:
        raise ValueError("block_hash must be 32 bytes")
    secret_hash = keccak(committee_secret) if committee_secret else b"\x00" * 32
    return keccak(encode(
        ["string", "uint256", "address", "uint256", "uint256", "bytes32", "bytes32"],
        [SEED_DOMAIN, chain_id, task_manager, task_id, round_, bytes(block_hash), secret_hash],
    ))


def reveal_close_block(fed: Any, task_id: int, round_: int) -> tuple[int, bytes]:
    """(number, hash) of the block holding ``PhaseAdvanced(taskId, round, AggregatorCommit)``: the ``advance``
    that closed the round's reveal phase. Read from the TaskManager's event logs (ape), from the deployment
    block on."""
    head = int(fed.tasks.chain_manager.blocks.height)
    logs = fed.tasks.PhaseAdvanced.range(int(fed.deployment.block), head + 1,
                                         search_topics={"taskId": task_id, "round": round_})
    for log in logs:
        if int(log.event_arguments["phase"]) == AGGREGATOR_COMMIT_PHASE:
            return int(log.block_number), bytes(HexBytes(log.block_hash))
    raise ValueError(f"task {task_id} round {round_} has not reached the aggregator commit phase")


def released_rounds(fed: Any, task_id: int, round_: int) -> int:
    """Rounds 1..round_ whose aggregation phase was reached: in each, aggregators may have published a noisy
    result (accepted or not), so each one counts for the cumulative central epsilon."""
    count = 0
    for r in range(1, round_ + 1):
        rnd = fed.round(task_id, r)
        phase = int(rnd.failedPhase) if int(rnd.phase) == 6 else int(rnd.phase)  # 6 = Failed
        count += phase >= AGGREGATOR_COMMIT_PHASE
    return count


def chain_round_context(fed: Any, task_id: int, round_: int, previous: Mapping[str, Any],
                        committee_secret: bytes | None = None) -> RoundContext:
    """The ``RoundContext`` of a round, from the chain alone (plus the committee's optional shared secret)."""
    _, block_hash = reveal_close_block(fed, task_id, round_)
    seed = round_seed(int(fed.deployment.chain_id), fed.deployment.tasks, task_id, round_, block_hash,
                      committee_secret)
    return RoundContext(task_id, round_, seed, previous, max(1, released_rounds(fed, task_id, round_)))


def central_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """Epsilon of ``rounds`` Gaussian mechanisms with multiplier ``noise_multiplier`` (sampling rate 1), by RDP."""
    if rounds <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    orders = RDPAccountant.DEFAULT_ALPHAS
    rdp = rdp_analysis.compute_rdp(q=1.0, noise_multiplier=noise_multiplier, steps=rounds, orders=orders)
    eps, _ = rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
    return float(eps)


def update_norm(delta: Mapping[str, np.ndarray]) -> float:
    """L2 norm over all tensors, exactly rounded (``math.fsum`` of float64 squares, sorted names)."""
    return math.sqrt(math.fsum(math.fsum((delta[k] * delta[k]).ravel().tolist()) for k in sorted(delta)))


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def _quantize(value: float) -> float:
    """Round to 9 significant digits, so the clip norm carried between rounds is stable across libms."""
    return float(f"{value:.9g}")


@dataclass(frozen=True)
class _RoundState:
    seed: bytes
    clip_norm: float
    released_rounds: int


class DPFedAvg(Strategy):
    """DP-FedAvg with Gaussian noise and optional adaptive clipping; select with strategy ``dp-fedavg``."""

    name: ClassVar[str] = "dp-fedavg"
    uses_round_context: ClassVar[bool] = True

    def __init__(self, clip_norm: float = 1.0, noise_multiplier: float = 1.0, target_quantile: float | None = None,
                 clip_learning_rate: float = 0.2, count_noise_std: float = 1.0, server_lr: float = 1.0,
                 delta: float = 1e-5) -> None:
        self.clip_norm = _positive("clip_norm", clip_norm)
        self.noise_multiplier = _positive("noise_multiplier", noise_multiplier, allow_zero=True)
        self.target_quantile = None if target_quantile is None else float(target_quantile)
        if self.target_quantile is not None and not 0 <= self.target_quantile <= 1:
            raise ValueError(f"target_quantile must be in [0, 1], got {target_quantile}")
        self.clip_learning_rate = _positive("clip_learning_rate", clip_learning_rate)
        self.count_noise_std = _positive("count_noise_std", count_noise_std)
        self.server_lr = _positive("server_lr", server_lr)
        self.delta = _positive("delta", delta)
        if self.delta >= 1:
            raise ValueError(f"delta must be < 1, got {delta}")
        if self.adaptive and self.noise_multiplier >= 2 * self.count_noise_std:
            raise ValueError("adaptive clipping needs noise_multiplier < 2 * count_noise_std "
                             f"(got {self.noise_multiplier} and {self.count_noise_std})")
        self._state: _RoundState | None = None
        self._report: dict[str, Any] = {}

    @property
    def adaptive(self) -> bool:
        return self.target_quantile is not None

    @property
    def update_noise_multiplier(self) -> float:
        """``z_d``: the multiplier on the update sum (Andrew et al. Thm 1 when clipping adapts)."""
        if not self.adaptive or self.noise_multiplier == 0:
            return self.noise_multiplier
        z, sigma_b = self.noise_multiplier, self.count_noise_std
        return (z**-2 - (2 * sigma_b) ** -2) ** -0.5

    def for_round(self, context: RoundContext) -> DPFedAvg:
        """A copy bound to the round: its seed, its clip norm (carried in the global model's manifest when
        clipping adapts) and the number of rounds released so far."""
        if len(context.seed) != 32:
            raise ValueError("central DP needs a 32-byte round seed")
        clip = self.clip_norm
        carried = context.previous.get(STATE_KEY) if isinstance(context.previous, Mapping) else None
        if self.adaptive and isinstance(carried, Mapping):
            value = carried.get("next_clip_norm")
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
                clip = float(value)
        bound = replace_strategy(self)
        bound._state = _RoundState(bytes(context.seed), clip, max(1, int(context.released_rounds)))
        bound._report = bound._describe(clip, clip, clients=0, clipped=0)
        return bound

    def _describe(self, clip: float, next_clip: float, clients: int, clipped: int) -> dict[str, Any]:
        assert self._state is not None
        rounds = self._state.released_rounds
        eps_round = central_epsilon(self.noise_multiplier, 1, self.delta) if clients else 0.0
        eps_total = central_epsilon(self.noise_multiplier, rounds, self.delta)
        finite = math.isfinite(eps_total)
        return {STATE_KEY: {
            "clip_norm": clip, "next_clip_norm": next_clip, "noise_multiplier": self.noise_multiplier,
            "update_noise_multiplier": self.update_noise_multiplier, "target_quantile": self.target_quantile,
            "count_noise_std": self.count_noise_std if self.adaptive else None, "clients": clients,
            "clipped": clipped, "delta": self.delta, "accountant": "rdp", "adjacency": "add/remove one trainer",
            "rounds": rounds, "epsilon_round": eps_round if math.isfinite(eps_round) else None,
            "epsilon_total": eps_total if finite else None,
        }}

    def round_details(self) -> dict[str, Any]:
        return dict(self._report)

    def aggregate(self, global_tensors: dict[str, np.ndarray], updates: Sequence[ClientUpdate]
                  ) -> dict[str, np.ndarray]:
        if self._state is None:
            raise ValueError("dp-fedavg needs the round's seed: call for_round(context) first")
        ordered = ordered_updates(global_tensors, updates)
        names = sorted(global_tensors)
        base = {k: np.asarray(global_tensors[k], dtype=np.float64) for k in names}
        clip = self._state.clip_norm
        total = {k: np.zeros_like(base[k]) for k in names}
        below = 0
        for update in ordered:
            delta = {k: np.asarray(update.tensors[k], dtype=np.float64) - base[k] for k in names}
            norm = update_norm(delta)
            below += int(norm <= clip)
            scale = np.float64(1.0) if norm <= clip else np.float64(clip) / np.float64(norm)
            for k in names:
                total[k] = total[k] + delta[k] * scale
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(self._state.seed, "big"))))
        std = np.float64(self.update_noise_multiplier * clip)
        m = np.float64(len(ordered))
        out: dict[str, np.ndarray] = {}
        for k in names:
            noise = rng.standard_normal(size=base[k].shape, dtype=np.float64)
            noisy_mean = (total[k] + noise * std) / m
            out[k] = np.ascontiguousarray((base[k] + np.float64(self.server_lr) * noisy_mean).astype(np.float32))
        next_clip = clip
        if self.adaptive:
            count_noise = float(rng.standard_normal()) * self.count_noise_std
            fraction = (below + count_noise) / len(ordered)
            next_clip = _quantize(clip * math.exp(-self.clip_learning_rate * (fraction - self.target_quantile)))
        self._report = self._describe(clip, next_clip, clients=len(ordered), clipped=len(ordered) - below)
        return out


def replace_strategy(strategy: DPFedAvg) -> DPFedAvg:
    """A shallow copy (strategies are small parameter holders)."""
    copy = DPFedAvg.__new__(DPFedAvg)
    copy.__dict__.update(strategy.__dict__)
    return copy


CENTRAL_DP_STRATEGIES: dict[str, tuple[type[Strategy], frozenset[str]]] = {DPFedAvg.name: (DPFedAvg, frozenset({
    "clip_norm", "noise_multiplier", "target_quantile", "clip_learning_rate", "count_noise_std", "server_lr",
    "delta",
}))}

__all__ = ["DPFedAvg", "RoundContext", "central_epsilon", "round_seed", "update_norm"]

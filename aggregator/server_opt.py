"""Server-side optimizers (Reddi et al. 2021, "Adaptive Federated Optimization") and FedProx.

The FedAvg of the updates gives a pseudo-gradient ``d = avg(w_i) - g``; the server applies an optimizer step
to the global model ``g``. Momentum / moment tensors are server state: the aggregator is stateless, so the
state travels content-addressed — the aggregator stores it as a companion file and names its CID and sha256
in the aggregate manifest (``details.server_state``); the next round reads it back through the chain's
current global model (the previous round's accepted result). The first round starts from zero state
(``v = tau**2`` for the adaptive rules, as in Reddi et al.).

Updates (all float64, elementwise, then cast to float32):

- FedAvgM:   ``m = beta * m + d``;                            ``g += lr * m``
- FedAdagrad: ``m = b1 * m + (1 - b1) * d``; ``v = v + d^2``;  ``g += lr * m / (sqrt(v) + tau)``
- FedAdam:   ``m`` as above;  ``v = b2 * v + (1 - b2) * d^2``;  same step
- FedYogi:   ``m`` as above;  ``v = v - (1 - b2) * d^2 * sign(v - d^2)``; same step
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from aggregator.strategies import ClientUpdate, FedAvg, Strategy

State = dict[str, np.ndarray]


def _number(value: float, name: str, low: float, high: float | None = None, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    value = float(value)
    if (value <= low if open_low else value < low) or (high is not None and value >= high):
        raise ValueError(f"{name} must be in {'(' if open_low else '['}{low}, {high if high is not None else 'inf'})")
    return value


class ServerOptimizer(Strategy):
    """A strategy with server state carried from round to round (see the module docstring)."""

    stateful: ClassVar[bool] = True
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, lr: float = 1.0) -> None:
        self.lr = _number(lr, "lr", 0.0, open_low=True)

    def initial_state(self, global_tensors: Mapping[str, np.ndarray]) -> State:
        return {f"{kind}.{name}": np.zeros(np.shape(t), dtype=np.float32)
                for kind in self.state_names for name, t in global_tensors.items()}

    def aggregate(self, global_tensors, updates):
        """One step from the zero state (use ``aggregate_with_state`` to carry state across rounds)."""
        return self.aggregate_with_state(global_tensors, updates, None)[0]

    def aggregate_with_state(
        self, global_tensors: dict[str, np.ndarray], updates: Sequence[ClientUpdate], state: State | None
    ) -> tuple[dict[str, np.ndarray], State]:
        """The new global tensors and the new server state (float32 tensors named ``<kind>.<tensor>``)."""
        state = dict(state) if state else self.initial_state(global_tensors)
        expected = set(self.initial_state(global_tensors))
        if set(state) != expected or any(np.shape(state[k]) != np.shape(global_tensors[k.split(".", 1)[1]])
                                         for k in expected):
            raise ValueError(f"server state for {self.name} does not match the model")
        average = FedAvg().aggregate(global_tensors, updates)
        new_global: dict[str, np.ndarray] = {}
        new_state: State = {}
        for name in sorted(global_tensors):
            g = np.asarray(global_tensors[name], dtype=np.float64)
            d = np.asarray(average[name], dtype=np.float64) - g
            moments = {kind: np.asarray(state[f"{kind}.{name}"], dtype=np.float64) for kind in self.state_names}
            step, moments = self.step(d, moments)
            new_global[name] = np.ascontiguousarray((g + self.lr * step).astype(np.float32))
            for kind, value in moments.items():
                new_state[f"{kind}.{name}"] = np.ascontiguousarray(value.astype(np.float32))
        return new_global, new_state

    def step(self, d: np.ndarray, moments: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError


class FedAvgM(ServerOptimizer):
    """FedAvg with server momentum (Hsu et al. 2019)."""

    name: ClassVar[str] = "fedavgm"
    state_names: ClassVar[tuple[str, ...]] = ("m",)

    def __init__(self, lr: float = 1.0, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)

    def step(self, d, moments):
        m = self.momentum * moments["m"] + d
        return m, {"m": m}


class _Adaptive(ServerOptimizer):
    state_names: ClassVar[tuple[str, ...]] = ("m", "v")

    def __init__(self, lr: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-3) -> None:
        super().__init__(lr)
        self.beta_1 = _number(beta_1, "beta_1", 0.0, 1.0)
        self.beta_2 = _number(beta_2, "beta_2", 0.0, 1.0)
        self.tau = _number(tau, "tau", 0.0, open_low=True)

    def initial_state(self, global_tensors):
        state = super().initial_state(global_tensors)
        for key in state:
            if key.startswith("v."):
                state[key] = np.full(state[key].shape, self.tau**2, dtype=np.float32)
        return state

    def second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step(self, d, moments):
        m = self.beta_1 * moments["m"] + (1.0 - self.beta_1) * d
        v = self.second_moment(moments["v"], d * d)
        return m / (np.sqrt(v) + self.tau), {"m": m, "v": v}


class FedAdagrad(_Adaptive):
    name: ClassVar[str] = "fedadagrad"

    def second_moment(self, v, d2):
        return v + d2


class FedAdam(_Adaptive):
    name: ClassVar[str] = "fedadam"

    def second_moment(self, v, d2):
        return self.beta_2 * v + (1.0 - self.beta_2) * d2


class FedYogi(_Adaptive):
    name: ClassVar[str] = "fedyogi"

    def second_moment(self, v, d2):
        return v - (1.0 - self.beta_2) * d2 * np.sign(v - d2)


class FedProx(FedAvg):
    """FedAvg on the server; trainers add ``proximal_mu/2 * ||w - g||^2`` to their loss (client/trainer.py)."""

    name: ClassVar[str] = "fedprox"

    def __init__(self, proximal_mu: float = 0.01) -> None:
        self.proximal_mu = _number(proximal_mu, "proximal_mu", 0.0)


ADAPTIVE_PARAMS = frozenset({"lr", "beta_1", "beta_2", "tau"})
SERVER_STRATEGIES = {
    FedAvgM.name: (FedAvgM, frozenset({"lr", "momentum"})),
    FedAdagrad.name: (FedAdagrad, ADAPTIVE_PARAMS),
    FedAdam.name: (FedAdam, ADAPTIVE_PARAMS),
    FedYogi.name: (FedYogi, ADAPTIVE_PARAMS),
    FedProx.name: (FedProx, frozenset({"proximal_mu"})),
}

"""Server-side optimizers (Reddi et al. 2021, "Adaptive Federated Optimization").

The FedAvg of the updates gives a pseudo-gradient ``d = avg(w_i) - g``; the server applies an optimizer step to
the global model ``g``. Momentum / moment tensors are server state: the aggregator is stateless, so the state
travels content-addressed. ``aggregate`` takes the last accepted round's state in ``RoundContext.server_state``
and returns the new state in ``Aggregation.server_state``; the aggregator stores it as a companion file and names
its CID and sha256 in the aggregate manifest (``details.server_state``). The first round starts from zero state
(``v = tau**2`` for the adaptive rules, as in Reddi et al.).

Updates (all float64, elementwise, then cast to float32):

- FedAvgM:   ``m = beta * m + d``;                            ``g += lr * m``
- FedAdagrad: ``m = b1 * m + (1 - b1) * d``; ``v = v + d^2``;  ``g += lr * m / (sqrt(v) + tau)``
- FedAdam:   ``m`` as above;  ``v = b2 * v + (1 - b2) * d^2``;  same step
- FedYogi:   ``m`` as above;  ``v = v - (1 - b2) * d^2 * sign(v - d^2)``; same step
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from aggregator.strategies.base import Aggregation, MeanStrategy, RoundContext, Tensors
from aggregator.strategies.ops import number


class ServerOptimizer(MeanStrategy):
    """A strategy with server state carried from round to round (see the module docstring)."""

    uses_server_state: ClassVar[bool] = True
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, lr: float = 1.0) -> None:
        self.lr = number(lr, "lr", 0.0, None, low_open=True)

    def initial_state(self, global_tensors: Mapping[str, np.ndarray]) -> Tensors:
        return {f"{kind}.{name}": np.zeros(np.shape(t), dtype=np.float32)
                for kind in self.state_names for name, t in global_tensors.items()}

    def check_state(self, global_tensors: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray] | None) -> Tensors:
        """The given state, or the initial state for None; ``ValueError`` when it does not fit the model."""
        if state is None:
            return self.initial_state(global_tensors)
        expected = set(self.initial_state(global_tensors))
        if set(state) != expected or any(np.shape(state[k]) != np.shape(global_tensors[k.split(".", 1)[1]])
                                         for k in expected):
            raise ValueError(f"server state for {self.name} does not match the model")
        return dict(state)

    def step(self, global_tensors: Tensors, average: Tensors, context: RoundContext) -> Aggregation:
        state = self.check_state(global_tensors, context.server_state)
        new_global: Tensors = {}
        new_state: Tensors = {}
        for name in sorted(global_tensors):
            g = np.asarray(global_tensors[name], dtype=np.float64)
            d = np.asarray(average[name], dtype=np.float64) - g
            moments = {kind: np.asarray(state[f"{kind}.{name}"], dtype=np.float64) for kind in self.state_names}
            change, moments = self.update(d, moments)
            new_global[name] = np.ascontiguousarray((g + self.lr * change).astype(np.float32))
            for kind, value in moments.items():
                new_state[f"{kind}.{name}"] = np.ascontiguousarray(value.astype(np.float32))
        return Aggregation(new_global, server_state=new_state)

    def update(self, d: np.ndarray, moments: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The optimizer's change to the global model and its new moments, from pseudo-gradient ``d``."""
        raise NotImplementedError


class FedAvgM(ServerOptimizer):
    """FedAvg with server momentum (Hsu et al. 2019)."""

    name: ClassVar[str] = "fedavgm"
    state_names: ClassVar[tuple[str, ...]] = ("m",)

    def __init__(self, lr: float = 1.0, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = number(momentum, "momentum", 0.0, 1.0)

    def update(self, d, moments):
        m = self.momentum * moments["m"] + d
        return m, {"m": m}


class _Adaptive(ServerOptimizer):
    state_names: ClassVar[tuple[str, ...]] = ("m", "v")

    def __init__(self, lr: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.99, tau: float = 1e-3) -> None:
        super().__init__(lr)
        self.beta_1 = number(beta_1, "beta_1", 0.0, 1.0)
        self.beta_2 = number(beta_2, "beta_2", 0.0, 1.0)
        self.tau = number(tau, "tau", 0.0, None, low_open=True)

    def initial_state(self, global_tensors):
        state = super().initial_state(global_tensors)
        for key in state:
            if key.startswith("v."):
                state[key] = np.full(state[key].shape, self.tau**2, dtype=np.float32)
        return state

    def second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, d, moments):
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

"""Flower 1.42's side of bench/vs_flower.py; runs in the bench's own Flower virtualenv (flwr and eth-ape cannot
share one), so it imports nothing from fedchain.

Reads the task that vs_flower.py exported (``task.npz``: every trainer's shard, the test set, the initial weights
in ``state_dict`` order, the MLP's layer sizes and the local-training settings), runs it through Flower's
simulation (Ray backend, FedAvg weighted by examples, centralized evaluation after every round) and prints one JSON
line: per-round accuracy and the wall time at which each round's evaluation finished. A third argument ``equal``
makes every update weigh the same (FedAvg over clients instead of examples), as fedchain's attested weights do.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation
from torch import nn

TASK = dict(np.load(sys.argv[1]).items())  # plain arrays: Ray ships them to the client actors with client_fn
ROUNDS = int(sys.argv[2])
EQUAL = len(sys.argv) > 3 and sys.argv[3] == "equal"  # every update weighs the same, as fedchain's attested weights
SIZES = [int(s) for s in TASK["sizes"]]
LR, BATCH, EPOCHS, SEED = float(TASK["lr"]), int(TASK["batch"]), int(TASK["epochs"]), int(TASK["seed"])
CLIENTS = int(TASK["clients"])
INITIAL = [TASK[f"init_{i}"] for i in range(int(TASK["tensors"]))]
STAMPS: list[float] = []
ACCURACY: list[float] = []


def model() -> nn.Module:
    """The same MLP as fedchain's ``mlp:<sizes>`` (Linear, ReLU, ..., Linear)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def load(module: nn.Module, arrays: list[np.ndarray]) -> None:
    keys = list(module.state_dict())
    module.load_state_dict({k: torch.from_numpy(np.asarray(a, dtype=np.float32).copy()) for k, a in zip(keys, arrays,
                                                                                                          strict=True)})


def arrays(module: nn.Module) -> list[np.ndarray]:
    return [v.detach().numpy().astype(np.float32).copy() for v in module.state_dict().values()]


class Trainer(NumPyClient):
    """Plain SGD on one shard: the same settings as the fedchain trainers (no momentum, no DP)."""

    def __init__(self, cid: int) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(TASK[f"x_{cid}"], dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(TASK[f"y_{cid}"], dtype=np.int64))
        self.cid = cid

    def fit(self, parameters, config):  # noqa: ANN001, ANN201 (Flower's signature)
        net = model()
        load(net, parameters)
        opt = torch.optim.SGD(net.parameters(), lr=LR)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(SEED * 1000 + self.cid * 17 + int(config.get("round", 0)))
        net.train()
        for _ in range(EPOCHS):
            order = torch.randperm(len(self.y), generator=gen)
            for start in range(0, len(order), BATCH):
                idx = order[start:start + BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(net(self.x[idx]), self.y[idx]).backward()
                opt.step()
        return arrays(net), 1 if EQUAL else len(self.y), {}


def client_fn(context: Context):  # noqa: ANN201
    return Trainer(int(context.node_config["partition-id"])).to_client()


def evaluate(server_round: int, parameters, config):  # noqa: ANN001, ANN201
    net = model()
    load(net, parameters)
    with torch.no_grad():
        pred = net(torch.from_numpy(TASK["x_test"].astype(np.float32))).argmax(1).numpy()
    acc = float((pred == TASK["y_test"]).mean())
    STAMPS.append(time.monotonic())
    ACCURACY.append(acc)
    return 0.0, {"accuracy": acc}


def server_fn(context: Context) -> ServerAppComponents:
    strategy = FedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=CLIENTS, min_available_clients=CLIENTS,
                      initial_parameters=ndarrays_to_parameters(INITIAL), evaluate_fn=evaluate,
                      on_fit_config_fn=lambda r: {"round": r})
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=ROUNDS))


if __name__ == "__main__":
    torch.set_num_threads(1)
    started = time.monotonic()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=CLIENTS, backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    # STAMPS[0] is the evaluation of the initial weights (before round 1)
    print(json.dumps({"started": started, "stamps": STAMPS, "accuracy": ACCURACY}))

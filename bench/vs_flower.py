"""Round time and accuracy against Flower 1.42 on the same task, in one run (issue 18).

Run: `make bench-flower` (or `.venv/bin/python bench/vs_flower.py [--seeds 3] [--rounds 10] [--json]
[--markdown bench/results/vs_flower.md]`).

The task: scikit-learn's digits, 10 trainers with a Dirichlet(0.5) label split, an MLP 64-64-10, one local epoch
of plain SGD (lr 0.1, batch 32, no momentum), FedAvg weighted by samples. For each seed, fedchain runs it first on
a local anvil (the demo's machinery: real transactions, the real content store, one committee member); the bench
then exports that run's shards, test set and initial weights, and Flower 1.42 runs the same through its Ray
simulation in a virtualenv of its own (created on first use under `.flwr-venv/`: flwr cannot share one with
eth-ape). Both evaluate the global model on the same test set after every round.

Timing: fedchain's round is the demo's `run_round` (commits, reveals, aggregation, finalization, claims);
its set-up (deploy, stake, publish, create the task) is reported apart. Flower's first round runs from the
`run_simulation` call to round 1's evaluation, so it includes Ray's start-up; each later round is the time between
two evaluations. Targets: fedchain's mean round after the first <= 3x Flower's; its first round faster than
Flower's; final accuracy within 1 point of Flower's (mean over the seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLWR_VENV = Path(os.environ.get("FEDCHAIN_FLWR_VENV", ROOT / ".flwr-venv"))
FLWR_REQUIREMENTS = ("flwr[simulation]==1.42.0", "torch==2.13.0")
ARCHITECTURE = "mlp:64-64-10"
LR, BATCH, EPOCHS, ALPHA = 0.1, 32, 1, 0.5


def flower_python() -> Path:
    """The Flower virtualenv's python, created and installed on first use (pip's own index settings apply)."""
    python = FLWR_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating the Flower virtualenv in {FLWR_VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(FLWR_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import flwr, ray, torch; print(flwr.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "1.42.0":
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *FLWR_REQUIREMENTS], check=True)
    return python


def fedchain_run(seed: int, rounds: int, trainers: int, export: Path) -> dict:
    """One fedchain federation on the connected local chain; writes the task for Flower to ``export``."""
    from rich.console import Console

    from client.modules import build_model
    from client.trainer import TrainConfig
    from fedchain.cli.demo import DemoConfig, Participants, make_nodes, run_round, setup
    from fedchain.codec import decode_model
    from fedchain.store import open_store

    store = open_store(None)
    cfg = DemoConfig(rounds=rounds, trainers=trainers, alpha=ALPHA, seed=seed, architecture=ARCHITECTURE,
                     train=TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=LR, momentum=0.0, seed=seed))
    people = Participants.from_test_accounts(trainers, 1)
    started = time.monotonic()
    fed, task_id, data = setup(cfg, people, store)
    nodes, aggs = make_nodes(cfg, people, fed, data, store)
    setup_seconds = time.monotonic() - started
    task = fed.task(task_id)
    blob = store.get(task.global_model_cid, sha256=task.global_model_digest, max_bytes=1 << 26)
    initial, _ = decode_model(blob, len(blob))
    (x, y), (x_test, y_test) = data["train"], data["test"]
    arrays = {f"init_{i}": initial[name] for i, name in enumerate(build_model(ARCHITECTURE).state_dict())}
    for i, idx in enumerate(data["parts"]):
        arrays[f"x_{i}"], arrays[f"y_{i}"] = x[idx], y[idx]
    np.savez(export, x_test=x_test, y_test=y_test, sizes=np.array([64, 64, 10]), lr=LR, batch=BATCH, epochs=EPOCHS,
             seed=seed, clients=trainers, tensors=len(initial), **arrays)
    console = Console(quiet=True)
    rows = [run_round(fed, task_id, r, nodes, aggs, console, data["test"]) for r in range(1, rounds + 1)]
    return {"setup_seconds": setup_seconds, "seconds": [r["seconds"] for r in rows],
            "accuracy": [r["test_accuracy"] for r in rows], "time_split": [r["time_split"] for r in rows],
            "accepted": [r["accepted"] for r in rows], "rejected": [r["rejected"] for r in rows]}


def flower_run(python: Path, export: Path, rounds: int, weighting: str = "examples") -> dict:
    """The same task through Flower's simulation, in its own virtualenv and process; ``weighting`` "equal" weighs
    every update the same (what fedchain's attested weights do), "examples" by its sample count (Flower's FedAvg)."""
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([str(python), str(ROOT / "bench" / "flower_side.py"), str(export), str(rounds), weighting],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"the Flower run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    stamps = result["stamps"]  # stamps[0]: the initial evaluation
    seconds = [stamps[1] - result["started"]] + [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]
    return {"seconds": seconds, "accuracy": result["accuracy"][1:]}


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarize(runs: list[dict], rounds: int) -> dict:
    """Per-round means over the seeds, and the three targets with ``met``."""
    def per_round(side: str, key: str) -> list[float]:
        return [_mean([run[side][key][r] for run in runs]) for r in range(rounds)]

    fc_s, fl_s = per_round("fedchain", "seconds"), per_round("flower", "seconds")
    fc_a, fl_a = per_round("fedchain", "accuracy"), per_round("flower", "accuracy")
    fe_a = per_round("flower_equal", "accuracy")
    later_fc, later_fl = _mean(fc_s[1:]), _mean(fl_s[1:])
    targets = [
        {"target": "mean round after the first <= 3x Flower's", "fedchain": later_fc, "flower": later_fl,
         "ratio": later_fc / later_fl, "met": later_fc <= 3 * later_fl},
        {"target": "first round faster than Flower's", "fedchain": fc_s[0], "flower": fl_s[0],
         "ratio": fc_s[0] / fl_s[0], "met": fc_s[0] < fl_s[0]},
        {"target": "final accuracy within 1 point of Flower's", "fedchain": fc_a[-1], "flower": fl_a[-1],
         "ratio": fc_a[-1] - fl_a[-1], "met": abs(fc_a[-1] - fl_a[-1]) <= 0.01},
    ]
    split = {k: _mean([_mean([s[k] for s in run["fedchain"]["time_split"][1:]]) for run in runs])
             for k in ("training", "aggregation", "chain")}
    return {"rounds": [{"round": r + 1, "fedchain_seconds": fc_s[r], "flower_seconds": fl_s[r],
                        "ratio": fc_s[r] / fl_s[r], "fedchain_accuracy": fc_a[r], "flower_accuracy": fl_a[r],
                        "flower_equal_accuracy": fe_a[r]}
                       for r in range(rounds)],
            "targets": targets, "fedchain_split_after_first": split,
            "fedchain_setup_seconds": _mean([run["fedchain"]["setup_seconds"] for run in runs])}


def markdown(summary: dict, seeds: int, trainers: int) -> str:
    lines = ["# fedchain vs Flower 1.42: round time and accuracy\n",
             f"`make bench-flower` (bench/vs_flower.py) on this machine: digits, {trainers} trainers, "
             f"Dirichlet({ALPHA}) split, {ARCHITECTURE}, {EPOCHS} local epoch of SGD (lr {LR}, batch {BATCH}), "
             f"FedAvg; means over {seeds} seed(s), both in the same run on the same shards and initial weights. "
             "Flower's first round includes Ray's start-up; fedchain's set-up (deploy, stake, publish, create the "
             "task) took "
             f"{summary['fedchain_setup_seconds']:.1f} s and is not in its first round.\n",
             "## Targets\n", "| target | fedchain | Flower | ratio / difference | met |", "|---|---:|---:|---:|---|"]
    for t in summary["targets"]:
        unit = "s" if "round" in t["target"] else ""
        fmt = (lambda v: f"{100 * v:.1f}%") if not unit else (lambda v: f"{v:.2f} s")
        ratio = f"{100 * t['ratio']:+.1f} points" if not unit else f"{t['ratio']:.1f}x"
        lines.append(f"| {t['target']} | {fmt(t['fedchain'])} | {fmt(t['flower'])} | {ratio} | "
                     f"{'yes' if t['met'] else '**no**'} |")
    s = summary["fedchain_split_after_first"]
    lines += [f"\nWhere a fedchain round after the first goes (mean): training {s['training']:.2f} s, aggregation "
              f"{s['aggregation']:.2f} s, chain (transactions, receipts, uploads, polling) {s['chain']:.2f} s.\n",
              "fedchain weighs every accepted update the same (attested weights: a claimed sample count is "
              "unverifiable, so it buys nothing; see aggregator/weights.py), while Flower's FedAvg weighs by "
              "examples. The last column is Flower with equal weights, the same rule as fedchain's: it separates "
              "the cost of that rule on this size-skewed split from everything else.\n",
              "## Per round\n", "| round | fedchain s | Flower s | ratio | fedchain acc | Flower acc | "
              "Flower acc, equal weights |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['round']} | {r['fedchain_seconds']:.2f} | {r['flower_seconds']:.2f} | {r['ratio']:.1f}x | "
              f"{100 * r['fedchain_accuracy']:.1f}% | {100 * r['flower_accuracy']:.1f}% | "
              f"{100 * r['flower_equal_accuracy']:.1f}% |" for r in summary["rounds"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--trainers", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    if args.rounds < 2 or args.seeds < 1:
        parser.error("--rounds must be at least 2 (the targets compare rounds after the first) and --seeds >= 1")

    from fedchain.config import ensure_tool_paths

    ensure_tool_paths()
    os.environ.setdefault("FEDCHAIN_HOME", tempfile.mkdtemp(prefix="fedchain-vs-flower-"))
    os.environ.setdefault("APE_FOUNDRY_HOST", "auto")
    python = flower_python()
    from ape import networks
    from ape.logging import logger

    logger.set_level("ERROR")
    runs = []
    with tempfile.TemporaryDirectory(prefix="vs-flower-") as tmp, \
            networks.parse_network_choice("ethereum:local:foundry"):
        for seed in range(args.seeds):
            export = Path(tmp) / f"task-{seed}.npz"
            print(f"seed {seed}: fedchain ...", file=sys.stderr)
            fedchain = fedchain_run(seed, args.rounds, args.trainers, export)
            print(f"seed {seed}: Flower ...", file=sys.stderr)
            runs.append({"seed": seed, "fedchain": fedchain, "flower": flower_run(python, export, args.rounds),
                         "flower_equal": flower_run(python, export, args.rounds, "equal")})
    summary = summarize(runs, args.rounds)
    summary["runs"] = runs
    if args.markdown:
        Path(args.markdown).write_text(markdown(summary, args.seeds, args.trainers))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(markdown(summary, args.seeds, args.trainers))


if __name__ == "__main__":
    main()

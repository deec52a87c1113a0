"""Byzantine benchmark: every strategy against every attack at 10/20/30% attackers, plus median / trimmed-mean
time and peak memory against plain numpy.

It runs without the chain: each round calls what the aggregator calls — the free-rider check, the strategy
(server-optimizer state kept in memory, as the chain would carry it by CID), the contribution scores — and
applies the on-chain reward formula ``reward_i ∝ score_i * n_i`` to get the attackers' share of the rewards
(rejected updates score 0). Trainers use the real client trainer (``client/trainer.py``) on non-IID
(Dirichlet alpha 0.5) splits of digits and breast_cancer.

    .venv/bin/python bench/byzantine.py            # full run (a few minutes on 2 cores)
    .venv/bin/python bench/byzantine.py --quick    # 30% attackers only, digits only

Results are printed and written as markdown to ``bench/results/byzantine.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator.contribution import contributions  # noqa: E402
from aggregator.freeriders import FreeRiderCheck  # noqa: E402
from aggregator.robust import CoordinateMedian, TrimmedMean  # noqa: E402
from aggregator.scoring import evaluate  # noqa: E402
from aggregator.strategies import ClientUpdate, get_strategy  # noqa: E402
from aggregator.validation import RejectedUpdate  # noqa: E402

TRAINERS = 10
LEVELS = (0.1, 0.2, 0.3)
ATTACKS = ("sign_flip", "scaling", "noise", "label_flip", "zero_update", "global_replay")
DEFAULT_ROBUST = "multikrum"
STRATEGIES = {
    "fedavg": {}, "fedavgm": {"lr": 1.0, "momentum": 0.5}, "fedadam": {"lr": 0.03}, "fedyogi": {"lr": 0.03},
    "fedadagrad": {"lr": 0.1}, "fedprox": {"proximal_mu": 0.1}, "median": {}, "trimmed_mean": {"beta": 0.3},
    "krum": {"byzantine": 3}, "multikrum": {"byzantine": 3}, "norm_bounded": {"clip_norm": 1.0},
}
DATASETS = {"digits": "mlp:64-32-10", "breast_cancer": "mlp:30-16-2"}


def _data(name: str, seed: int = 0):
    from fedchain.data import dirichlet_partition, load_dataset, split_holdout

    x, y = load_dataset(name)
    train, validation, test = split_holdout(x, y, 0.15, 0.2, seed)
    parts = dirichlet_partition(train[1], TRAINERS, 0.5, seed)
    return train, validation, test, parts


def _attack(kind: str, honest: dict, glob: dict, rng: np.random.Generator) -> dict:
    if kind == "sign_flip":
        return {k: (glob[k] - 4.0 * (honest[k] - glob[k])).astype(np.float32) for k in glob}
    if kind == "scaling":
        return {k: (glob[k] + 20.0 * (honest[k] - glob[k])).astype(np.float32) for k in glob}
    if kind == "noise":
        return {k: (glob[k] + rng.normal(scale=1.0, size=glob[k].shape)).astype(np.float32) for k in glob}
    if kind == "zero_update":
        return {k: np.zeros_like(glob[k]) for k in glob}
    if kind == "global_replay":
        return {k: glob[k].copy() for k in glob}
    return honest  # label_flip trains on flipped labels; the update itself is sent as is


def run_federation(job: tuple) -> dict:
    """One federated run; returns final test accuracy and the attackers' share of the rewards."""
    import torch

    from client.trainer import TrainConfig, train_local
    from fedchain.models import initial_tensors

    torch.set_num_threads(1)
    dataset, strategy_name, attack, level, rounds, seed = job
    arch = DATASETS[dataset]
    (x, y), (x_val, y_val), (x_test, y_test), parts = _data(dataset, seed)
    n_classes = int(arch.rsplit("-", 1)[1])
    attackers = set(range(int(round(level * TRAINERS)))) if attack else set()
    params = STRATEGIES[strategy_name]
    strategy = get_strategy(strategy_name, params)
    config = TrainConfig(epochs=5, proximal_mu=params.get("proximal_mu", 0.0), seed=seed)
    rng = np.random.default_rng(seed)
    glob = initial_tensors(arch, seed)
    state = None
    attacker_reward = total_reward = 0.0
    rejected_attackers = 0
    for _ in range(rounds):
        check = FreeRiderCheck(glob)
        accepted: list[ClientUpdate] = []
        samples: dict[str, int] = {}
        for i in range(TRAINERS):
            idx = parts[i]
            labels = (n_classes - 1 - y[idx]) if (i in attackers and attack == "label_flip") else y[idx]
            tensors = train_local(arch, glob, x[idx], labels, config).tensors
            if i in attackers:
                tensors = _attack(attack, tensors, glob, rng)
            name = f"0x{i:040x}"
            try:
                check.check(name, 1, tensors)
            except RejectedUpdate:
                rejected_attackers += i in attackers
                continue
            accepted.append(ClientUpdate(name, tensors, len(idx)))
            samples[name] = len(idx)
        scores = {t: c.score for t, c in contributions(arch, glob, accepted, x_val, y_val).items()}
        weight = sum(scores[t] * samples[t] for t in scores)
        if weight:  # equal round budgets: the share of each round's budget, summed
            total_reward += 1.0
            attacker_reward += sum(scores[t] * samples[t] for t in scores if int(t, 16) in attackers) / weight
        if accepted:
            if getattr(strategy, "stateful", False):
                glob, state = strategy.aggregate_with_state(glob, accepted, state)
            else:
                glob = strategy.aggregate(glob, accepted)
    accuracy = evaluate(arch, glob, x_test, y_test).accuracy
    share = attacker_reward / total_reward if total_reward else 0.0
    return {"job": job, "accuracy": accuracy, "share": share, "rejected": rejected_attackers}


def robustness_tables(datasets, strategies, attacks, levels, rounds: int, workers: int) -> tuple[list[str], dict]:
    jobs = [(d, s, None, 0.0, rounds, 0) for d in datasets for s in strategies]
    jobs += [(d, s, a, lvl, rounds, 0) for d in datasets for s in strategies for a in attacks for lvl in levels]
    results: dict[tuple, dict] = {}
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(run_federation, jobs, chunksize=2), 1):
            results[result["job"][:4]] = result
            if done % 20 == 0 or done == len(jobs):
                print(f"  {done}/{len(jobs)} runs ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    lines: list[str] = []
    for d in datasets:
        for s in strategies:
            base = results[(d, s, None, 0.0)]["accuracy"]
            lines += [f"### {d} · {s} {STRATEGIES[s] or ''}".rstrip(), "",
                      f"Attack-free final test accuracy: **{base:.3f}**. Cells: accuracy change vs attack-free "
                      "(points) / attackers' share of rewards.", "",
                      "| attack | " + " | ".join(f"{int(lvl * 100)}% attackers" for lvl in levels) + " |",
                      "|---|" + "---|" * len(levels)]
            for a in attacks:
                cells = []
                for lvl in levels:
                    r = results[(d, s, a, lvl)]
                    cells.append(f"{100 * (r['accuracy'] - base):+.1f} / {100 * r['share']:.1f}%")
                lines.append(f"| {a} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines, results


def _peak(fn) -> tuple[float, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def order_statistics_bench(n: int = 100, size: int = 1_000_000) -> list[str]:
    """Chunked median / trimmed mean vs np.median / np.partition on n updates x size parameters."""
    rng = np.random.default_rng(0)
    updates = [ClientUpdate(f"0x{i:040x}", {"w": rng.normal(size=size).astype(np.float32)}, 1) for i in range(n)]
    glob = {"w": np.zeros(size, np.float32)}
    trim = TrimmedMean(beta=0.1)
    b = trim.trim_count(n)

    def numpy_median():
        return np.median(np.stack([u.tensors["w"] for u in updates]), axis=0)

    def numpy_trimmed():
        part = np.partition(np.stack([u.tensors["w"] for u in updates]), [b, n - b - 1], axis=0)
        return part[b:n - b].mean(axis=0)

    rows = []
    for label, ours, baseline in (("median", lambda: CoordinateMedian().aggregate(glob, updates), numpy_median),
                                  ("trimmed mean (beta 0.1)", lambda: trim.aggregate(glob, updates),
                                   numpy_trimmed)):
        t_base, m_base = _peak(baseline)
        t_ours, m_ours = _peak(ours)
        rows.append(f"| {label} | {t_ours:.2f} s | {t_base:.2f} s | {t_ours / t_base:.2f} | {m_ours / 2**20:.0f} MiB | "
                    f"{m_base / 2**20:.0f} MiB | {m_ours / m_base:.3f} |")
    return [f"### Median / trimmed mean on {n} updates x {size:,} parameters (float32)", "",
            "Peak = extra memory allocated during the call (tracemalloc; the updates themselves are not counted). "
            "Baselines: `np.median(np.stack(updates), axis=0)` and `np.partition` of the stack + mean of the kept "
            "rows, measured in the same run.", "",
            "| rule | fedchain | numpy | time ratio | fedchain peak | numpy peak | memory ratio |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30%% attackers on digits only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100 x 1M median/trimmed-mean part")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "byzantine.md"))
    args = parser.parse_args()
    datasets = ["digits"] if args.quick else list(DATASETS)
    levels = (0.3,) if args.quick else LEVELS
    strategies = [s for s in args.strategies.split(",") if s]
    started = time.monotonic()
    lines = ["# Byzantine benchmark", "",
             f"{TRAINERS} trainers (Dirichlet 0.5 non-IID), {args.rounds} rounds of 5 local epochs, attackers are the "
             "first trainers; run without the chain (strategies, free-rider check and contribution scores called "
             f"directly; rewards by the on-chain formula). Default robust strategy: `{DEFAULT_ROBUST}` "
             f"{STRATEGIES[DEFAULT_ROBUST]}.", ""]
    tables, results = robustness_tables(datasets, strategies, ATTACKS, levels, args.rounds, args.workers)
    if DEFAULT_ROBUST in strategies and 0.3 in levels:
        lines += ["## Target check (default robust strategy, 30% attackers)", "",
                  "| dataset | attack | accuracy change (points) | attackers' reward share | met |",
                  "|---|---|---|---|---|"]
        for d in datasets:
            base = results[(d, DEFAULT_ROBUST, None, 0.0)]["accuracy"]
            for a in ATTACKS:
                r = results[(d, DEFAULT_ROBUST, a, 0.3)]
                change, share = 100 * (r["accuracy"] - base), 100 * r["share"]
                met = "yes" if change >= -2.0 and share < 5.0 else "**no**"
                lines.append(f"| {d} | {a} | {change:+.1f} | {share:.1f}% | {met} |")
        lines.append("")
    lines += ["## Per strategy", "", *tables]
    if not args.skip_memory:
        lines += ["## Order statistics: time and memory", "", *order_statistics_bench()]
    lines.append(f"_Total benchmark time {time.monotonic() - started:.0f} s._")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

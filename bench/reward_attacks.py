"""Reward attacks: who gets paid under the default strategy when 30% of the trainers lie, copy or free-ride.

Each run is one federation of 10 non-IID (Dirichlet 0.5) trainers on digits or breast_cancer, 20 rounds, run
without the chain but with everything the aggregator does per round: the free-rider and near-duplicate checks
(``aggregator/freeriders.py``), attested weights (``aggregator/weights.py``), the default ``robust`` strategy and the
marginal-value scores (``aggregator/contribution.py``); rewards by the vault's formula
``score * weight / total`` per round (equal round budgets). Attackers are trainers 0-2; their *honest share* is what
the same three trainers earn in the attack-free run (where they train honestly).

Attacks, by class:

- ``inflate_one`` / ``inflate_three``: honest updates, sample counts claimed 1000x (one attacker / three).
- ``jitter_sybil``: trainer 0 trains; identities 1 and 2 send its update with their own 1% jitter.
- ``scaled_noise``: Gaussian noise scaled to the attacker's honest update's norm.
- ``replay_noise``: an honest trainer's update of the previous round plus 1% noise.
- ``public_only``: no training, only public models: ``g + (g - g_prev)`` (the last global step again) plus 1% noise.
- ``collude``: the three send the mean of their honest updates, each with its own 1% jitter (near-identical).
- ``alie`` (adaptive; "A Little Is Enough", Baruch et al. 2019): mean minus one standard deviation (per weight) of the
  attackers' honest updates, each with its own 1% jitter.
- ``ipm`` (adaptive; inner-product manipulation, Xie et al. 2020): ``g - 0.5 * mean`` of the attackers' honest
  changes, each with its own 1% jitter.
- ``split_sybil``: trainer 0 trains ``d``; the three identities send ``d + r_i`` with random ``r_i`` as long as ``d``
  and summing to zero (together they carry exactly ``3 d``, each looks like a different update).
- ``data_split``: trainer 0's data split in three, one third per identity, each trained on its own.
- ``absent``: the attackers send nothing (the attackers-absent reference); ``one_identity``: only trainer 0 trains
  and sends (what the two sybil attacks would earn by sending once: their target).

    .venv/bin/python bench/reward_attacks.py            # 2 datasets x 3 seeds x 11 cases, 20 rounds (minutes)
    .venv/bin/python bench/reward_attacks.py --quick    # digits, 1 seed

Results: ``bench/results/rewards.md``, with the targets marked.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator.contribution import contributions  # noqa: E402
from aggregator.fingerprints import sketch_key  # noqa: E402
from aggregator.freeriders import FreeRiderCheck, KnownUpdate  # noqa: E402
from aggregator.scoring import evaluate  # noqa: E402
from aggregator.strategies import ClientUpdate, FedAvg, RoundContext, ValidationSet, get_strategy  # noqa: E402
from aggregator.validation import RejectedUpdate  # noqa: E402
from aggregator.weights import attested_weights  # noqa: E402

TRAINERS = 10
ATTACKERS = (0, 1, 2)
DATASETS = {"digits": "mlp:64-32-10", "breast_cancer": "mlp:30-16-2"}
ATTACKS = ("inflate_one", "inflate_three", "jitter_sybil", "split_sybil", "data_split", "scaled_noise", "replay_noise",
           "public_only", "collude", "alie", "ipm", "absent", "one_identity")
REFERENCES = ("absent", "one_identity")  # not attacks: what the attackers earn by staying away, or sending once
ONE_RUN = ("jitter_sybil", "split_sybil", "data_split")  # one trainer's training behind three identities
NO_TRAINING = ("scaled_noise", "replay_noise", "public_only")  # carry no training of their own: target < 5%
CHECKPOINTS = (10, 20)


def _jitter(tensors: dict, reference: dict, rng: np.random.Generator, fraction: float = 0.01) -> dict:
    """``tensors`` plus Gaussian noise whose norm is ``fraction`` of ``||tensors - reference||``."""
    change = float(np.sqrt(sum(np.sum((tensors[k].astype(np.float64) - reference[k]) ** 2) for k in reference)))
    size = sum(v.size for v in reference.values())
    scale = fraction * change / np.sqrt(size) if change else fraction
    return {k: (v + rng.normal(scale=scale, size=v.shape)).astype(np.float32) for k, v in tensors.items()}


def _attack(kind: str, i: int, honest: dict[int, dict], glob: dict, previous: dict | None, replayable: dict | None,
            rng: np.random.Generator) -> dict | None:
    """What attacker ``i`` sends (None: nothing)."""
    own = honest[i]
    if kind in ("inflate_one", "inflate_three"):
        return own
    if kind == "jitter_sybil":
        return own if i == 0 else _jitter(honest[0], glob, rng)
    if kind == "scaled_noise":
        target = float(np.sqrt(sum(np.sum((own[k].astype(np.float64) - glob[k]) ** 2) for k in glob)))
        noise = {k: rng.normal(size=v.shape) for k, v in glob.items()}
        length = float(np.sqrt(sum(np.sum(v ** 2) for v in noise.values())))
        return {k: (glob[k] + noise[k] * target / length).astype(np.float32) for k in glob}
    if kind == "replay_noise":
        return _jitter(replayable if replayable is not None else own, glob, rng)
    if kind == "public_only":
        base = previous if previous is not None else {k: 0.99 * v for k, v in glob.items()}
        return _jitter({k: (2 * glob[k] - base[k]).astype(np.float32) for k in glob}, glob, rng)
    mean = {k: np.mean([honest[j][k] for j in ATTACKERS], axis=0) for k in glob}
    if kind == "collude":
        return _jitter(mean, glob, rng)
    if kind == "alie":
        std = {k: np.std([honest[j][k] for j in ATTACKERS], axis=0) for k in glob}
        return _jitter({k: (mean[k] - std[k]).astype(np.float32) for k in glob}, glob, rng)
    if kind == "ipm":
        return _jitter({k: (glob[k] - 0.5 * (mean[k] - glob[k])).astype(np.float32) for k in glob}, glob, rng)
    if kind == "data_split":  # trained on its third of trainer 0's data (run_federation)
        return own
    if kind in ("absent", "one_identity"):
        return None if kind == "absent" or i != 0 else own
    raise ValueError(f"unknown attack {kind!r}")


def _split_sybil(update: dict, glob: dict, rng: np.random.Generator) -> dict[int, dict]:
    """Trainer 0's update ``g + d`` as three identities' ``g + d + r_i``, ``r_i`` as long as ``d``, summing to 0."""
    d = {k: update[k].astype(np.float64) - glob[k] for k in glob}
    length = float(np.sqrt(sum(np.sum(v ** 2) for v in d.values())))
    raw = [{k: rng.normal(size=v.shape) for k, v in glob.items()} for _ in ATTACKERS]
    mean = {k: np.mean([r[k] for r in raw], axis=0) for k in glob}
    centred = [{k: r[k] - mean[k] for k in glob} for r in raw]  # sums to zero
    size = float(np.mean([np.sqrt(sum(np.sum(v ** 2) for v in r.values())) for r in centred]))
    return {i: {k: (glob[k] + d[k] + r[k] * (length / size)).astype(np.float32) for k in glob}  # one factor: sum 0
            for i, r in zip(ATTACKERS, centred, strict=True)}


def _claim(kind: str, i: int, n: int) -> int:
    inflated = (kind == "inflate_one" and i == 0) or (kind == "inflate_three" and i in ATTACKERS)
    return n * 1000 if inflated else n


def run_federation(job: tuple) -> dict:
    """One federation; per checkpoint: test accuracy, attackers' reward share, honest rank correlation."""
    import torch

    from client.trainer import TrainConfig, train_local
    from fedchain.architectures import initial_tensors
    from fedchain.data import dirichlet_partition, load_dataset, split_holdout

    torch.set_num_threads(1)
    dataset, attack, seed = job
    arch = DATASETS[dataset]
    x, y = load_dataset(dataset)
    (xt, yt), (xv, yv), (x_test, y_test) = split_holdout(x, y, 0.15, 0.2, seed)
    parts = dirichlet_partition(yt, TRAINERS, 0.5, seed)
    strategy = get_strategy("robust", {"byzantine": 3})
    config = TrainConfig(epochs=5, seed=seed)
    rng = np.random.default_rng(seed)
    glob, previous, state = initial_tensors(arch, seed), None, None
    earlier: list[tuple[str, int, dict]] = []  # (trainer, round, tensors) of the last rounds
    last_round: dict[int, dict] = {}
    attacker_share = rounds_paid = once_share = 0.0
    dropped = {"honest": 0, "attackers": 0}  # updates the validation filter excluded, so far
    correlations: list[float] = []
    out: dict = {"job": job}
    for round_ in range(1, max(CHECKPOINTS) + 1):
        honest = {i: train_local(arch, glob, xt[parts[i]], yt[parts[i]], config).tensors for i in range(TRAINERS)}
        sizes = {i: len(parts[i]) for i in range(TRAINERS)}
        full = honest[0]  # trainer 0's one training run on all its data
        if attack == "data_split":
            for i in ATTACKERS:
                third = parts[0][i::len(ATTACKERS)]
                honest[i], sizes[i] = train_local(arch, glob, xt[third], yt[third], config).tensors, len(third)
        sybils = _split_sybil(honest[0], glob, rng) if attack == "split_sybil" else {}
        key = sketch_key(round_.to_bytes(8, "big"))
        check = FreeRiderCheck(glob, [KnownUpdate.of(t, r, w, key) for t, r, w in earlier], previous, key=key)
        accepted, known = [], []
        for i in range(TRAINERS):
            sent = honest[i] if attack is None or i not in ATTACKERS else sybils[i] if sybils else _attack(
                attack, i, honest, glob, previous, last_round.get(9), rng)
            if sent is None:
                continue
            name = f"0x{i:040x}"
            known.append((name, round_, sent))
            try:
                check.check(name, round_, sent)
            except RejectedUpdate:
                continue
            accepted.append(ClientUpdate(name, sent, _claim(attack, i, sizes[i])))
        weights = attested_weights({u.trainer: u.num_samples for u in accepted})
        accepted = [ClientUpdate(u.trainer, u.tensors, weights[u.trainer]) for u in accepted]
        scores = {t: c.score for t, c in contributions(arch, glob, accepted, xv, yv, previous).items()}
        total = sum(scores[t] * weights[t] for t in scores)
        if total:
            rounds_paid += 1
            attacker_share += sum(scores[t] * weights[t] for t in scores if int(t, 16) in ATTACKERS) / total
        if attack in ONE_RUN:  # the same round had trainer 0 sent its one training run once, alone
            once_share += _share_sent_once(arch, glob, accepted, full, sizes, xv, yv, previous)
        if attack is None:
            correlations.append(_rank_correlation(arch, glob, accepted, scores, x_test, y_test))
        context = RoundContext(validation=ValidationSet(arch, xv, yv), rejected=len(known) - len(accepted),
                               server_state=state)
        result = strategy.aggregate(glob, accepted, context)
        for trainer in result.report.get("robust", {}).get("excluded", []):
            attacking = attack is not None and int(trainer, 16) in ATTACKERS
            dropped["attackers" if attacking else "honest"] += 1
        previous, (glob, state) = glob, (result.tensors, result.server_state)
        earlier = [k for k in earlier if k[1] >= round_ - 1] + known
        last_round = {int(t, 16): dict(w) for t, _, w in known}
        if round_ in CHECKPOINTS:
            out[round_] = {"accuracy": evaluate(arch, glob, x_test, y_test).accuracy,
                           "share": attacker_share / rounds_paid if rounds_paid else 0.0,
                           "once": once_share / rounds_paid if rounds_paid else 0.0,
                           "dropped_honest": dropped["honest"], "dropped_attackers": dropped["attackers"],
                           "correlation": float(np.mean(correlations)) if correlations else None}
    return out


def _share_sent_once(arch: str, glob: dict, accepted: list, full: dict, sizes: dict, xv: np.ndarray, yv: np.ndarray,
                     previous: dict | None) -> float:
    """Trainer 0's share of a round whose accepted updates are ``accepted`` without the three identities, plus
    trainer 0's one training run ``full``: what sending it once would have earned, on the same federation state."""
    name = f"0x{0:040x}"
    others = [u for u in accepted if int(u.trainer, 16) not in ATTACKERS]
    claims = {u.trainer: sizes[int(u.trainer, 16)] for u in others} | {name: sizes[0]}
    weights = attested_weights(claims)
    updates = [ClientUpdate(u.trainer, u.tensors, weights[u.trainer]) for u in others]
    updates.append(ClientUpdate(name, full, weights[name]))
    scores = {t: c.score for t, c in contributions(arch, glob, updates, xv, yv, previous).items()}
    total = sum(scores[t] * weights[t] for t in scores)
    return scores[name] * weights[name] / total if total else 0.0


def _rank_correlation(arch: str, glob: dict, accepted: list, scores: dict, x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation between the scores and each update's leave-one-out test-accuracy change under FedAvg."""
    full = evaluate(arch, FedAvg().aggregate(glob, accepted).tensors, x, y).accuracy
    loo = [full - evaluate(arch, FedAvg().aggregate(glob, [v for v in accepted if v is not u]).tensors, x, y).accuracy
           for u in accepted]
    a = np.argsort(np.argsort([scores[u.trainer] for u in accepted]))
    b = np.argsort(np.argsort(loo))
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def report(results: dict, datasets: list[str], seeds: range) -> list[str]:
    lines = ["# Reward attacks", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Targets (default strategy, 30% attackers, 3 seeds, 10 and 20 rounds): attackers earn no more than their "
             "honest share, and under 5% for attacks that carry no training of their own (" + ", ".join(NO_TRAINING) +
             "); final test accuracy within 2 points of the attack-free run, or of the attackers-absent run where "
             "that is lower. For one training run behind three identities (" + ", ".join(ONE_RUN) + ") the "
             "honest share is what trainer 0 would have earned in the same rounds by sending its one training run "
             "once, alone (scored against the same other updates); ``one_identity`` is that federation run on its "
             "own. *Filter dropped*: updates the "
             "validation filter excluded (byzantine = 3), summed over the rounds so far, mean over seeds; it never "
             "drops more than min(h, n - 2h - 1) a round (h = 3 - rejected).",
             ""]
    met = cases = 0
    for rounds in CHECKPOINTS:
        lines += [f"## {rounds} rounds", "", "| dataset | attack | attackers' share | their honest share | "
                  "accuracy change vs attack-free (points) | vs attackers absent | filter dropped: honest / attackers "
                  "| met |", "|---|---|---|---|---|---|---|---|"]
        for d in datasets:
            def mean(attack, key, d=d, rounds=rounds):
                return float(np.mean([results[(d, attack, s)][rounds][key] for s in seeds]))
            honest_share, free = mean(None, "share"), mean(None, "accuracy")
            absent = mean("absent", "accuracy")
            for attack in (None, *ATTACKS):
                drops = f"{mean(attack, 'dropped_honest'):.1f} / {mean(attack, 'dropped_attackers'):.1f}"
                if attack is None or attack in REFERENCES:
                    share = f"{100 * mean(attack, 'share'):.1f}%" if attack == "one_identity" else ""
                    lines.append(f"| {d} | {attack or 'none (attack-free)'} | {share} | | | | {drops} | |")
                    continue
                share, acc = mean(attack, "share"), mean(attack, "accuracy")
                reference = min(free, absent)
                # one training run behind three identities is owed what sending it once earns, same rounds
                fair = mean(attack, "once") if attack in ONE_RUN else honest_share
                ok_share = share <= fair + 1e-9 and (attack not in NO_TRAINING or share < 0.05)
                ok = ok_share and 100 * (acc - reference) >= -2.0
                met += ok
                cases += 1
                lines.append(f"| {d} | {attack} | {100 * share:.1f}% | {100 * fair:.1f}% | "
                             f"{100 * (acc - free):+.1f} | {100 * (acc - absent):+.1f} | {drops} | "
                             f"{'yes' if ok else '**no**'} |")
        lines.append("")
    lines += [f"Targets met in {met} of {cases} cases.", "",
              "Rank correlation (Spearman, attack-free runs, mean over rounds and seeds) between the scores and each "
              "accepted update's leave-one-out test-accuracy change under FedAvg:", "",
              "| dataset | 10 rounds | 20 rounds |", "|---|---|---|"]
    for d in datasets:
        cells = [np.mean([results[(d, None, s)][r]["correlation"] for s in seeds]) for r in CHECKPOINTS]
        lines.append(f"| {d} | {cells[0]:+.2f} | {cells[1]:+.2f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "rewards.md"))
    args = parser.parse_args()
    datasets = ["digits"] if args.quick else list(DATASETS)
    seeds = range(1 if args.quick else args.seeds)
    jobs = [(d, a, s) for d in datasets for s in seeds for a in (None, *ATTACKS)]
    started, results = time.monotonic(), {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for done, result in enumerate(pool.map(run_federation, jobs, chunksize=1), 1):
            results[result["job"]] = result
            print(f"  {done}/{len(jobs)} runs ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    lines = report(results, datasets, seeds)
    lines.append(f"_`.venv/bin/python bench/reward_attacks.py` regenerates this file; this run took "
                 f"{time.monotonic() - started:.0f} s._")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

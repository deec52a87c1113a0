"""Compact update transport: bytes saved and accuracy lost by float16 and bfloat16 updates against float32.

Each run is a federation of 10 non-IID (Dirichlet 0.5) trainers, 10 rounds of FedAvg, without the chain but
through the code a round uses for files: every update is written with ``write_model_file`` in the transport,
read back with ``validate_update_file`` (float32 values) and summed by ``FedAvg`` in float64. The same seed gives
the same data split, initial model and training for the three transports, so differences come from rounding
alone. Reported: bytes per update file, final test accuracy (mean over seeds) and its change against float32.

Targets (issue 17 asks for the measurement, not a bound): none; the table says what a task gives up.

``--quick``: digits only, one seed. ``--json`` prints the rows. Results: bench/results/compact_updates.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.scoring import evaluate  # noqa: E402
from aggregator.strategies import ClientUpdate, FedAvg  # noqa: E402
from aggregator.validation import validate_update_file  # noqa: E402
from client.trainer import TrainConfig, train_local  # noqa: E402
from fedchain.architectures import expected_shapes, initial_tensors  # noqa: E402
from fedchain.codec import ModelManifest  # noqa: E402
from fedchain.data import dirichlet_partition, load_dataset, split_holdout  # noqa: E402
from fedchain.modelfile import model_file_bytes, write_model_file  # noqa: E402

TRANSPORTS = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
DATASETS = {"digits": "cnn:1x8x8-32-64-10", "breast_cancer": "mlp:30-16-2"}
TRAINERS, ROUNDS = 10, 10


def federation(dataset: str, transport: str, seed: int, workdir: Path) -> dict:
    arch = DATASETS[dataset]
    x, y = load_dataset(dataset)
    (xt, yt), _, (x_test, y_test) = split_holdout(x, y, 0.15, 0.2, seed)
    parts = dirichlet_partition(yt, TRAINERS, alpha=0.5, seed=seed)
    shapes = expected_shapes(arch)
    bound = model_file_bytes(shapes)
    glob = initial_tensors(arch, seed)
    sizes = []
    for round_ in range(1, ROUNDS + 1):
        updates = []
        for i, part in enumerate(parts):
            config = TrainConfig(epochs=1, seed=seed * 1000 + round_ * 10 + i)
            tensors = train_local(arch, glob, xt[part], yt[part], config).tensors
            path = write_model_file(tensors, ModelManifest(kind="update", architecture=arch), workdir / f"u{i}",
                                    TRANSPORTS[transport])
            sizes.append(path.stat().st_size)
            updates.append(ClientUpdate(f"0x{i:040x}", validate_update_file(path, shapes, bound,
                                                                            TRANSPORTS[transport])[0], 1))
        glob = FedAvg().aggregate(glob, updates).tensors
    return {"bytes": statistics.mean(sizes), "accuracy": evaluate(arch, glob, x_test, y_test).accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="digits, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    datasets = ["digits"] if args.quick else list(DATASETS)
    seeds = range(1 if args.quick else args.seeds)
    rows = []
    with tempfile.TemporaryDirectory(prefix="compact-") as tmp:
        for dataset in datasets:
            runs = {t: [federation(dataset, t, s, Path(tmp)) for s in seeds] for t in TRANSPORTS}
            base = statistics.mean(r["accuracy"] for r in runs["float32"])
            for transport, found in runs.items():
                accuracy = statistics.mean(r["accuracy"] for r in found)
                rows.append({"dataset": dataset, "architecture": DATASETS[dataset], "transport": transport,
                             "bytes_per_update": statistics.mean(r["bytes"] for r in found),
                             "bytes_vs_float32": statistics.mean(r["bytes"] for r in found)
                             / statistics.mean(r["bytes"] for r in runs["float32"]),
                             "accuracy": accuracy, "accuracy_change_points": 100 * (accuracy - base),
                             "seeds": len(seeds)})
    if args.markdown:
        lines = ["# Compact update transport", "",
                 f"`bench/compact_updates.py{' --quick' if args.quick else ''}`, {time.strftime('%Y-%m-%d')}: "
                 f"{TRAINERS} non-IID trainers (Dirichlet 0.5), {ROUNDS} rounds of FedAvg, one local epoch, "
                 f"mean over {len(seeds)} seed(s); every update written in the transport and read back through the "
                 "aggregator's file path, summed in float64. Same seeds, same data and training for every "
                 "transport.", "",
                 "| dataset | architecture | transport | bytes per update | vs float32 | final test accuracy "
                 "| change (points) |", "|---|---|---|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['dataset']} | `{r['architecture']}` | {r['transport']} | "
                         f"{r['bytes_per_update']:,.0f} | {r['bytes_vs_float32']:.2f} | {100 * r['accuracy']:.2f}% | "
                         f"{r['accuracy_change_points']:+.2f} |")
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['dataset']:>14} {r['transport']:>9} {r['bytes_per_update']:>10,.0f} B "
              f"({r['bytes_vs_float32']:.2f}x) accuracy {100 * r['accuracy']:.2f}% "
              f"({r['accuracy_change_points']:+.2f})")


if __name__ == "__main__":
    main()

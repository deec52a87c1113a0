"""Training throughput of DP-SGD (Opacus, each supported grad-sample mode) relative to non-private training
on the same model, data and batch size, measured in the same run.

Runs ``client.trainer.train_local`` directly (no chain): the non-private baseline and each DP mode train the
same architecture on the same digits samples with the same expected batch size and epochs. Runs are
interleaved (baseline, ghost, hooks, baseline, ...) and the median of ``--repeats`` runs is reported, so a
machine busy with other work slows all of them alike. Throughput = samples processed per second
(epochs x samples / wall seconds, Opacus setup included).

Run: ``.venv/bin/python bench/dp_throughput.py [--repeats 5] [--epochs 10]``; writes
``bench/results/dp_throughput.md`` and prints the table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.trainer import GRAD_SAMPLE_MODES, TrainConfig, train_local  # noqa: E402
from fedchain.data import load_dataset  # noqa: E402
from fedchain.models import initial_tensors  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 0.4


def measure(architecture: str, config: TrainConfig, x, y) -> float:
    """Samples per second of one ``train_local`` call."""
    start_tensors = initial_tensors(architecture, 0)
    started = time.perf_counter()
    train_local(architecture, start_tensors, x, y, config)
    return config.epochs * len(y) / (time.perf_counter() - started)


@click.command()
@click.option("--architecture", "architectures", multiple=True, default=("mlp:64-32-10", "mlp:64-256-128-10"),
              show_default=True)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1, 50))
def main(architectures: tuple[str, ...], batch_size: int, epochs: int, repeats: int) -> None:
    """DP-SGD / non-private throughput ratio per Opacus grad-sample mode."""
    x, y = load_dataset("digits")
    base = TrainConfig(epochs=epochs, batch_size=batch_size, seed=1)
    configs = {"non-private": base}
    for mode in GRAD_SAMPLE_MODES:
        configs[mode] = TrainConfig(epochs=epochs, batch_size=batch_size, seed=1, dp=True, noise_multiplier=1.0,
                                    max_grad_norm=1.0, grad_sample_mode=mode)
    rows = []
    for architecture in architectures:
        measure(architecture, base, x[:256], y[:256])  # warm-up (imports, allocator, Opacus hooks)
        samples: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(repeats):
            for name, config in configs.items():
                samples[name].append(measure(architecture, config, x, y))
        baseline = statistics.median(samples["non-private"])
        for name in configs:
            speed = statistics.median(samples[name])
            rows.append((architecture, name, speed, speed / baseline))
            click.echo(f"{architecture} {name}: {speed:,.0f} samples/s ({speed / baseline:.2f}x)", err=True)
    lines = [
        "# DP-SGD throughput vs non-private training",
        "",
        f"digits ({len(y)} samples), batch size {batch_size} (expected batch under Poisson sampling), {epochs} "
        f"epochs per run, median of {repeats} interleaved runs, CPU (torch threads: default). Same model, data "
        "and batch for every row; ratio = DP samples/s over non-private samples/s of the same architecture, "
        f"measured in the same run. Target: >= {TARGET_RATIO}x.",
        "",
        "| architecture | training | samples/s | ratio to non-private | target met |",
        "|---|---|---|---|---|",
    ]
    for architecture, name, speed, ratio in rows:
        met = "-" if name == "non-private" else ("yes" if ratio >= TARGET_RATIO else "no")
        mode = {"ghost": "DP-SGD, ghost clipping", "hooks": "DP-SGD, per-sample gradients (hooks)"}.get(name, name)
        lines.append(f"| `{architecture}` | {mode} | {speed:,.0f} | {ratio:.2f}x | {met} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dp_throughput.md").write_text(text)
    click.echo(text)


if __name__ == "__main__":
    main()

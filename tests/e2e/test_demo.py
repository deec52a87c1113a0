"""`fedchain demo --json` as a user runs it (against the test's anvil), with DP on."""

from __future__ import annotations

import json
import subprocess

from tests.support.cli import BIN, REPO, cli_env


def test_demo_json_summary_with_dp(fedchain_home):
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--rounds", "2", "--trainers", "3", "--dp",
                           "--epsilon", "4", "--json"], cwd=REPO, env=cli_env(fedchain_home),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout is pure JSON; the tables go to stderr
    assert "Round 1" in proc.stderr and "final test accuracy" in proc.stderr
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert r["status"] == "finalized" and r["accepted"] == 3
        assert 0 < r["epsilon"] <= 4.0
        assert r["gas_used"] > 0 and 0 <= r["test_accuracy"] <= 1
        split = r["time_split"]  # every round's time, split: training, the committee's computation, the chain
        assert set(split) == {"training", "aggregation", "chain"} and split["training"] > 0 < split["aggregation"]
        assert abs(sum(split.values()) - r["seconds"]) <= 0.05, (split, r["seconds"])
        # 1000 FED over 2 rounds, 3% of each round to the committee (RewardVault's default terms)
        assert abs(sum(r["rewards"].values()) - 500.0 * 0.97) < 1e-6
    assert rounds[1]["epsilon"] > rounds[0]["epsilon"]
    balances = {b["name"]: b for b in summary["balances"]}
    assert sum(balances[f"trainer {i}"]["balance"] for i in (1, 2, 3)) > 3 * 900
    assert balances["aggregator 1"]["balance"] == 500 + 2 * 500.0 * 0.03  # 1000 minted, 500 staked, its share
    assert summary["final_test_accuracy"] == rounds[-1]["test_accuracy"]
    assert summary["architecture"] == "logreg:64-10"  # --dp trains the model the DP defaults are tuned for


def test_demo_runs_an_example_task_file(fedchain_home):
    """`fedchain demo --example breast_cancer`: the example's architecture, rounds and trainers on its dataset."""
    from sponsor.taskfile import load_task_file

    task = load_task_file(REPO / "examples" / "breast_cancer" / "task.toml")
    env = cli_env(fedchain_home)
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--example", "breast_cancer", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["architecture"], summary["dataset"]) == (task.architecture, "breast_cancer")
    assert len(summary["rounds"]) == task.rounds
    assert all(r["accepted"] == task.max_trainers for r in summary["rounds"])
    assert summary["final_test_accuracy"] > 0.9  # breast_cancer's held-out test set, 30 features, 2 classes
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--example", "no_such_example"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no example 'no_such_example'" in proc.stderr and "breast_cancer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_runs_the_cnn_example_through_the_chain(fedchain_home):
    """`fedchain demo --example digits_cnn --rounds 3`: digits as 1x8x8 images trained with the cnn family; the
    aggregator scores with the family's numpy forward pass (bench/models.py runs the example's full 10 rounds)."""
    env = cli_env(fedchain_home)
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--example", "digits_cnn", "--rounds", "3", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["architecture"].startswith("cnn:1x8x8-") and len(summary["rounds"]) == 3
    assert all(r["accepted"] == 5 and r["rejected"] == 0 for r in summary["rounds"])
    accuracy = [r["test_accuracy"] for r in summary["rounds"]]
    assert accuracy[-1] > 0.85 and accuracy[-1] > accuracy[0]  # learns through the chain, round after round

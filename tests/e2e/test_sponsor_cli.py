"""The sponsor's walkthrough (docs/TASKS.md) as separate processes, CLI only: deploy with --mint, split a bundled
dataset, create a task from a task file (dry run first), trainers and an aggregator in their own processes, then
the rounds' accuracy, a verified download of the final model, its evaluation on held-out data, balances, ABIs and
the reclaim. User errors are one line each."""

from __future__ import annotations

import json
import subprocess

import numpy as np
from ape import accounts

from aggregator.scoring import evaluate
from fedchain.ape.chain import Fedchain
from fedchain.codec import decode_model, sha256
from fedchain.data import load_npz
from fedchain.protocol import ONE_TOKEN, TaskStatus
from tests.support.cli import BIN, NETWORK, REPO, cli_env, error_lines, fails, run

FEDCHAIN = str(BIN / "fedchain")
ON = ["--network", NETWORK]

TASK_FILE = """
[task]
architecture = "mlp:30-16-2"
rounds = 2
budget = "100"
min_trainers = 2
max_trainers = 2

[model]
init_seed = 3

[validation]
file = "data/validation.npz"

[durations]
default = 120

[stakes]
trainer_bond = "10"
aggregator_bond = "100"
"""


def _json(args: list[str], env) -> dict | list:
    out = run(args, env)
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError(f"{args[1:3]} --json printed more than JSON on stdout:\n{out}") from None


def _deploy(env, agg, mints: dict[str, int]) -> Fedchain:
    args = [str(BIN / "ape"), "run", "deploy", *ON, "--account", "TEST::0", "--aggregator", agg.address]
    for who, amount in mints.items():
        args += ["--mint", f"{who}={amount}"]
    run(args, env)
    return Fedchain.connect()


def test_a_sponsor_runs_a_task_from_a_task_file_through_the_cli(fedchain_home, tmp_path):
    walkthrough(fedchain_home, tmp_path)


def walkthrough(fedchain_home, tmp_path, stores: dict[str, str] | None = None) -> None:
    """The walkthrough; ``stores``: each party's content store ("sponsor", "aggregator", "trainer1", "trainer2"
    -> a FEDCHAIN_STORE value), or all on the shared local store."""
    env = cli_env(fedchain_home)

    def env_of(party: str) -> dict[str, str]:
        return env if stores is None else {**env, "FEDCHAIN_STORE": stores[party]}

    pool = accounts.test_accounts
    sponsor, agg, t1, t2 = pool[2], pool[3], pool[4], pool[5]
    fed = _deploy(env, agg, {sponsor.address: 1000})  # no --governance: the deployer mints
    assert fed.token.balanceOf(sponsor.address) == 1000 * ONE_TOKEN
    out = run([FEDCHAIN, "dataset", "split", "breast_cancer", "-o", str(tmp_path / "data"), "--trainers", "2"], env)
    assert "validation.npz" in out and "trainer-2.npz" in out
    task_file = tmp_path / "task.toml"
    task_file.write_text(TASK_FILE)
    store_objects = fedchain_home / "store" / "objects"

    dry = _json([FEDCHAIN, "task", "create", "--file", str(task_file), "--dry-run", "--json", *ON,
                 "--account", "TEST::2"], env)
    assert dry["dry_run"] and dry["params"]["num_rounds"] == 2 and dry["params"]["max_trainers"] == 2
    assert dry["params"]["reward_budget"] == 100 * ONE_TOKEN and dry["params"]["commit_duration"] == 120
    assert fed.task_count() == 0
    if stores is None:
        assert not (store_objects.is_dir() and any(store_objects.iterdir()))  # nothing stored
    created = _json([FEDCHAIN, "task", "create", "--file", str(task_file), "--json", *ON, "--account", "TEST::2"],
                    env_of("sponsor"))
    task_id = created["task_id"]
    assert created["params"] == dry["params"]  # the dry run resolved exactly what was created
    spec = fed.task(task_id).spec
    assert spec.initial_model_cid == dry["params"]["initial_model_cid"] and spec.num_rounds == 2

    for who, index, amount, stake in ((agg, 3, 200, 150), (t1, 4, 60, 50), (t2, 5, 60, 50)):
        out = run([FEDCHAIN, "token", "transfer", who.address, str(amount), *ON, "--account", "TEST::2"], env)
        assert f"sent {amount} FED" in out
        run([FEDCHAIN, "client", "stake", str(stake), *ON, "--account", f"TEST::{index}"], env)
    procs = [subprocess.Popen([FEDCHAIN, "aggregator", "run", "--task", str(task_id), "--account", "TEST::3", *ON,
                               "--timeout", "400"], cwd=REPO, env=env_of("aggregator"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)]
    for shard, index in ((1, 4), (2, 5)):
        procs.append(subprocess.Popen(
            [FEDCHAIN, "client", "run", "--task", str(task_id), "--data", str(tmp_path / f"data/trainer-{shard}.npz"),
             "--epochs", "3", "--account", f"TEST::{index}", *ON],
            cwd=REPO, env=env_of(f"trainer{shard}"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        output, _ = proc.communicate(timeout=480)
        assert proc.returncode == 0, output
    assert fed.task(task_id).status == TaskStatus.COMPLETED

    rounds = _json([FEDCHAIN, "task", "rounds", str(task_id), "--json", *ON], env)
    assert [r["phase"] for r in rounds] == ["finalized", "finalized"]
    for row in rounds:
        rnd = fed.round(task_id, row["round"])
        assert row["accuracy"] == rnd.accuracy_ppm / 1e6 and row["loss"] == rnd.loss_micro / 1e6
        assert row["result_cid"] == rnd.result_cid and row["accepted"] == 2
    listed = _json([FEDCHAIN, "task", "list", "--json", *ON], env)
    assert [(t["task_id"], t["status"]) for t in listed] == [(task_id, "completed")]

    final = tmp_path / "final.safetensors"
    got = _json([FEDCHAIN, "model", "get", str(task_id), "-o", str(final), "--json", *ON], env_of("sponsor"))
    task = fed.task(task_id)
    assert got["cid"] == task.global_model_cid and sha256(final.read_bytes()) == task.global_model_digest
    evaluated = _json([FEDCHAIN, "model", "eval", str(final), "--data", str(tmp_path / "data/test.npz"), "--json"],
                      env)
    x, y = load_npz(tmp_path / "data/test.npz")
    tensors, manifest = decode_model(final.read_bytes())
    expected = evaluate(manifest.architecture, tensors, x, y)
    assert evaluated["accuracy"] == expected.accuracy and evaluated["rows"] == len(y)
    assert evaluated["accuracy"] > 0.85  # breast_cancer after two federated rounds
    initial = tmp_path / "initial.safetensors"
    got = _json([FEDCHAIN, "model", "get", str(task_id), "--round", "0", "-o", str(initial), "--json", *ON],
                env_of("sponsor"))
    assert got["cid"] == spec.initial_model_cid and sha256(initial.read_bytes()) == spec.initial_model_digest
    assert not np.array_equal(decode_model(initial.read_bytes())[0]["0.weight"], tensors["0.weight"])

    status = _json([FEDCHAIN, "client", "status", "--task", str(task_id), "--json", *ON, "--account", "TEST::4"],
                   env_of("trainer1"))
    assert [(r["round"], r["status"]) for r in status["task"]["participation"]] == [(1, "claimed"), (2, "claimed")]
    assert status["staked"]["fed"] == "50 FED" and status["task"]["claimable"] == []
    balance = _json([FEDCHAIN, "token", "balance", t1.address, "--json", *ON], env)
    assert balance["staked"] == "50 FED" and int(balance["balance_wei"]) == fed.token.balanceOf(t1.address)
    assert int(balance["balance_wei"]) > 10 * ONE_TOKEN  # 60 - 50 staked + its rewards
    out = run([FEDCHAIN, "abi", "export", "-o", str(tmp_path / "abi")], env)
    abi = json.loads((tmp_path / "abi" / "TaskManager.json").read_text())
    assert any(item.get("name") == "createTask" for item in abi) and "deployments.json" in out
    assert json.loads((tmp_path / "abi" / "deployments.json").read_text())
    # both rounds allocated their budget: nothing to reclaim, said in one line (no call trace: nothing was sent)
    height = fed.head()
    out = fails([FEDCHAIN, "task", "reclaim", str(task_id), *ON, "--account", "TEST::2"], env)
    [line] = error_lines(out)
    assert "no unallocated budget left" in line and "Call trace" not in out, out
    assert fed.head() == height


def test_sponsor_mistakes_are_one_line_each(fedchain_home, tmp_path):
    env = cli_env(fedchain_home)
    pool = accounts.test_accounts
    sponsor, agg = pool[2], pool[3]
    fed = _deploy(env, agg, {sponsor.address: 50})
    run([FEDCHAIN, "dataset", "split", "breast_cancer", "-o", str(tmp_path / "data"), "--trainers", "1"], env)
    create = [FEDCHAIN, "task", "create", "--dry-run", *ON, "--account", "TEST::2", "--file"]

    def refused(text: str, name: str = "task.toml") -> str:
        (tmp_path / name).write_text(text)
        [line] = error_lines(fails([*create, str(tmp_path / name)], env))
        return line

    assert "[task]: unknown key(s) colour" in refused(TASK_FILE.replace("[task]", "[task]\ncolour = 'red'"))
    assert "[task] rounds: expected an integer" in refused(TASK_FILE.replace("rounds = 2", "rounds = '2'"))
    assert "[model]" in refused(TASK_FILE.replace("init_seed = 3", "init_seed = 3\nfile = 'm.safetensors'"))
    line = refused(TASK_FILE.replace('"mlp:30-16-2"', '"mlp:64-32-10"'))
    assert "does not fit mlp:64-32-10" in line, line  # breast_cancer has 30 features
    line = refused(TASK_FILE.replace("[stakes]", "[committee]\nsize = 2\nquorum = 2\n\n[stakes]"))
    assert "strict majority" in line, line
    line = refused(TASK_FILE.replace('budget = "100"', 'budget = "500"'))
    assert "holds 50 FED" in line and "500 FED" in line and "wei" not in line, line
    line = refused(TASK_FILE.replace("default = 120", "default = 0"))
    assert "[durations] default" in line, line
    line = refused(TASK_FILE.replace("data/validation.npz", "data/missing.npz"))
    assert "missing.npz" in line, line
    assert fed.task_count() == 0
    [line] = error_lines(fails([FEDCHAIN, "model", "get", "1", "-o", str(tmp_path / "m"), *ON], env))
    assert "no task 1" in line
    [line] = error_lines(fails([FEDCHAIN, "token", "transfer", agg.address, "51", *ON, "--account", "TEST::2"], env))
    assert "holds 50 FED" in line
    out = fails([str(BIN / "ape"), "run", "deploy", *ON, "--account", "TEST::0", "--admin", agg.address,
                 "--mint", f"{agg.address}=1"], env)
    assert "--mint and --admin" in out

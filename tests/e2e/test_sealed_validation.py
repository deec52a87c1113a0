"""A task with a sealed validation set, CLI only: the sponsor's keys stay on its disk until each round's trainers
are done, the committee waits for them, and every round is scored on its own section."""

from __future__ import annotations

import json
import stat
import subprocess

import numpy as np
from ape import accounts

from aggregator.scoring import evaluate, quantize_ppm
from fedchain.codec import decode_model
from fedchain.data import load_npz
from fedchain.protocol import Phase, TaskStatus
from fedchain.sealed import key_hash, read_sealed
from fedchain.store import open_store
from sponsor.keys import keys_path, load_keys
from tests.e2e.test_sponsor_cli import FEDCHAIN, ON, TASK_FILE, _deploy, _json
from tests.support.cli import REPO, cli_env, error_lines, fails, run

LIMIT = 64 * 1024 * 1024
SEALED_TASK = TASK_FILE.replace('file = "data/validation.npz"', 'file = "data/validation.npz"\nsealed_sections = 2')


def test_a_sealed_validation_set_is_opened_round_by_round(fedchain_home, tmp_path):
    env = cli_env(fedchain_home)
    pool = accounts.test_accounts
    sponsor, agg, t1, t2 = pool[2], pool[3], pool[4], pool[5]
    fed = _deploy(env, agg, {sponsor.address: 1000})
    run([FEDCHAIN, "dataset", "split", "breast_cancer", "-o", str(tmp_path / "data"), "--trainers", "2"], env)
    (tmp_path / "task.toml").write_text(SEALED_TASK)
    (tmp_path / "bad.toml").write_text(SEALED_TASK.replace("sealed_sections = 2", "sealed_sections = 3"))
    [line] = error_lines(fails([FEDCHAIN, "task", "create", "--dry-run", *ON, "--account", "TEST::2", "--file",
                                str(tmp_path / "bad.toml")], env))
    assert "[validation] sealed_sections" in line, line  # more sections than rounds: one would never be used
    created = _json([FEDCHAIN, "task", "create", "--file", str(tmp_path / "task.toml"), "--json", *ON,
                     "--account", "TEST::2"], env)
    task_id = created["task_id"]
    spec = fed.task(task_id).spec
    keys = load_keys(spec.validation_digest)
    assert len(keys) == 2 and stat.S_IMODE(keys_path(spec.validation_digest).stat().st_mode) == 0o600
    blob = open_store(None).get(spec.validation_cid, sha256=spec.validation_digest, max_bytes=LIMIT)
    sealed = read_sealed(blob)
    assert [key_hash(k) for k in keys] == list(sealed.key_hashes)
    x_val, y_val = load_npz(tmp_path / "data/validation.npz")
    assert x_val[:4].tobytes() not in blob and x_val[1::2][:4].tobytes() not in blob  # nothing readable

    # nothing is due before the trainers are done; a stranger cannot publish
    assert run([FEDCHAIN, "task", "reveal-keys", str(task_id), *ON, "--account", "TEST::2"], env).strip() == ""
    [line] = error_lines(fails([FEDCHAIN, "task", "reveal-keys", str(task_id), *ON, "--account", "TEST::4"], env))
    assert "only its sponsor" in line
    elsewhere = {**env, "FEDCHAIN_HOME": str(tmp_path / "other-home")}  # the keys stayed on the sponsor's disk
    (tmp_path / "other-home").mkdir()
    (tmp_path / "other-home" / "deployments.json").write_text((fedchain_home / "deployments.json").read_text())
    [line] = error_lines(fails([FEDCHAIN, "task", "reveal-keys", str(task_id), *ON, "--account", "TEST::2"],
                               elsewhere))
    assert "no validation keys" in line and "not sealed" in line, line
    # a keys file whose keys do not open the sealed file's sections is refused before anything is sent
    swapped = tmp_path / "other-home" / "validation-keys" / f"{spec.validation_digest.hex()}.json"
    swapped.parent.mkdir()
    swapped.write_text(json.dumps({"sealed_sha256": spec.validation_digest.hex(), "keys": [keys[1].hex(),
                                                                                          keys[0].hex()]}))
    [line] = error_lines(fails([FEDCHAIN, "task", "reveal-keys", str(task_id), *ON, "--account", "TEST::2",
                                "--store", f"local:{fedchain_home / 'store'}"], elsewhere))
    assert "key 0 of the keys file does not open section 0" in line, line

    for who, index, amount, stake in ((agg, 3, 200, 150), (t1, 4, 60, 50), (t2, 5, 60, 50)):
        run([FEDCHAIN, "token", "transfer", who.address, str(amount), *ON, "--account", "TEST::2"], env)
        run([FEDCHAIN, "client", "stake", str(stake), *ON, "--account", f"TEST::{index}"], env)
    procs = [subprocess.Popen([FEDCHAIN, "aggregator", "run", "--task", str(task_id), "--account", "TEST::3", *ON,
                               "--timeout", "400"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)]
    for shard, index in ((1, 4), (2, 5)):
        procs.append(subprocess.Popen(
            [FEDCHAIN, "client", "run", "--task", str(task_id), "--data", str(tmp_path / f"data/trainer-{shard}.npz"),
             "--epochs", "3", "--account", f"TEST::{index}", *ON],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    watcher = subprocess.Popen([FEDCHAIN, "task", "reveal-keys", str(task_id), "--watch", "--poll", "0.3", *ON,
                                "--account", "TEST::2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for proc in [*procs, watcher]:
        output, _ = proc.communicate(timeout=480)
        assert proc.returncode == 0, output
    assert fed.task(task_id).status == TaskStatus.COMPLETED
    assert "published the validation key of round 1" in output and "round 2" in output, output
    shown = _json([FEDCHAIN, "task", "show", str(task_id), "--json", *ON], env)
    assert shown["validation_keys_published"] == [1, 2]

    for round_, key in ((1, keys[0]), (2, keys[1])):
        assert fed.validation_key(task_id, round_) == key
        revealed = [e for e in fed.events("validation_keys", "ValidationKeyRevealed", fed.deployment.block, None,
                                          {"taskId": task_id, "round": round_})]
        published_at = revealed[0].block_number
        opened_at = fed.phase_reached_block(task_id, round_, Phase.AGGREGATOR_COMMIT).block_number
        assert published_at >= opened_at  # never while trainers could still commit or reveal
        rnd = fed.round(task_id, round_)
        tensors, _ = decode_model(open_store(None).get(rnd.result_cid, sha256=rnd.result_digest, max_bytes=LIMIT))
        x, y = sealed.open(round_, key)
        assert np.array_equal(x, x_val[round_ - 1::2]) and np.array_equal(y, y_val[round_ - 1::2])
        # the round's accuracy on chain is its result's accuracy on the round's own section
        assert rnd.accuracy_ppm == quantize_ppm(evaluate(spec.architecture, tensors, x, y).accuracy)

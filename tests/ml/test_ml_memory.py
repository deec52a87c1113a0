"""Aggregating updates streamed from the store takes memory that does not grow with their number: the peak RSS of
FedAvg over 10 updates of 50 MB, read from a real local store, stays under the bound stated here; the in-memory
path it replaced does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fedchain.codec import ModelManifest
from fedchain.modelfile import write_model_file
from fedchain.store.base import file_sha256
from fedchain.store.local import LocalContentStore
from tests.support.subproc import ROOT

PARAMS = 12_500_000  # 50 MB of float32
UPDATES = 10
MODEL_BYTES = 4 * PARAMS
BOUND = 2 * MODEL_BYTES + 64 * 2**20  # the result (1x), one chunk of the float64 sum and reads, headroom

AGGREGATE = """
import json, sys, tempfile
from pathlib import Path
import numpy as np
import pytest
from aggregator.strategies import ClientUpdate, get_strategy
from aggregator.validation import validate_update, validate_update_file
from fedchain.codec import ModelManifest
from fedchain.modelfile import model_file_bytes, write_model_file
from fedchain.store.local import LocalContentStore

mode, root, refs, rule = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
store = LocalContentStore(root)
shapes = {"b": (16,), "w": (PARAMS,)}
bound = model_file_bytes(shapes)
glob = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
scratch = Path(tempfile.mkdtemp())

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) to the current RSS
before = status("VmRSS")
updates = []
for i, (cid, digest) in enumerate(refs):
    if mode == "stream":
        path = store.verified_file(cid, sha256=bytes.fromhex(digest), max_bytes=bound, scratch=scratch)
        tensors = validate_update_file(path, shapes, bound)[0]
    else:
        tensors = validate_update(store.get(cid, sha256=bytes.fromhex(digest), max_bytes=bound), shapes, bound)[0]
    updates.append(ClientUpdate(f"0x{i:040x}", tensors, 10 + i))
result = get_strategy(rule).aggregate(glob, updates).tensors
path = write_model_file(result, ModelManifest(kind="aggregate", architecture="x"), scratch / "result")
print(json.dumps({"extra": status("VmHWM") - before, "result": path.read_bytes()[-64:].hex()}))
""".replace("PARAMS", str(PARAMS))


def _run(mode: str, root: str, refs: list, rule: str = "fedavg") -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", AGGREGATE, mode, root, json.dumps(refs), rule], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _publish(tmp_path) -> tuple[LocalContentStore, list]:
    store = LocalContentStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    refs = []
    for i in range(UPDATES):
        tensors = {"b": rng.standard_normal(16).astype(np.float32),
                   "w": rng.standard_normal(PARAMS, dtype=np.float32)}
        path = write_model_file(tensors, ModelManifest(kind="update", architecture="x", num_samples=10 + i),
                                tmp_path / f"u{i}")
        refs.append([store.put_file(path), file_sha256(path).hex()])
        path.unlink()
    return store, refs


def test_streamed_fedavg_peak_memory_is_flat_in_the_number_of_updates(tmp_path) -> None:
    store, refs = _publish(tmp_path)
    streamed = _run("stream", str(store.root), refs)
    assert streamed["extra"] < BOUND, f"streamed FedAvg took {streamed['extra'] / MODEL_BYTES:.2f}x the model"
    few = _run("stream", str(store.root), refs[:3])
    assert streamed["extra"] < few["extra"] + 16 * 2**20  # 10 updates cost what 3 do
    in_memory = _run("memory", str(store.root), refs)
    assert in_memory["result"] == streamed["result"]  # the same bytes either way
    assert in_memory["extra"] > UPDATES * MODEL_BYTES > BOUND  # it held every update: the bound is no formality


@pytest.mark.parametrize("rule", ["robust", "median", "multikrum", "norm_bounded"])
def test_the_robust_rules_work_in_chunks_too(rule, tmp_path) -> None:
    """The default rule (clipped, weighted; its validation filter adds forward passes, not memory), the median
    and Multi-Krum hold one chunk of every update at a time: flat in the number of updates, under the bound."""
    store, refs = _publish(tmp_path)
    many, few = _run("stream", str(store.root), refs, rule), _run("stream", str(store.root), refs[:3], rule)
    assert many["extra"] < BOUND and many["extra"] < few["extra"] + 16 * 2**20, (few, many)

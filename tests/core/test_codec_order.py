"""Decoded models list their tensors in one order in every process (safetensors' own order varies)."""

from __future__ import annotations

import json
import subprocess
import sys

from fedchain.config import REPO_ROOT

SCRIPT = """
import json, numpy as np
from fedchain.codec import ModelManifest, decode_model, encode_model
names = ["b", "a", "2.weight", "0.bias", "0.weight", "10.bias", "1.x"]
blob = encode_model({k: np.zeros(2, np.float32) for k in names},
                    ModelManifest(kind="update", architecture="x", num_samples=1))
print(json.dumps(list(decode_model(blob)[0])))
"""


def test_decoded_tensor_order_is_sorted_in_every_process() -> None:
    orders = {json.dumps(json.loads(subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, check=True,
                                                   capture_output=True, text=True).stdout))
              for _ in range(4)}
    assert orders == {json.dumps(sorted(["b", "a", "2.weight", "0.bias", "0.weight", "10.bias", "1.x"]))}

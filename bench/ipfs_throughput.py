"""Upload/download throughput through ``KuboStore`` vs a raw HTTP client, against the same IPFS node.

    .venv/bin/python bench/ipfs_throughput.py [--api http://127.0.0.1:5001] [--sizes 10,200] [--reps 3]

Without ``--api`` a js-ipfs node (tools/ipfs-node.mjs) is started on loopback for the run.  For each size
(MB) the same random file is uploaded and downloaded by both clients, alternating which goes first; the
median of ``--reps`` runs is reported as MB/s and as the ratio KuboStore / raw (1.0 = no overhead).  The raw
client is plain httpx doing the same RPC calls (``add`` multipart upload, streamed ``cat`` to a file) with
no CID recomputation, digest check or retries.  Results also go to bench/out/ipfs_throughput.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fedchain.store.kubo import KuboStore  # noqa: E402

MB = 1_000_000


def raw_upload(api: str, path: Path) -> str:
    params = {"cid-version": 1, "raw-leaves": "true", "cid-base": "base32", "pin": "false", "progress": "false",
              "chunker": "size-262144"}  # the same RPC parameters KuboStore sends
    with path.open("rb") as fh:
        response = httpx.post(f"{api}/api/v0/add", params=params, files={"file": ("blob", fh)}, timeout=600)
    response.raise_for_status()
    return json.loads(response.text.splitlines()[-1])["Hash"]


def raw_download(api: str, cid: str, dest: Path) -> None:
    with httpx.stream("POST", f"{api}/api/v0/cat", params={"arg": cid, "timeout": "600s"}, timeout=600) as r, \
            dest.open("wb") as fh:
        r.raise_for_status()
        for piece in r.iter_bytes(1 << 16):
            fh.write(piece)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_size(api: str, store: KuboStore, size_mb: int, reps: int, workdir: Path) -> dict:
    src = workdir / f"model-{size_mb}mb.bin"
    with src.open("wb") as fh:
        remaining = size_mb * MB
        while remaining:
            n = min(remaining, 1 << 22)
            fh.write(os.urandom(n))
            remaining -= n
    digest = hashlib.sha256(src.read_bytes()).digest()
    cid = store.put_file(src)  # warm-up: the node has the blocks before timed runs
    times: dict[str, list[float]] = {"client_up": [], "raw_up": [], "client_down": [], "raw_down": []}
    for rep in range(reps):
        order = ["client", "raw"] if rep % 2 == 0 else ["raw", "client"]
        for who in order:
            if who == "client":
                times["client_up"].append(timed(lambda: store.put_file(src)))
                times["client_down"].append(timed(lambda: store.get_file(
                    cid, workdir / "client.out", sha256=digest, max_bytes=size_mb * MB)))
            else:
                times["raw_up"].append(timed(lambda: raw_upload(api, src)))
                times["raw_down"].append(timed(lambda: raw_download(api, cid, workdir / "raw.out")))
        print(f"  {size_mb} MB rep {rep + 1}/{reps} done", file=sys.stderr)
    assert (workdir / "raw.out").stat().st_size == size_mb * MB
    src.unlink()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: size_mb / v for k, v in med.items()}
    return {
        "size_mb": size_mb,
        "reps": reps,
        "mb_per_s": {k: round(v, 2) for k, v in rate.items()},
        "upload_ratio": round(rate["client_up"] / rate["raw_up"], 3),
        "download_ratio": round(rate["client_down"] / rate["raw_down"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", help="Kubo RPC URL of a running node (default: start a js-ipfs node)")
    parser.add_argument("--sizes", default="10,200", help="comma-separated sizes in MB")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="ipfs-bench-") as tmp:
        workdir = Path(tmp)
        node = None
        if args.api:
            api = args.api.rstrip("/")
        else:
            from tests.support.ipfs import IpfsNode

            node = IpfsNode(workdir / "node").start()
            api = node.api_url
        try:
            with KuboStore(api, fetch_timeout=600, request_timeout=600) as store:
                version = store.version()
                print(f"node: {version.get('Version')} at {api}", file=sys.stderr)
                rows = [bench_size(api, store, size, args.reps, workdir) for size in sizes]
        finally:
            if node:
                node.stop()
    print(f"{'size':>8} {'client up':>10} {'raw up':>10} {'ratio':>6} {'client down':>12} {'raw down':>10} "
          f"{'ratio':>6}")
    for r in rows:
        m = r["mb_per_s"]
        print(f"{r['size_mb']:>6}MB {m['client_up']:>8.1f}/s {m['raw_up']:>8.1f}/s {r['upload_ratio']:>6.2f} "
              f"{m['client_down']:>10.1f}/s {m['raw_down']:>8.1f}/s {r['download_ratio']:>6.2f}")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "ipfs_throughput.json").write_text(json.dumps({"node": version, "results": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Federated rounds whose model files move through a real IPFS node instead of the embedded store."""

from __future__ import annotations

import json
import logging
import subprocess
import threading

import pytest

from aggregator.service import AggregatorNode
from fedchain.cli.demo import DemoConfig, Participants, make_nodes, setup
from fedchain.codec import sha256
from fedchain.commitments import trainer_commitment
from fedchain.protocol import Phase
from fedchain.store.kubo import KuboStore
from tests.support.chain import sync_chain_clock, warp
from tests.support.cli import BIN, REPO, cli_env
from tests.support.federation import Federation, advance_to
from tests.support.ipfs import IpfsNode

SALT = b"\x22" * 32


def test_demo_cli_runs_against_the_node(ipfs_node, tmp_path):
    """`fedchain demo` with FEDCHAIN_IPFS_API set: every file goes to the node, none to the embedded store."""
    home = tmp_path / "home"
    env = cli_env(home) | {"FEDCHAIN_IPFS_API": ipfs_node.api_url}
    env.pop("FEDCHAIN_STORE", None)
    sync_chain_clock()
    proc = subprocess.run([str(BIN / "fedchain"), "demo", "--rounds", "2", "--trainers", "3", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rounds = json.loads(proc.stdout)["rounds"]
    assert [r["status"] for r in rounds] == ["finalized", "finalized"]
    assert all(r["accepted"] == 3 for r in rounds)
    with KuboStore(ipfs_node.api_url) as store:
        for r in rounds:
            assert store.has(r["model_cid"])
            assert store.get(r["model_cid"], max_bytes=1 << 26)
    assert not (home / "store" / "objects").exists() or not any((home / "store" / "objects").iterdir())


@pytest.fixture
def flaky_node(tmp_path):
    node = IpfsNode(tmp_path / "flaky").start()
    yield node
    node.stop()


def outage(node: IpfsNode, seconds: float = 3.0) -> threading.Timer:
    """Stop the node now and start it again (same repo and ports) after `seconds`."""
    node.stop()
    timer = threading.Timer(seconds, node.start)
    timer.start()
    return timer


def test_round_finalizes_through_node_outages_and_rejects_mismatched_bytes(flaky_node, tmp_path, monkeypatch,
                                                                         caplog):
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    sync_chain_clock()
    store = KuboStore(flaky_node.api_url, fetch_timeout=10, retry_seconds=90)
    cfg = DemoConfig(rounds=1, trainers=4, phase_seconds=60)
    people = Participants.from_test_accounts(4)
    fed, task_id, data = setup(cfg, people, store)
    trainers, aggregator = make_nodes(cfg, people, fed, data, store)
    f = Federation(cfg, people, fed, task_id, store, trainers, aggregator, data)
    honest, liar = f.trainers[:3], f.people.trainers[3]

    caplog.set_level(logging.WARNING, logger="fedchain.store.kubo")
    restart = outage(flaky_node)  # trainers fetch the global model while the node is down: they wait for it
    for t in honest:
        t.train_and_commit(task_id)
    restart.join()
    assert "retrying" in caplog.text
    # a trainer whose revealed digest does not match the bytes behind its CID
    cid = store.put(b"bytes that are not the revealed ones")
    digest = sha256(b"something else")
    f.fed.tasks.commitUpdate(task_id, 1, trainer_commitment(liar.address, task_id, 1, digest, 10, SALT), sender=liar)
    warp(cfg.phase_seconds + 1)
    advance_to(f, 1, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(task_id, 1)
    f.fed.tasks.revealUpdate(task_id, cid, digest, 10, SALT, sender=liar)
    advance_to(f, 1, Phase.AGGREGATOR_COMMIT)

    caplog.clear()
    caplog.set_level(logging.WARNING, logger="aggregator.service")
    # an aggregator whose store gives up after 1 s: its service loop logs the outage and tries again
    impatient = AggregatorNode(fed, people.aggregator, KuboStore(flaky_node.api_url, fetch_timeout=10,
                                                                retry_seconds=1))
    restart = outage(flaky_node)
    impatient.run([task_id], poll_seconds=0.5, timeout=300)
    restart.join()
    assert "content store unavailable, retrying" in caplog.text
    rnd = f.fed.round(task_id, 1)
    assert Phase(rnd.phase) == Phase.FINALIZED
    assert rnd.accepted == 3 and rnd.rejected == 1
    comp = f.aggregator.compute(task_id, 1)  # the liar was slashed meanwhile: its reveal is still an input
    assert comp.rejected[liar.address.lower()].code == "DigestMismatch"
    assert store.get(rnd.result_cid, sha256=bytes(rnd.result_digest), max_bytes=1 << 26)

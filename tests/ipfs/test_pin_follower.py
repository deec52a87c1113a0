"""The pin follower on real contracts and real IPFS nodes: a Kubo pinning node and a Pinning Service API server."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import httpx
import pytest
from ape import chain

from fedchain.cid import cid_for_bytes
from fedchain.cli.demo import DemoConfig, Participants, make_nodes, setup
from fedchain.codec import sha256
from fedchain.commitments import trainer_commitment
from fedchain.protocol import Phase
from fedchain.retention import RetentionPolicy, set_task_retention, task_retention
from fedchain.store.base import ContentError
from fedchain.store.kubo import KuboStore
from pinning.follower import PinFollower, state_file
from pinning.targets import KuboPinTarget, PinningServiceTarget
from tests.support.chain import sync_chain_clock, warp
from tests.support.cli import BIN, NETWORK, REPO, cli_env
from tests.support.federation import Federation, advance_to
from tests.support.pinning_service import PinningService

SALT = b"\x33" * 32
TOKEN = "test-token-123"


def finish_round(f: Federation, round_: int, honest, liar, liar_cid: str, liar_digest: bytes) -> None:
    """Honest trainers train; the liar reveals `liar_cid`; the aggregator finalizes the round."""
    for t in honest:
        t.train_and_commit(f.task_id)
    commitment = trainer_commitment(liar.address, f.task_id, round_, liar_digest, 10, SALT)
    f.fed.tasks.commitUpdate(f.task_id, round_, commitment, sender=liar)
    warp(f.cfg.phase_seconds + 1)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in honest:
        t.reveal(f.task_id, round_)
    f.fed.tasks.revealUpdate(f.task_id, liar_cid, liar_digest, 10, SALT, sender=liar)
    advance_to(f, round_, Phase.AGGREGATOR_COMMIT)


def aggregate(f: Federation, round_: int) -> None:
    for _ in range(10):
        if Phase(f.fed.round(f.task_id, round_).phase) == Phase.FINALIZED:
            return
        if not f.aggregator.step(f.task_id):
            warp(f.cfg.phase_seconds + 1)
    assert Phase(f.fed.round(f.task_id, round_).phase) == Phase.FINALIZED


def settle(follower: PinFollower, passes: int = 20):
    """Run passes until the pinning service has finished its queue (it pins in the background)."""
    for _ in range(passes):
        report = follower.run_once()
        if all(s in ("pinned", "absent", "missing") for st in follower.state.pins.values() for s in st.values()):
            return report
        time.sleep(0.5)
    return report


@pytest.fixture
def psa(ipfs_node, ipfs_pair):
    trainer_node, _ = ipfs_pair
    httpx.post(f"{ipfs_node.api_url}/api/v0/swarm/connect", params={"arg": trainer_node.swarm[0]}, timeout=30)
    with PinningService(ipfs_node.api_url, TOKEN) as service:
        yield service


def test_pin_follower_pins_resumes_reports_missing_and_applies_the_chains_retention(ipfs_pair, ipfs_node, psa,
                                                                                   tmp_path, monkeypatch):
    trainer_node, pinning_node = ipfs_pair
    monkeypatch.setenv("FEDCHAIN_HOME", str(tmp_path / "home"))
    sync_chain_clock()
    store = KuboStore(trainer_node.api_url, fetch_timeout=4, retry_seconds=30)
    cfg = DemoConfig(rounds=2, trainers=4, phase_seconds=60)
    people = Participants.from_test_accounts(4)
    start_block = int(chain.blocks.height) + 1
    fed, task_id, data = setup(cfg, people, store)
    trainers, aggregator = make_nodes(cfg, people, fed, data, store)
    f = Federation(cfg, people, fed, task_id, store, trainers, aggregator, data)
    honest, liar = f.trainers[:3], f.people.trainers[3]
    path = state_file(tmp_path / "home", fed.deployment)

    def follower(override=None, pin_retry=10.0):
        pinner = KuboPinTarget(pinning_node.api_url, fetch_timeout=4, retry_seconds=pin_retry)
        service = PinningServiceTarget(psa.url, TOKEN)
        return PinFollower(fed, [pinner, service], path, reader=KuboStore(trainer_node.api_url),
                           override=override, from_block=start_block), pinner, service

    # round 1 under the deploy-time default policy (keep all but rejected updates)
    assert task_retention(fed, task_id) == (RetentionPolicy(), False)
    # the liar's update bytes do not match its revealed digest -> rejected -> never pinned
    liar_cid = store.put(b"not the bytes the liar revealed")
    finish_round(f, 1, honest, liar, liar_cid, sha256(b"other bytes"))
    aggregate(f, 1)
    first, pinner, service = follower()
    report = settle(first)
    task = fed.task(task_id)
    rnd1 = fed.round(task_id, 1)
    updates = [fed.trainer_entry(task_id, 1, t.address).cid for t in honest]
    expected = {task.spec.validation_cid, rnd1.result_cid, *updates}
    for cid in expected:
        assert pinner.store.is_pinned(cid), cid
        assert service.status(cid) == "pinned", cid
    assert not pinner.store.is_pinned(liar_cid) and service.status(liar_cid) == "absent"
    assert first.missing() == {}
    initial_model = sorted(c for n, c in first.state.refs.items() if n.endswith("/model/r0"))[0]
    assert pinner.store.is_pinned(initial_model)
    first.close()

    # round 2 while no follower runs; the liar now reveals a CID that no node has
    nowhere = cid_for_bytes(b"bytes that exist on no node " + str(time.time()).encode())
    finish_round(f, 2, honest, liar, nowhere, sha256(b"x"))
    resumed, pinner, service = follower()
    assert resumed.state.next_block > start_block  # resumes from the saved cursor
    report = resumed.run_once()
    assert report.events == 4  # only what happened since the saved cursor: round 2's four reveals
    assert nowhere in report.missing and nowhere in resumed.missing()

    # the pinning node goes down while round 2 finalizes: the pass reports it and retries later
    aggregate(f, 2)
    pinning_node.stop()
    restart = threading.Timer(1.0, pinning_node.start)
    try:
        down = follower(pin_retry=0.5)[0]
        report = down.run_once()
        assert report.unavailable
        down.close()
    finally:
        restart.start()
        restart.join()
    # the sponsor sets the task's policy on chain: the current model, the last round's updates, the validation set
    set_task_retention(fed, task_id, RetentionPolicy(model_rounds=1, update_rounds=1, keep_validation=True),
                       f.people.sponsor)
    final = follower()[0]
    settle(final)
    rnd2 = fed.round(task_id, 2)
    updates2 = [fed.trainer_entry(task_id, 2, t.address).cid for t in honest]
    assert final.missing() == {}  # the missing update was rejected, so it is no longer wanted
    pinner = KuboStore(pinning_node.api_url)

    def pinned(cid: str) -> bool:
        on_service = PinningServiceTarget(psa.url, TOKEN).status(cid)
        assert pinner.is_pinned(cid) == (on_service == "pinned"), cid  # both targets agree
        return pinner.is_pinned(cid)

    assert pinned(rnd2.result_cid) and pinned(task.spec.validation_cid)  # kept by the policy
    assert all(pinned(cid) for cid in updates2)
    assert not pinned(rnd1.result_cid) and not pinned(initial_model)  # models before the last one are let go
    assert not any(pinned(cid) for cid in set(updates) - set(updates2))  # so are round 1's updates

    # the sponsor changes the policy (the task is completed): two models, no updates, no validation set.
    # The follower reacts to the TaskRetentionSet event: it pins round 1's model again (still on the trainer's
    # node) and lets round 2's updates and the validation set go, never the models the policy keeps.
    set_task_retention(fed, task_id, RetentionPolicy(model_rounds=2, update_rounds=0, keep_validation=False),
                       f.people.sponsor)
    report = settle(final)
    assert final.policy(task_id) == RetentionPolicy(model_rounds=2, update_rounds=0, keep_validation=False)
    assert pinned(rnd1.result_cid) and pinned(rnd2.result_cid) and not pinned(initial_model)
    assert not pinned(task.spec.validation_cid) and not any(pinned(cid) for cid in updates2)
    assert rnd2.result_cid not in report.unpinned and rnd1.result_cid not in report.unpinned
    final.close()

    # an operator override keeps more (the validation set), never less (the minimal policy keeps 1 model < 2)
    widened = follower(override=RetentionPolicy(model_rounds=1, update_rounds=0, keep_validation=True))[0]
    settle(widened)
    assert pinned(task.spec.validation_cid) and pinned(rnd1.result_cid) and pinned(rnd2.result_cid)
    assert not any(pinned(cid) for cid in updates2)
    widened.close()


def test_pinning_service_refuses_a_wrong_token(psa):
    with pytest.raises(ContentError, match="token"):
        PinningServiceTarget(psa.url, "wrong").status(cid_for_bytes(b"x"))


def test_retention_and_pin_follower_clis(ipfs_pair, tmp_path, monkeypatch):
    """`fedchain retention set/show` by the sponsor, then `fedchain pin-follower --once` against the test chain."""
    trainer_node, pinning_node = ipfs_pair
    home = tmp_path / "home"
    env = cli_env(home)
    monkeypatch.setenv("FEDCHAIN_HOME", str(home))
    sync_chain_clock()
    store = KuboStore(trainer_node.api_url)
    cfg = DemoConfig(rounds=1, trainers=2, phase_seconds=60)
    start = int(chain.blocks.height) + 1
    fed, task_id, _ = setup(cfg, Participants.from_test_accounts(2), store)  # TEST::2 sponsors the task

    def fedchain(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "fedchain"), *args, "--network", NETWORK], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)

    proc = fedchain("retention", "set", str(task_id), "--models", "1", "--update-rounds", "all", "--drop-validation",
                    "--account", "TEST::2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    policy = RetentionPolicy(model_rounds=1, update_rounds=None, keep_rejected=False, keep_validation=False)
    assert task_retention(fed, task_id) == (policy, True)
    shown = fedchain("retention", "show", str(task_id))
    assert shown.returncode == 0 and "the last 1 global model" in shown.stdout and "set by the sponsor" in shown.stdout
    shown = json.loads(fedchain("retention", "show", str(task_id), "--json").stdout)
    assert shown["policy"] == {"model_rounds": 1, "update_rounds": None, "keep_rejected": False,
                               "keep_validation": False} and shown["set_by_sponsor"]
    unknown = fedchain("retention", "show", "99")
    assert unknown.returncode == 1 and "no task 99" in unknown.stderr
    refused = fedchain("retention", "set", str(task_id), "--models", "all", "--account", "TEST::5")
    assert refused.returncode != 0 and "only the task's sponsor" in refused.stderr
    bad = fedchain("retention", "set", str(task_id), "--models", "0", "--account", "TEST::2")
    assert bad.returncode == 2 and "between 1 and" in bad.stderr
    assert task_retention(fed, task_id) == (policy, True)  # neither changed it

    proc = fedchain("pin-follower", "--once", "--target", f"kubo:{pinning_node.api_url}", "--from-block", str(start),
                    "--keep-models", "all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # DefaultRetentionChanged (deployment), TaskCreated, TaskRetentionSet; the initial model and the validation set
    assert "3 events" in proc.stdout and "2 pinned" in proc.stdout
    assert "kept at least: all global models" in proc.stdout
    validation = fed.task(task_id).spec.validation_cid
    assert KuboStore(pinning_node.api_url).is_pinned(validation)
    assert state_file(home, fed.deployment).exists()

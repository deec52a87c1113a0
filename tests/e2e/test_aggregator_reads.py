"""The aggregator computes a round once: in a normal run it fetches each update of a round once while computing it
(the reveal reuses the commit's result; the next rounds' replay checks fetch it again, to sketch it under their own
keys), and a restarted aggregator recomputes the same result from the chain and the store alone."""

from __future__ import annotations

from collections import Counter

from aggregator.service import AggregatorNode
from fedchain.cid import normalize_cid
from fedchain.protocol import Phase
from fedchain.store.local import LocalContentStore
from tests.support.federation import advance_to


class CountingStore(LocalContentStore):
    """The real local store, counting every read by CID."""

    def __init__(self, root) -> None:  # noqa: ANN001
        super().__init__(root)
        self.reads: Counter[str] = Counter()

    def get(self, cid: str, **kwargs) -> bytes:  # noqa: ANN003
        self.reads[normalize_cid(cid)] += 1
        return super().get(cid, **kwargs)

    def verified_file(self, cid: str, **kwargs):  # noqa: ANN003, ANN201
        self.reads[normalize_cid(cid)] += 1
        return super().verified_file(cid, **kwargs)


def _play_trainers(f, round_: int) -> list[str]:  # noqa: ANN001
    """Every trainer commits and reveals; returns the revealed update CIDs."""
    for t in f.trainers:
        t.train_and_commit(f.task_id)
    advance_to(f, round_, Phase.TRAINER_REVEAL)
    for t in f.trainers:
        t.reveal(f.task_id, round_)
    return [normalize_cid(f.fed.trainer_entry(f.task_id, round_, t.address).cid) for t in f.trainers]


def test_each_update_is_read_once_per_round_and_a_restart_recomputes_the_same(federation):
    f = federation
    store = CountingStore(f.store.root)
    aggregator = AggregatorNode(f.fed, f.people.aggregator, store)
    for round_ in (1, 2):
        updates = _play_trainers(f, round_)
        store.reads.clear()
        actions = []
        while f.fed.task(f.task_id).current_round == round_ and f.fed.round(f.task_id, round_).phase < Phase.FINALIZED:
            action = aggregator.step(f.task_id)
            assert action is not None, "the aggregator had nothing to do in an open round"
            actions.append(action)
            if action == "committed":
                # a restarted aggregator (nothing in memory) recomputes the same result from chain and store
                restarted = AggregatorNode(f.fed, f.people.aggregator, CountingStore(f.store.root))
                again = restarted.compute(f.task_id, round_)
                assert again.result == aggregator.compute(f.task_id, round_).result and again.blob
                assert all(restarted.store.reads[cid] == 1 for cid in updates)
        assert "committed" in actions and "revealed" in actions
        assert f.fed.round(f.task_id, round_).phase == Phase.FINALIZED
        assert {cid: store.reads[cid] for cid in updates} == dict.fromkeys(updates, 1), store.reads

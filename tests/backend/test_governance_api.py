"""Governance through the read API: a DAO-owned deployment (tests/governance's helpers) with one executed, one
defeated and one still open proposal, indexed from the Governor's events; the API's states, vote totals and votes
equal the Governor's views, the `state` and `proposer` filters and pages select the right proposals, and a
proposal whose vote ends without an event moves to its new state at the next indexer pass."""

from __future__ import annotations

import pytest
from ape import networks
from litestar.testing import TestClient

from backend.app import BackendConfig, create_app
from fedchain.ape import governance as gov
from tests.support.backend import new_indexer
from tests.support.governance import CONFIG, build_dao, pass_proposal, travel


@pytest.fixture(scope="module")
def dao_world(accounts, tmp_path_factory):
    root = tmp_path_factory.mktemp("gov-api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDCHAIN_HOME", str(root / "home"))
        dao = build_dao(accounts, save=True)  # recorded in FEDCHAIN_HOME for the indexer
        fed = dao.fed
        executed = pass_proposal(dao, gov.parameter_actions(fed, {"trainerSlashBps": "1500"}), "lower slashing")
        defeated = gov.propose(fed, dao.alice, gov.parameter_actions(fed, {"aggregatorSlashBps": "0"}), "no slash")
        travel(CONFIG.voting_delay + 1)
        gov.vote(fed, dao.alice, defeated, "against", reason="too lenient")
        gov.vote(fed, dao.bob, defeated, "for")
        travel(CONFIG.voting_period + 1)
        open_ = gov.propose(fed, dao.bob, gov.parameter_actions(fed, {"trainerSlashBps": "1000"}), "still open")
        travel(CONFIG.voting_delay + 1)
        gov.vote(fed, dao.carol, open_, "abstain")
        indexer = new_indexer(f"sqlite:///{root / 'gov.sqlite3'}", None)
        indexer.catch_up()
        app = create_app(BackendConfig(database_url=f"sqlite:///{root / 'gov.sqlite3'}", run_indexer=False,
                                       rpc_url=networks.provider.uri, rate_limit_per_minute=0))
        with TestClient(app) as client:
            yield dao, indexer, client, {"executed": executed, "defeated": defeated, "open": open_}


def test_proposals_states_votes_and_filters_match_the_governor(dao_world):
    dao, _, client, ids = dao_world
    fed, governor = dao.fed, dao.fed.governor
    everything = client.get("/proposals").json()
    assert everything["total"] == 3
    for p in everything["items"]:
        pid = int(p["proposal_id"])
        assert p["state"] == gov.ProposalState(governor.state(pid)).name.lower()
        against, for_, abstain = governor.proposalVotes(pid)
        assert (int(p["against_votes_wei"]), int(p["for_votes_wei"]), int(p["abstain_votes_wei"])) == (
            against, for_, abstain)
        assert (p["vote_start"], p["vote_end"]) == (governor.proposalSnapshot(pid), governor.proposalDeadline(pid))
    states = {name: client.get("/proposals", params={"state": state}).json()["items"]
              for name, state in (("executed", "executed"), ("defeated", "defeated"), ("open", "active"))}
    assert {name: [int(p["proposal_id"]) for p in items] for name, items in states.items()} == {
        name: [pid] for name, pid in ids.items()}
    by_alice = client.get("/proposals", params={"proposer": dao.alice.address}).json()
    assert sorted(int(p["proposal_id"]) for p in by_alice["items"]) == sorted([ids["executed"], ids["defeated"]])
    page = client.get("/proposals", params={"limit": 1, "offset": 2}).json()
    assert page["total"] == 3 and page["items"] == everything["items"][2:]
    detail = client.get(f"/proposals/{ids['defeated']}").json()
    votes = {v["voter"]: v for v in detail["votes"]}
    assert set(votes) == {dao.alice.address.lower(), dao.bob.address.lower()}
    snapshot = governor.proposalSnapshot(ids["defeated"])
    for who, support, reason in ((dao.alice, "against", "too lenient"), (dao.bob, "for", "")):
        vote = votes[who.address.lower()]
        assert (vote["support"], vote["reason"]) == (support, reason)
        assert int(vote["weight_wei"]) == governor.getVotes(who.address, snapshot) > 0
        assert governor.hasVoted(ids["defeated"], who.address)
    executed = client.get(f"/proposals/{ids['executed']}").json()
    assert executed["eta"] is not None and fed.tasks.trainerSlashBps() == 1500
    assert client.get(f"/proposals/{ids['open'] + 1}").status_code == 404


def test_a_vote_that_ends_without_an_event_is_picked_up(dao_world):
    dao, indexer, client, ids = dao_world
    travel(CONFIG.voting_period + 1)  # the open proposal ends: only abstain votes, so quorum is not reached
    indexer.catch_up()
    chain_state = gov.ProposalState(dao.fed.governor.state(ids["open"])).name.lower()
    assert client.get(f"/proposals/{ids['open']}").json()["state"] == chain_state == "defeated"

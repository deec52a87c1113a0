"""One chain-reading interface, two implementations: ape (roles) and web3 (backend, dashboard) read the same views,
events and reward claims from the same deployment."""

from __future__ import annotations

from ape import networks

from fedchain.protocol import Phase
from fedchain.rewards import claimable
from fedchain.web3chain import Web3Chain
from tests.support.backend import run_honest_round


def test_ape_and_web3_readers_agree(federation):
    f = federation
    run_honest_round(f, 1)  # nobody claims yet
    web3 = Web3Chain(networks.provider.uri, f.fed.deployment)
    assert web3.task_count() == f.fed.task_count() == 1
    assert web3.task(f.task_id) == f.fed.task(f.task_id)
    assert web3.round(f.task_id, 1) == f.fed.round(f.task_id, 1) and web3.round(f.task_id, 1).phase == Phase.FINALIZED
    assert web3.round_trainers(f.task_id, 1) == f.fed.round_trainers(f.task_id, 1)
    for trainer in f.people.trainers:
        assert web3.trainer_entry(f.task_id, 1, trainer.address) == f.fed.trainer_entry(f.task_id, 1, trainer.address)
    assert web3.aggregator_entry(f.task_id, 1, f.people.aggregator.address) == f.fed.aggregator_entry(
        f.task_id, 1, f.people.aggregator.address)
    committee = [f.people.aggregator.address]
    assert web3.round_aggregators(f.task_id, 1) == f.fed.round_aggregators(f.task_id, 1) == committee
    reached = [reader.phase_reached_block(f.task_id, 1, Phase.AGGREGATOR_COMMIT) for reader in (web3, f.fed)]
    assert reached[0].block_hash == reached[1].block_hash and reached[0].args == reached[1].args
    assert web3.released_rounds(f.task_id, 1) == f.fed.released_rounds(f.task_id, 1) == 1
    # nobody claimed yet: both readers find the same claims
    for trainer in f.people.trainers:
        assert claimable(web3, f.store, trainer.address, 1 << 26) == claimable(f.fed, f.store, trainer.address,
                                                                              1 << 26) != []

"""A trainer's journal belongs to one deployment: a restarted local chain that deploys again at the same chain id
and addresses must not inherit the old chain's privacy ledger (it once refused a DP demo: 'epsilon inf already
spent' by an earlier, non-private demo's task 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from client.journal import Journal, PendingUpdate
from fedchain.deployment import Deployment

FIRST = Deployment(network="ethereum:local:foundry", chain_id=31337, token="0x" + "1" * 40, staking="0x" + "2" * 40,
                   tasks="0x" + "3" * 40, block=1, block_hash="0x" + "ab" * 32)
TRAINER = "0x" + "4" * 40


def test_a_redeployment_at_the_same_addresses_has_its_own_journal(tmp_path: Path) -> None:
    old = Journal(FIRST, TRAINER, tmp_path)
    old.record(PendingUpdate(1, 1, "", "00" * 32, 10, None))  # a round trained without DP on the old chain
    assert old.has(1, 1) and old.rounds(1) == [1]
    again = Journal(replace(FIRST, block_hash="0x" + "cd" * 32), TRAINER, tmp_path)  # same id and addresses
    assert not again.has(1, 1) and again.rounds(1) == [] and again.load(1, 1) is None
    assert Journal(FIRST, TRAINER, tmp_path).load(1, 1) is not None  # the old deployment still reads its own


def test_instance_key_is_file_name_safe() -> None:
    assert FIRST.instance == f"31337-{FIRST.tasks}-{'ab' * 8}"
    assert replace(FIRST, block_hash="").instance == f"31337-{FIRST.tasks}"  # records from before the field
    assert replace(FIRST, block_hash="../../etc").instance == f"31337-{FIRST.tasks}"  # never a path

"""ValidationKeys: only a task's sponsor publishes a round's key, only once the round's trainers are done, once."""

from ape import project
from eth_utils import keccak

from tests.support.contracts import assert_event, reverts_with

KEY = keccak(text="section key")


def test_keys_are_published_by_the_sponsor_after_the_trainer_phases_once(fed, admin):
    keys = project.ValidationKeys.deploy(fed.tm.address, sender=admin)
    t0, t1 = fed.trainers[:2]
    tid = fed.create_task(numRounds=2)
    with reverts_with("UnknownTask"):
        keys.revealKey(tid + 1, 1, KEY, sender=fed.sponsor)
    with reverts_with("NotSponsor", taskId=tid, caller=fed.outsider.address):
        keys.revealKey(tid, 1, KEY, sender=fed.outsider)
    with reverts_with("ZeroKey"):
        keys.revealKey(tid, 1, b"\0" * 32, sender=fed.sponsor)
    for trainer in (t0, t1):
        fed.commit(tid, trainer)
    with reverts_with("TrainersStillOpen", taskId=tid, round=1, phase=1):  # trainers commit
        keys.revealKey(tid, 1, KEY, sender=fed.sponsor)
    fed.advance_after_deadline(tid)
    with reverts_with("TrainersStillOpen", taskId=tid, round=1, phase=2):  # trainers reveal
        keys.revealKey(tid, 1, KEY, sender=fed.sponsor)
    for trainer in (t0, t1):
        fed.reveal(tid, trainer)
    with reverts_with("TrainersStillOpen", round=2, phase=0):  # a round that has not started
        keys.revealKey(tid, 2, KEY, sender=fed.sponsor)
    fed.advance_after_deadline(tid)  # aggregator commit: the updates are fixed
    assert keys.keyOf(tid, 1) == b"\0" * 32
    receipt = keys.revealKey(tid, 1, KEY, sender=fed.sponsor)
    assert_event(receipt, keys.ValidationKeyRevealed, taskId=tid, round=1, key=KEY)
    assert keys.keyOf(tid, 1) == KEY
    with reverts_with("KeyAlreadyRevealed", taskId=tid, round=1):  # the first key stands
        keys.revealKey(tid, 1, keccak(text="another"), sender=fed.sponsor)


def test_a_round_failed_before_its_aggregators_takes_no_key(fed, admin):
    keys = project.ValidationKeys.deploy(fed.tm.address, sender=admin)
    tid = fed.create_task(minTrainers=2)
    fed.commit(tid, fed.trainers[0])  # one of two: the commit phase fails the round
    fed.advance_after_deadline(tid)
    assert fed.round_of(tid, 1).phase == 6
    with reverts_with("TrainersStillOpen", taskId=tid, round=1, phase=6):
        keys.revealKey(tid, 1, KEY, sender=fed.sponsor)

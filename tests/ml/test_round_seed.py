"""A trainer's local-training seed changes with every round, task and trainer, and is reproducible: one seed for
all rounds replayed the same batch order each round."""

from client.participant import round_seed

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20


def test_each_round_task_and_trainer_gets_its_own_seed():
    seeds = {round_seed(7, task, rnd, who) for task in (1, 2) for rnd in range(1, 11) for who in (A, B)}
    assert len(seeds) == 40
    assert all(0 <= s < 2**62 for s in seeds)


def test_the_seed_is_reproducible_and_follows_the_configured_one():
    assert round_seed(7, 1, 3, A) == round_seed(7, 1, 3, A.upper().replace("0X", "0x"))
    assert round_seed(7, 1, 3, A) != round_seed(8, 1, 3, A)
    assert round_seed(2**40 + 7, 1, 3, A) != round_seed(7, 1, 3, A)  # the high bits count too

"""After the rounds: a trainer's rewards claimed from the RewardVault, and its bonds released from the TaskManager.

A commitment reserves a bond of stake (``TaskManager.trainerBond``). Claiming a round's reward releases that
round's bond; a round that pays nothing gives the bond back once it can no longer be slashed (a failed round at
once, a finalized round after its ``settledAt``). Reserved stake cannot be unstaked, so ``fedchain client claim``
does both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedchain.ape.chain import Fedchain
from fedchain.protocol import Phase, TrainerStatus
from fedchain.rewards import Claim


@dataclass(frozen=True)
class Settlement:
    """What one ``settle`` did: rewards claimed, bonds released, and bonds still waiting for settlement."""

    claimed: int = 0
    claimed_rounds: tuple[int, ...] = ()
    released: int = 0
    released_rounds: tuple[int, ...] = ()
    waiting: tuple[tuple[int, int], ...] = ()  # (round, settledAt) of bonds not yet releasable


def claim_rewards(fed: Fedchain, account: Any, task_id: int, claims: list[Claim]) -> int:
    """Claim every given round of one task in one ``claimRewards`` transaction; the total claimed."""
    if not claims:
        return 0
    fed.send(f"claiming rounds {', '.join(str(c.round) for c in claims)} of task {task_id}",
             fed.vault.claimRewards, task_id, [c.round for c in claims], [c.score for c in claims],
             [c.weight for c in claims], [c.proof for c in claims], sender=account)
    return sum(c.reward for c in claims)


def release_bonds(fed: Fedchain, account: Any, task_id: int
                  ) -> tuple[int, tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Release every bond of the task the chain lets go of now: (amount, rounds, still waiting)."""
    address = account.address
    now = fed.pending_timestamp()
    released, rounds, waiting = 0, [], []
    for round_ in range(1, fed.task(task_id).current_round + 1):
        entry = fed.trainer_entry(task_id, round_, address, with_reveal=False)
        if entry.bond == 0:
            continue
        rnd = fed.round(task_id, round_)
        never_asked = entry.status == TrainerStatus.COMMITTED and rnd.phase == Phase.FAILED \
            and rnd.failed_phase == Phase.TRAINER_COMMIT
        if entry.status != TrainerStatus.REVEALED and not never_asked:
            continue  # committed and not revealed: the bond goes to the non-reveal slash
        if rnd.phase == Phase.FAILED or (rnd.phase == Phase.FINALIZED and now > rnd.settled_at):
            fed.send(f"releasing the bond of round {round_}", fed.tasks.releaseBond, task_id, round_, address,
                     sender=account)
            released += entry.bond
            rounds.append(round_)
        elif rnd.phase == Phase.FINALIZED:
            waiting.append((round_, rnd.settled_at))
    return released, tuple(rounds), tuple(waiting)

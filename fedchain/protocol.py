"""The protocol's types: phases, statuses and proposal states as the contracts number them, and token units.

One definition for every part of fedchain (roles, backend, dashboard): the enums mirror ``contracts/TaskTypes.sol``
and OpenZeppelin's ``IGovernor.ProposalState``; ``label`` is the human text, ``key`` the snake_case name used by the
read API.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import IntEnum

TOKEN_DECIMALS = 18
ONE_TOKEN = 10**TOKEN_DECIMALS
PPM = 1_000_000  # scores, accuracies and fractions travel as parts per million
MAX_SCORE = PPM


class _ChainEnum(IntEnum):
    """An enum numbered as in Solidity, with a human ``label`` and a snake_case ``key``."""

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")

    @property
    def key(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: int) -> _ChainEnum | None:
        """The member numbered ``value``, or None for a number this version does not know."""
        try:
            return cls(int(value))
        except ValueError:
            return None


class Phase(_ChainEnum):
    """Phase of one round (TaskTypes.sol ``Phase``)."""

    NONE = 0
    TRAINER_COMMIT = 1
    TRAINER_REVEAL = 2
    AGGREGATOR_COMMIT = 3
    AGGREGATOR_REVEAL = 4
    FINALIZED = 5
    FAILED = 6

    @property
    def is_open(self) -> bool:
        """A phase with a deadline in which participants act (commit or reveal)."""
        return Phase.TRAINER_COMMIT <= self <= Phase.AGGREGATOR_REVEAL

    @property
    def is_final(self) -> bool:
        """The round has ended (finalized or failed)."""
        return self in (Phase.FINALIZED, Phase.FAILED)


class TaskStatus(_ChainEnum):
    NONE = 0
    ACTIVE = 1
    COMPLETED = 2


class TrainerStatus(_ChainEnum):
    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    CLAIMED = 3
    SLASHED = 4


class AggregatorStatus(_ChainEnum):
    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    SLASHED = 3
    CLAIMED = 4  # paid its share (matched the accepted result) and its bond released


class ProposalState(_ChainEnum):
    """OpenZeppelin 5 ``IGovernor.ProposalState``."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @property
    def is_final(self) -> bool:
        return self in (ProposalState.CANCELED, ProposalState.DEFEATED, ProposalState.EXPIRED, ProposalState.EXECUTED)


VOTE_SUPPORT = {"against": 0, "for": 1, "abstain": 2}  # OpenZeppelin GovernorCountingSimple


def to_tokens(amount_wei: int) -> float:
    """An amount in wei as FED (for display; exact amounts stay integers)."""
    return int(amount_wei) / ONE_TOKEN


def format_tokens(amount_wei: int) -> str:
    """'12.5 FED' with no trailing zeros and no float rounding."""
    value = Decimal(int(amount_wei)) / ONE_TOKEN
    text = format(value.normalize(), "f") if value else "0"
    return f"{text} FED"


def parse_tokens(text: str, *, allow_zero: bool = False) -> int:
    """'100' or '0.5' FED as wei; ``ValueError`` for a negative, non-numeric or over-precise amount."""
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount of FED") from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        raise ValueError(f"{text!r}: the amount must be {'non-negative' if allow_zero else 'positive'}")
    wei = amount * ONE_TOKEN
    if wei != wei.to_integral_value():
        raise ValueError(f"{text!r}: FED has at most {TOKEN_DECIMALS} decimals")
    return int(wei)

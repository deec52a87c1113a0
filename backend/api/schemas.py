"""Response types of the read API and the shared query parameters.

Token amounts are uint256 on chain: ``*_wei`` fields are exact decimal strings, ``*_tokens`` fields floats in FED.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

MAX_ID = 2**53
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"

Limit = Annotated[int, Parameter(ge=1, le=500, description="page size")]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000, description="items to skip")]
TaskId = Annotated[int, Parameter(ge=0, le=MAX_ID, description="task id")]
RoundNumber = Annotated[int, Parameter(ge=0, le=2**31 - 1, description="round number (1-based)")]
Address = Annotated[str, Parameter(pattern=ADDRESS_PATTERN, description="0x-prefixed 20-byte address")]
ProposalId = Annotated[str, Parameter(pattern=r"^[0-9]{1,78}$", description="proposal id (decimal uint256)")]
# Optional filters: the constraints must sit on the whole `X | None` type to be enforced.
# (Litestar leaves a zero minimum out of the OpenAPI schema of optional parameters; schema_extra puts it back.)
TaskFilter = Annotated[int | None, Parameter(ge=0, le=MAX_ID, schema_extra={"minimum": 0},
                                             description="only this task")]
RoundFilter = Annotated[int | None, Parameter(ge=0, le=2**31 - 1, schema_extra={"minimum": 0},
                                              description="only this round")]
AddressFilter = Annotated[str | None, Parameter(pattern=ADDRESS_PATTERN, description="0x-prefixed 20-byte address")]
BlockFilter = Annotated[int | None, Parameter(ge=0, le=MAX_ID, schema_extra={"minimum": 0}, description="block number")]
NameFilter = Annotated[str | None, Parameter(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="name")]


class ErrorBody(msgspec.Struct):
    status_code: int
    detail: str
    extra: list[dict] | dict | None = None


NOT_FOUND = {404: ResponseSpec(data_container=ErrorBody, description="No such id (or not indexed yet)")}


def tokens(wei: str | int) -> float:
    return int(wei) / 10**18


class TaskOut(msgspec.Struct):
    task_id: int
    sponsor: str
    status: str
    architecture: str
    strategy: str
    initial_model_cid: str
    global_model_cid: str
    validation_cid: str
    reward_budget_wei: str
    reward_budget_tokens: float
    remaining_budget_wei: str
    reclaimed_wei: str
    num_rounds: int
    current_round: int
    min_trainers: int
    max_trainers: int
    dp_epsilon: float | None
    created_block: int
    created_at: int
    central_epsilon_total: float | None  # central DP composed over central_dp_rounds released rounds
    central_delta: float | None
    central_dp_rounds: int | None


class RoundOut(msgspec.Struct):
    task_id: int
    round: int
    phase: str
    deadlines: dict[str, int | None]
    started_block: int
    started_at: int
    ended_block: int | None
    trainers_committed: int
    trainers_revealed: int
    aggregators_committed: int
    aggregators_revealed: int
    parent_model_cid: str
    result_cid: str | None
    result_digest: str | None
    scores_root: str | None
    total_weight: str | None
    accepted: int | None
    rejected: int | None
    metrics: dict[str, float]
    central_epsilon: float | None
    round_budget_wei: str
    paid_wei: str
    failure_reason: str | None
    details_status: str
    central_epsilon_total: float | None  # central DP composed over the task's released rounds up to this one
    central_delta: float | None
    central_noise_multiplier: float | None


class ContributionOut(msgspec.Struct):
    task_id: int
    round: int
    trainer: str
    status: str
    samples: int | None  # the sample count the trainer revealed (a claim)
    score: int | None
    weight: int | None  # the committee's attested weight: what the reward is computed from
    bond_wei: str  # stake still reserved for this commitment
    accepted: bool | None
    reject_code: str | None
    reject_message: str | None
    reward_wei: str
    reward_tokens: float
    claimed: bool
    slashed_wei: str
    epsilon: float | None  # local epsilon the trainer reports as spent on the task so far (DP-SGD)
    local_dp: bool | None  # false: the update reports no epsilon, so it carries no DP guarantee; null: unknown
    update_cid: str | None


class LeaderboardEntry(msgspec.Struct):
    rank: int
    trainer: str
    contributions: int
    accepted: int
    rejected: int
    total_score: int
    total_reward_wei: str
    total_reward_tokens: float


class RoundRewards(msgspec.Struct):
    task_id: int
    round: int
    phase: str
    round_budget_wei: str
    trainer_budget_wei: str  # the trainers' part (the rest: the committee's share and the protocol fee)
    paid_wei: str  # claimed by trainers
    aggregator_paid_wei: str  # claimed by committee members whose reveal matched
    fee_wei: str  # paid to the treasury
    swept_wei: str  # returned to the sponsor after the claim window
    unclaimed_wei: str  # still in the vault


class Economics(msgspec.Struct):
    total_supply_wei: str
    total_supply_tokens: float
    staked_wei: str
    staked_tokens: float
    unbonding_wei: str
    treasury: str | None
    treasury_balance_wei: str
    treasury_balance_tokens: float
    rewards_allocated_wei: str
    rewards_paid_wei: str
    rewards_claimable_wei: str
    task_budgets_remaining_wei: str


class AccountOut(msgspec.Struct):
    address: str
    balance_wei: str
    balance_tokens: float
    staked_wei: str
    unbonding_wei: str
    reserved_wei: str  # stake reserved as bonds of commitments and committee seats: not free to unstake
    slashed_wei: str
    claimable_wei: str
    claimable_tokens: float
    claimable: list[ContributionOut]


class VoteOut(msgspec.Struct):
    proposal_id: str
    voter: str
    support: str
    weight_wei: str
    reason: str
    block_number: int


class ProposalOut(msgspec.Struct):
    proposal_id: str
    proposer: str
    description: str
    targets: list[str]
    vote_start: int
    vote_end: int
    state: str
    for_votes_wei: str
    against_votes_wei: str
    abstain_votes_wei: str
    eta: int | None
    created_block: int
    votes: list[VoteOut] | None = None


class EventOut(msgspec.Struct):
    block_number: int
    tx_hash: str
    log_index: int
    contract: str
    address: str
    name: str
    args: dict


class Health(msgspec.Struct):
    status: str
    database: bool
    chain: bool
    chain_head: int | None
    last_indexed_block: int | None
    lag_blocks: int | None
    indexer_error: str | None
    deployment: str


class TaskPage(msgspec.Struct):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class RoundPage(msgspec.Struct):
    items: list[RoundOut]
    total: int
    limit: int
    offset: int


class ContributionPage(msgspec.Struct):
    items: list[ContributionOut]
    total: int
    limit: int
    offset: int


class LeaderboardPage(msgspec.Struct):
    items: list[LeaderboardEntry]
    total: int
    limit: int
    offset: int


class RoundRewardsPage(msgspec.Struct):
    items: list[RoundRewards]
    total: int
    limit: int
    offset: int


class ProposalPage(msgspec.Struct):
    items: list[ProposalOut]
    total: int
    limit: int
    offset: int


class EventPage(msgspec.Struct):
    items: list[EventOut]
    total: int
    limit: int
    offset: int

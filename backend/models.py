"""SQLAlchemy 2 models of the backend's read model: a cache of the chain, rebuilt from events at will.

Token amounts are uint256 on chain; they are stored exactly as decimal strings (``*_wei``) and, where the API
sorts or sums them, also as floats in token units (``*_tokens``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

WEI = String(80)
ADDRESS = String(42)


class Base(DeclarativeBase):
    pass


class IndexerState(Base):
    """The single cursor row: which chain, which deployment, and the last block fully indexed."""

    __tablename__ = "indexer_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    genesis_hash: Mapped[str] = mapped_column(String(66))
    tasks_address: Mapped[str] = mapped_column(ADDRESS)
    deployment_block: Mapped[int] = mapped_column(BigInteger)
    contracts: Mapped[str] = mapped_column(Text)  # JSON role -> address of every contract indexed
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_block_hash: Mapped[str] = mapped_column(String(66))
    resets: Mapped[int] = mapped_column(Integer, default=0)


class ChainEvent(Base):
    """Every decoded log of every fedchain contract, once: unique by (tx hash, log index)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_events_tx_log"),
        Index("ix_events_block", "block_number", "log_index"),
        Index("ix_events_name", "contract", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(ADDRESS)
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # canonical JSON, ints > 2**53 as strings


class Task(Base):
    __tablename__ = "tasks"

    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sponsor: Mapped[str] = mapped_column(ADDRESS, index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    architecture: Mapped[str] = mapped_column(String(256))
    strategy: Mapped[str] = mapped_column(String(128), default="")
    initial_model_cid: Mapped[str] = mapped_column(String(130))
    global_model_cid: Mapped[str] = mapped_column(String(130))
    validation_cid: Mapped[str] = mapped_column(String(130), default="")
    reward_budget_wei: Mapped[str] = mapped_column(WEI)
    remaining_budget_wei: Mapped[str] = mapped_column(WEI)
    reclaimed_wei: Mapped[str] = mapped_column(WEI, default="0")
    num_rounds: Mapped[int] = mapped_column(Integer)
    current_round: Mapped[int] = mapped_column(Integer, default=1)
    min_trainers: Mapped[int] = mapped_column(Integer, default=0)
    max_trainers: Mapped[int] = mapped_column(Integer, default=0)
    dp_epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    # central DP (dp-fedavg): the accountant's composition over the rounds released so far (migration 0002)
    central_epsilon_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    central_delta: Mapped[float | None] = mapped_column(Float, nullable=True)
    central_dp_rounds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_block: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Round(Base):
    __tablename__ = "rounds"

    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase: Mapped[str] = mapped_column(String(24), index=True)
    commit_deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reveal_deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    aggregator_commit_deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    aggregator_reveal_deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    started_block: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int] = mapped_column(BigInteger)
    ended_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    committed: Mapped[int] = mapped_column(Integer, default=0)
    revealed: Mapped[int] = mapped_column(Integer, default=0)
    aggregators_committed: Mapped[int] = mapped_column(Integer, default=0)
    aggregators_revealed: Mapped[int] = mapped_column(Integer, default=0)
    parent_model_cid: Mapped[str] = mapped_column(String(130), default="")
    result_cid: Mapped[str | None] = mapped_column(String(130), nullable=True)
    result_digest: Mapped[str | None] = mapped_column(String(66), nullable=True)
    scores_root: Mapped[str | None] = mapped_column(String(66), nullable=True)
    total_weight: Mapped[str | None] = mapped_column(WEI, nullable=True)
    accepted: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rejected: Mapped[int | None] = mapped_column(Integer, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    central_epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    # migration 0002: the round's central DP mechanism (from its manifest) and epsilon composed up to this round
    central_noise_multiplier: Mapped[float | None] = mapped_column(Float, nullable=True)
    central_delta: Mapped[float | None] = mapped_column(Float, nullable=True)
    central_epsilon_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    round_budget_wei: Mapped[str] = mapped_column(WEI, default="0")
    trainer_budget_wei: Mapped[str] = mapped_column(WEI, default="0")  # RewardVault.splitOf: the trainers' part
    paid_wei: Mapped[str] = mapped_column(WEI, default="0")  # claimed by trainers
    aggregator_paid_wei: Mapped[str] = mapped_column(WEI, default="0")  # claimed by committee members
    swept_wei: Mapped[str] = mapped_column(WEI, default="0")  # returned to the sponsor after the claim window
    fee_wei: Mapped[str] = mapped_column(WEI, default="0")  # the protocol fee paid to the treasury
    failure_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    details_status: Mapped[str] = mapped_column(String(16), default="none")  # none | ok | unavailable | invalid


class Contribution(Base):
    """One trainer in one round."""

    __tablename__ = "contributions"
    __table_args__ = (
        Index("ix_contrib_trainer", "trainer", "task_id", "round"),
        Index("ix_contrib_reward", "reward_tokens"),
    )

    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainer: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # committed|revealed|claimed|slashed
    committed_block: Mapped[int] = mapped_column(BigInteger)
    update_cid: Mapped[str | None] = mapped_column(String(130), nullable=True)
    update_digest: Mapped[str | None] = mapped_column(String(66), nullable=True)
    samples: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    accepted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reject_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reject_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    reward_wei: Mapped[str] = mapped_column(WEI, default="0")
    reward_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    slashed_wei: Mapped[str] = mapped_column(WEI, default="0")
    weight: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the committee's attested weight
    bond_wei: Mapped[str] = mapped_column(WEI, default="0")  # stake the commitment reserved
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    # True: the update's manifest reports the epsilon it spent (DP-SGD); False: its manifest reports none, so the
    # update carries no DP guarantee (epsilon unbounded); None: unknown (not revealed, or the file unavailable)
    local_dp: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class Account(Base):
    """Token balance and stake of one address (balances from Transfer events, stakes read at event blocks)."""

    __tablename__ = "accounts"

    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    balance_wei: Mapped[str] = mapped_column(WEI, default="0")
    staked_wei: Mapped[str] = mapped_column(WEI, default="0")
    unbonding_wei: Mapped[str] = mapped_column(WEI, default="0")
    slashed_wei: Mapped[str] = mapped_column(WEI, default="0")
    # stake reserved as bonds of commitments and committee seats (Staking.reservedOf; migration 0005)
    reserved_wei: Mapped[str] = mapped_column(WEI, default="0")


class Proposal(Base):
    __tablename__ = "proposals"

    proposal_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    proposer: Mapped[str] = mapped_column(ADDRESS, index=True)
    description: Mapped[str] = mapped_column(Text)
    targets: Mapped[str] = mapped_column(Text)  # JSON list
    vote_start: Mapped[int] = mapped_column(BigInteger)
    vote_end: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    for_votes_wei: Mapped[str] = mapped_column(WEI, default="0")
    against_votes_wei: Mapped[str] = mapped_column(WEI, default="0")
    abstain_votes_wei: Mapped[str] = mapped_column(WEI, default="0")
    eta: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_block: Mapped[int] = mapped_column(BigInteger)


class Vote(Base):
    __tablename__ = "votes"

    proposal_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    voter: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    support: Mapped[str] = mapped_column(String(8))  # against | for | abstain
    weight_wei: Mapped[str] = mapped_column(WEI)
    reason: Mapped[str] = mapped_column(Text, default="")
    block_number: Mapped[int] = mapped_column(BigInteger)


class Setting(Base):
    """Key/value facts the indexer learns from events (e.g. the treasury address)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


READ_MODEL_TABLES = (ChainEvent, Task, Round, Contribution, Account, Proposal, Vote, Setting)

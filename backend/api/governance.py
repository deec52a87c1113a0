"""Governance proposals with their state and votes, and the raw event log."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.api.schemas import (
    NOT_FOUND,
    AddressFilter,
    BlockFilter,
    EventOut,
    EventPage,
    Limit,
    NameFilter,
    Offset,
    ProposalId,
    ProposalOut,
    ProposalPage,
    VoteOut,
)
from backend.models import ChainEvent, Proposal, Vote
from fedchain.protocol import ProposalState

ProposalStateName = Literal[tuple(s.key for s in ProposalState)]  # type: ignore[valid-type]


def vote_out(v: Vote) -> VoteOut:
    return VoteOut(proposal_id=v.proposal_id, voter=v.voter, support=v.support, weight_wei=v.weight_wei,
                   reason=v.reason, block_number=v.block_number)


def proposal_out(p: Proposal, votes: list[Vote] | None = None) -> ProposalOut:
    return ProposalOut(
        proposal_id=p.proposal_id, proposer=p.proposer, description=p.description, targets=json.loads(p.targets),
        vote_start=p.vote_start, vote_end=p.vote_end, state=p.state, for_votes_wei=p.for_votes_wei,
        against_votes_wei=p.against_votes_wei, abstain_votes_wei=p.abstain_votes_wei, eta=p.eta,
        created_block=p.created_block, votes=None if votes is None else [vote_out(v) for v in votes],
    )


class ProposalController(Controller):
    path = "/proposals"
    tags = ["governance"]

    @get("/", sync_to_thread=True, summary="Governance proposals")
    def list_proposals(self, db: Session, limit: Limit = 50, offset: Offset = 0,
                       proposal_state: Annotated[ProposalStateName | None, Parameter(query="state")] = None,
                       proposer: AddressFilter = None) -> ProposalPage:
        query = select(Proposal)
        if proposal_state is not None:
            query = query.where(Proposal.state == proposal_state)
        if proposer is not None:
            query = query.where(Proposal.proposer == proposer.lower())
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(Proposal.created_block.desc(), Proposal.proposal_id).limit(limit)
                          .offset(offset))
        return ProposalPage(items=[proposal_out(p) for p in rows], total=total, limit=limit, offset=offset)

    @get("/{proposal_id:str}", sync_to_thread=True, responses=NOT_FOUND, summary="One proposal with its votes")
    def get_proposal(self, db: Session, proposal_id: ProposalId) -> ProposalOut:
        proposal = db.get(Proposal, proposal_id.lstrip("0") or "0")
        if proposal is None:
            raise NotFoundException(f"proposal {proposal_id} is not known")
        votes = list(db.scalars(select(Vote).where(Vote.proposal_id == proposal.proposal_id)
                                .order_by(Vote.block_number, Vote.voter)))
        return proposal_out(proposal, votes)


class EventController(Controller):
    path = "/events"
    tags = ["events"]

    @get("/", sync_to_thread=True, summary="Raw contract events in chain order")
    def list_events(self, db: Session, limit: Limit = 50, offset: Offset = 0, contract: NameFilter = None,
                    name: NameFilter = None, from_block: BlockFilter = None,
                    to_block: BlockFilter = None) -> EventPage:
        query = select(ChainEvent)
        if contract is not None:
            query = query.where(ChainEvent.contract == contract)
        if name is not None:
            query = query.where(ChainEvent.name == name)
        if from_block is not None:
            query = query.where(ChainEvent.block_number >= from_block)
        if to_block is not None:
            query = query.where(ChainEvent.block_number <= to_block)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(ChainEvent.block_number, ChainEvent.log_index).limit(limit).offset(offset))
        items = [EventOut(block_number=e.block_number, tx_hash=e.tx_hash, log_index=e.log_index, contract=e.contract,
                          address=e.address, name=e.name, args=json.loads(e.args)) for e in rows]
        return EventPage(items=items, total=total, limit=limit, offset=offset)

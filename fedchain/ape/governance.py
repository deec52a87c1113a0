"""Governance transactions over ape: delegate, propose, vote, queue, execute (reads and encoders are
``fedchain.governance``, re-exported here for the ``ape run governance`` script, the demos and the tests)."""

from __future__ import annotations

from typing import Any

from ape.exceptions import ContractLogicError

from fedchain.ape.chain import Fedchain
from fedchain.governance import *  # noqa: F403 - one import for callers that also send
from fedchain.governance import (
    Action,
    GovernanceError,
    find_proposal,
    human_time,
    require_governor,
    require_state,
    short_id,
)
from fedchain.protocol import ONE_TOKEN, VOTE_SUPPORT, ProposalState


def _transact(fed: Fedchain, method: Any, *args: Any, sender: Any) -> Any:
    try:
        return method(*args, sender=sender)
    except ContractLogicError as exc:
        raise GovernanceError(fed.explain_revert(exc)) from exc


def delegate(fed: Fedchain, account: Any, to: str | None = None) -> Any:
    """Delegate ``account``'s voting power (to itself by default): votes count from the next snapshot on."""
    require_governor(fed)
    return fed.token.invoke_transaction("delegate", to or account.address, sender=account)


def propose(fed: Fedchain, proposer: Any, actions: list[Action], description: str) -> int:
    """Submit a proposal; returns its id. Checks the proposer's votes first for a clear error."""
    require_governor(fed)
    if not actions:
        raise GovernanceError("nothing to propose: give --set NAME=VALUE, --call, or another action")
    governor = fed.governor
    threshold = int(governor.proposalThreshold())
    votes = int(governor.getVotes(proposer.address, int(fed.token.clock()) - 1)) if threshold else 0
    if votes < threshold:
        raise GovernanceError(f"not enough votes to propose: {proposer.address} has {votes / ONE_TOKEN:g} votes, "
                              f"the threshold is {threshold / ONE_TOKEN:g} (delegate tokens first: "
                              "`ape run governance delegate`)")
    full = description.strip() + "\n\n" + "\n".join(f"- {a.summary}" for a in actions)
    receipt = _transact(fed, governor.propose, [a.target for a in actions], [a.value for a in actions],
                        [a.calldata for a in actions], full, sender=proposer)
    return int(next(iter(receipt.events.filter(governor.ProposalCreated))).proposalId)


def vote(fed: Fedchain, voter: Any, proposal_id: int, support: str, reason: str = "") -> Any:
    """Cast a vote: support is for / against / abstain."""
    require_governor(fed)
    if support not in VOTE_SUPPORT:
        raise GovernanceError(f"vote must be one of {', '.join(VOTE_SUPPORT)}, not {support!r}")
    require_state(fed, proposal_id, ProposalState.ACTIVE, "vote")
    governor = fed.governor
    if governor.hasVoted(proposal_id, voter.address):
        raise GovernanceError(f"{voter.address} already voted on proposal {short_id(proposal_id)}")
    if reason:
        return _transact(fed, governor.castVoteWithReason, proposal_id, VOTE_SUPPORT[support], reason, sender=voter)
    return _transact(fed, governor.castVote, proposal_id, VOTE_SUPPORT[support], sender=voter)


def queue(fed: Fedchain, sender: Any, proposal_id: int) -> Any:
    """Queue a succeeded proposal in the timelock."""
    require_state(fed, proposal_id, ProposalState.SUCCEEDED, "queue")
    p = find_proposal(fed, proposal_id)
    return _transact(fed, fed.governor.queue, p["targets"], p["values"], p["calldatas"], p["description_hash"],
                     sender=sender)


def execute(fed: Fedchain, sender: Any, proposal_id: int) -> Any:
    """Execute a queued proposal once its ETA has passed."""
    require_state(fed, proposal_id, ProposalState.QUEUED, "execute")
    eta = int(fed.governor.proposalEta(proposal_id))
    now = fed.block_timestamp()
    if now < eta:
        raise GovernanceError(f"too early: the timelock delay ends at {human_time(eta, now)}")
    p = find_proposal(fed, proposal_id)
    return _transact(fed, fed.governor.execute, p["targets"], p["values"], p["calldatas"], p["description_hash"],
                     sender=sender)

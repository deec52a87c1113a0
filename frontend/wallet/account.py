"""What the wallet panels read for one address and one proposal: balances, stake, votes, claimable rewards with
their Merkle proofs, proposal actions. Chain views through the dashboard's ``Web3Chain``; reward eligibility is
``fedchain.rewards`` and proposals ``fedchain.governance``, as for the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from fedchain import governance as gov
from fedchain.codec import CodecError
from fedchain.config import settings
from fedchain.rewards import Claim, ResultCache, claimable
from frontend.wallet.errors import WalletError

_RESULTS = ResultCache()  # verified result details by (CID, digest, root): content-addressed, bounded


@dataclass(frozen=True)
class AccountView:
    address: str
    balance: int
    staked: int
    reserved: int  # stake reserved as bonds of rounds in progress: not free to unstake
    unbonding: int
    unbonding_release: int  # when withdraw works
    votes: int
    delegate: str | None  # None: not delegated (no voting power)
    claims: list[Claim]
    chain_time: int  # the latest block's timestamp (unbonding releases are on the chain's clock)
    claims_error: str | None = None

    @property
    def claimable(self) -> int:
        return sum(c.reward for c in self.claims)


def read_account(chain: Any, address: str, store: Any | None) -> AccountView:
    """Everything the account panel shows for `address`, read from the chain now."""
    address = to_checksum_address(address)
    unbonding, release = chain.call("staking", "unbondingOf", address)
    delegate = chain.call("token", "delegates", address)
    try:
        claims, error = claims_of(chain, address, store), None
    except Exception as exc:  # noqa: BLE001 - an unreachable content store must not hide the balances
        claims, error = [], f"claimable rewards unavailable: {exc}"
    return AccountView(address=address, balance=int(chain.call("token", "balanceOf", address)),
                       staked=int(chain.call("staking", "stakeOf", address)),
                       reserved=int(chain.call("staking", "reservedOf", address)), unbonding=int(unbonding),
                       unbonding_release=int(release), votes=int(chain.call("token", "getVotes", address)),
                       delegate=None if int(delegate, 16) == 0 else to_checksum_address(delegate), claims=claims,
                       chain_time=chain.block_timestamp(), claims_error=error)


def claims_of(chain: Any, address: str, store: Any | None) -> list[Claim]:
    """Every round ``address`` can still claim (``fedchain.rewards.claimable``): scores from the accepted result file
    (by CID, digest-checked), and only where they rebuild the round's on-chain score root."""
    if store is None:
        raise WalletError("input", "no content store configured")
    try:
        return claimable(chain, store, address, settings().max_model_bytes, cache=_RESULTS)
    except CodecError as exc:
        raise WalletError("input", f"a result file cannot be used for a claim: {exc}") from exc


def parameter_calls(chain: Any, changes: dict[str, str]) -> tuple[list[str], list[bytes], list[str]]:
    """(targets, calldatas, summaries) for ``{parameter: value}`` changes (``fedchain.governance.parameter_actions``);
    values paired in one setter that are not given keep their current on-chain value."""
    try:
        actions = gov.parameter_actions(chain, changes)
    except gov.GovernanceError as exc:
        raise WalletError("input", str(exc)) from None
    return [a.target for a in actions], [bytes(a.calldata) for a in actions], [a.summary for a in actions]


def proposal_operation(chain: Any, proposal_id: int) -> dict[str, Any]:
    """targets, values, calldatas and description of a proposal, from its ProposalCreated event."""
    try:
        p = gov.find_proposal(chain, proposal_id)
    except gov.GovernanceError as exc:
        raise WalletError("input", str(exc)) from None
    return {k: p[k] for k in ("targets", "values", "calldatas", "description")}

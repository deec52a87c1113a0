"""What the wallet panels read for one address and one proposal: balances, stake, votes, claimable rewards with
their Merkle proofs, proposal actions. Chain views through the dashboard's ChainSource; scores from the result file."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from fedchain.chain import Phase, TrainerStatus
from fedchain.commitments import ScoreTree, reward_share
from fedchain.governance import PARAMETERS, encode_call, parse_value
from frontend.wallet.errors import WalletError

MAX_CACHED_ROUNDS = 256
_SCORES: dict[tuple[str, str], dict[str, int]] = {}


@dataclass(frozen=True)
class Claim:
    task_id: int
    round: int
    score: int
    reward: int
    proof: list[bytes]


@dataclass(frozen=True)
class AccountView:
    address: str
    balance: int
    staked: int
    unbonding: int
    unbonding_release: int  # when withdraw works: the unbonding release or the stake lock, whichever is later
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
    # a commit locks the stake until the round can no longer slash it (StakeLocked on withdraw); deployments from
    # before stake locks have no such view
    with contextlib.suppress(Exception):
        release = max(int(release), int(chain.call("staking", "lockedUntil", address)))
    delegate = chain.call("token", "delegates", address)
    try:
        claims, error = claimable(chain, address, store), None
    except Exception as exc:  # noqa: BLE001 - an unreachable content store must not hide the balances
        claims, error = [], f"claimable rewards unavailable: {exc}"
    return AccountView(address=address, balance=int(chain.call("token", "balanceOf", address)),
                       staked=int(chain.call("staking", "stakeOf", address)), unbonding=int(unbonding),
                       unbonding_release=int(release), votes=int(chain.call("token", "getVotes", address)),
                       delegate=None if int(delegate, 16) == 0 else to_checksum_address(delegate), claims=claims,
                       chain_time=int(chain.w3.eth.get_block("latest")["timestamp"]), claims_error=error)


def claimable(chain: Any, address: str, store: Any | None) -> list[Claim]:
    """Every finalized round of every task where `address` revealed, has a score and has not claimed yet.

    Scores come from the accepted result file (fetched by CID, checked against the on-chain digest); the rebuilt
    score tree must have the round's on-chain root, so a proof that cannot verify is never offered.
    """
    out: list[Claim] = []
    for task_id in range(1, int(chain.call("tasks", "taskCount")) + 1):
        task = chain.call("tasks", "getTask", task_id)
        for round_ in range(1, int(task["currentRound"]) + 1):
            entry = chain.call("tasks", "getTrainerEntry", task_id, round_, address)
            if TrainerStatus(entry["status"]) != TrainerStatus.REVEALED:
                continue
            rnd = chain.call("tasks", "getRound", task_id, round_)
            if Phase(rnd["phase"]) != Phase.FINALIZED or int(rnd["totalWeight"]) == 0:
                continue
            if store is None:
                raise WalletError("input", "no content store configured")
            scores = _round_scores(store, rnd["resultCid"], "0x" + bytes(rnd["resultDigest"]).hex())
            score = scores.get(address.lower(), 0)
            if score == 0:
                continue
            tree = ScoreTree(scores)
            if tree.root != bytes(rnd["scoresRoot"]):
                raise WalletError("input", f"task {task_id} round {round_}: the result file's scores do not match "
                                           "the on-chain score root")
            reward = reward_share(rnd["roundBudget"], score, entry["numSamples"], rnd["totalWeight"])
            out.append(Claim(task_id, round_, score, reward, tree.proof(address)))
    return out


def _round_scores(store: Any, cid: str, digest: str) -> dict[str, int]:
    """Scores of a result file by (CID, digest): content-addressed, so cached (bounded) across refreshes."""
    from backend.details import read_manifest
    from fedchain.config import settings

    key = (cid, digest)
    if key not in _SCORES:
        manifest = read_manifest(store, cid, digest, settings().max_model_bytes)
        if len(_SCORES) >= MAX_CACHED_ROUNDS:
            _SCORES.pop(next(iter(_SCORES)))
        _SCORES[key] = {k.lower(): int(v) for k, v in manifest.details.get("scores", {}).items()}
    return _SCORES[key]


def parameter_calls(chain: Any, changes: dict[str, str]) -> tuple[list[str], list[bytes], list[str]]:
    """(targets, calldatas, summaries) for `{parameter: value}` changes, as `fedchain/governance.py` defines them;
    values paired in one setter that are not given keep their current on-chain value."""
    unknown = sorted(set(changes) - set(PARAMETERS))
    if unknown:
        raise WalletError("input", f"unknown parameter {', '.join(unknown)}")
    targets, calldatas, summaries = [], [], []
    for group in dict.fromkeys(PARAMETERS[name].group for name in changes):
        params = [PARAMETERS[n] for n in group]
        values = []
        for p in params:
            if p.name in changes:
                try:
                    values.append(parse_value(p, changes[p.name]))
                except Exception as exc:  # noqa: BLE001 - GovernanceError carries the human message
                    raise WalletError("input", str(exc)) from None
            else:
                values.append(chain.call(p.contract, p.getter))
        if params[0].contract not in chain.contracts:
            raise WalletError("input", f"this deployment has no {params[0].contract} contract")
        targets.append(chain.contracts[params[0].contract].address)
        calldatas.append(encode_call(params[0].setter, values))
        summaries.append(f"{params[0].setter.split('(')[0]}({', '.join(str(v) for v in values)})")
    return targets, calldatas, summaries


def proposal_operation(chain: Any, proposal_id: int) -> dict[str, Any]:
    """targets, values, calldatas and description of a proposal, from its ProposalCreated event."""
    governor = chain.contracts.get("governor")
    if governor is None:
        raise WalletError("input", "this deployment has no DAO")
    for log in chain.logs(chain.deployment.block, chain.head()):
        if log.contract == "governor" and log.name == "ProposalCreated" and int(log.args["proposalId"]) == proposal_id:
            return {"targets": list(log.args["targets"]), "values": list(log.args["values"]),
                    "calldatas": list(log.args["calldatas"]), "description": log.args["description"]}
    raise WalletError("input", f"proposal {proposal_id} was not found on chain")

"""Chain bindings through ape: deployments per network, contract handles, phase enums, revert messages."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from fedchain.config import REPO_ROOT, ensure_tool_paths, settings

ensure_tool_paths()

from ape import chain, networks  # noqa: E402
from ape.exceptions import ContractLogicError  # noqa: E402

TOKEN_DECIMALS = 18
ONE_TOKEN = 10**TOKEN_DECIMALS


class Phase(IntEnum):
    NONE = 0
    TRAINER_COMMIT = 1
    TRAINER_REVEAL = 2
    AGGREGATOR_COMMIT = 3
    AGGREGATOR_REVEAL = 4
    FINALIZED = 5
    FAILED = 6

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


class TaskStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    COMPLETED = 2


class TrainerStatus(IntEnum):
    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    CLAIMED = 3
    SLASHED = 4


class AggregatorStatus(IntEnum):
    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    SLASHED = 3


class FedchainError(RuntimeError):
    """An error with a message meant for the person at the terminal."""


class NotDeployed(FedchainError):
    pass


def contracts_project() -> Any:
    """The ape project holding fedchain's contracts (compiled on first use)."""
    from ape.managers.project import LocalProject

    return LocalProject(REPO_ROOT)


def network_key() -> str:
    """`ecosystem:network` of the connected provider, the key in deployments.json."""
    provider = networks.provider
    return f"{provider.network.ecosystem.name}:{provider.network.name}"


def is_local_network() -> bool:
    return networks.provider.network.name == "local"


@dataclass(frozen=True)
class Deployment:
    """Addresses of one fedchain deployment on one network."""

    network: str
    chain_id: int
    token: str
    staking: str
    tasks: str
    block: int
    deployer: str
    rejection_slasher: str | None = None  # RejectionSlasher: slashes trainers whose update was rejected
    governor: str | None = None  # FedGovernor, when the DAO owns the deployment
    timelock: str | None = None  # FedTimelock: every admin role, the minter role and the treasury
    policy: str | None = None  # ProtocolPolicy: stake floors, quorum bounds, strategy allowlist, guardian pause
    retention: str | None = None  # TaskRetention: each task's retention policy (what pinning nodes keep)

    @property
    def governed(self) -> bool:
        return bool(self.governor and self.timelock)

    def save(self) -> None:
        path = settings().deployments_file
        path.parent.mkdir(parents=True, exist_ok=True)
        records = json.loads(path.read_text()) if path.exists() else {}
        records[self.network] = asdict(self)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True))
        tmp.replace(path)

    @classmethod
    def load(cls, network: str | None = None) -> Deployment:
        """The deployment recorded for the connected network; errors say how to deploy."""
        network = network or network_key()
        path = settings().deployments_file
        records = json.loads(path.read_text()) if path.exists() else {}
        if network not in records:
            raise NotDeployed(
                f"no fedchain deployment recorded for {network} in {path}; "
                "run `ape run deploy --network <choice>` (or `fedchain demo` on a local chain)"
            )
        known = set(cls.__dataclass_fields__)
        record = cls(**{k: v for k, v in records[network].items() if k in known})
        if record.chain_id != chain.chain_id or not networks.provider.get_code(record.tasks):
            raise NotDeployed(
                f"the deployment recorded for {network} in {path} is not on the connected chain "
                "(was the local chain restarted?); deploy again with `ape run deploy`"
            )
        return record


class Fedchain:
    """Handles to the three fedchain contracts of one deployment."""

    def __init__(self, deployment: Deployment) -> None:
        project = contracts_project()
        self.deployment = deployment
        self.token = project.FedToken.at(deployment.token)
        self.staking = project.Staking.at(deployment.staking)
        self.tasks = project.TaskManager.at(deployment.tasks)
        self.rejection_slasher = (project.RejectionSlasher.at(deployment.rejection_slasher)
                                  if deployment.rejection_slasher else None)
        self.governor = project.FedGovernor.at(deployment.governor) if deployment.governor else None
        self.timelock = project.FedTimelock.at(deployment.timelock) if deployment.timelock else None
        self.policy = project.ProtocolPolicy.at(deployment.policy) if deployment.policy else None
        self.retention = project.TaskRetention.at(deployment.retention) if deployment.retention else None

    @classmethod
    def connect(cls) -> Fedchain:
        return cls(Deployment.load())

    def task(self, task_id: int) -> Any:
        return self.tasks.getTask(task_id)

    def round(self, task_id: int, round_: int) -> Any:
        return self.tasks.getRound(task_id, round_)


REVERT_HINTS = {
    "InsufficientStake": "not enough tokens staked; stake more with `fedchain client stake AMOUNT`",
    "WrongPhase": "the round is not in the phase this action needs",
    "PhaseClosed": "the deadline of this phase has passed",
    "PhaseNotOver": "the phase is still running; it can be advanced after its deadline",
    "AlreadyCommitted": "this account already committed in this round",
    "AlreadyRevealed": "this account already revealed in this round",
    "NotCommitted": "this account did not commit in this round",
    "NotRevealed": "this account did not reveal in this round",
    "CommitmentMismatch": "the reveal does not match the commitment (different update, sample count or salt)",
    "ZeroCommitment": "a commitment must not be zero",
    "ZeroSamples": "an update must report at least one training sample",
    "InvalidCid": "the CID is empty or longer than 128 bytes",
    "TrainerLimitReached": "the round already has the maximum number of trainers",
    "AggregatorLimitReached": "the round already has the maximum number of aggregators",
    "UnknownTask": "no such task",
    "TaskNotActive": "the task is completed",
    "TaskNotCompleted": "the task still has rounds to run",
    "InvalidTaskParams": "the task parameters are invalid",
    "InvalidProof": "the Merkle proof does not match the round's scores",
    "AlreadyClaimed": "the reward of this round was already claimed",
    "NoRoundBudget": "this round allocated no rewards (every update was rejected)",
    "RoundOverpaid": "the round's reward budget is exhausted",
    "SlashingNotOpen": "this round cannot be slashed in its current phase",
    "AlreadySlashed": "this participant was already slashed in this round",
    "NotSlashable": "this participant did nothing slashable in this round",
    "NotSponsor": "only the task's sponsor can do this",
    "InvalidRetention": "model rounds must be 1..100000 or all; update rounds 0..100000 or all",
    "NoTaskRetention": "the task has no retention policy of its own (it follows the default)",
    "NothingToReclaim": "the task has no unallocated budget left",
    "NothingToWithdraw": "nothing is unbonding",
    "StillUnbonding": "the unbonding delay has not passed yet",
    "StakeLocked": "the stake backs a recent round that may still slash it; withdraw after the lock expires",
    "ZeroAmount": "the amount must be positive",
    "ZeroAddress": "the address must not be zero",
    "ERC20InsufficientBalance": "the token balance is too low",
    "ERC20InsufficientAllowance": "the token allowance is too low",
    "AccessControlUnauthorizedAccount": "this account lacks the role this action needs",
}


def explain_revert(exc: BaseException, hints: dict[str, str] = REVERT_HINTS) -> str:
    """A one-line, human message for a contract revert (custom errors by name, with their arguments)."""
    name = type(exc).__name__
    inputs = getattr(exc, "inputs", None) or {}
    hint = hints.get(name)
    details = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(inputs.items()))
    if hint:
        return f"{hint} ({name}{': ' + details if details else ''})"
    if isinstance(exc, ContractLogicError):
        return f"transaction reverted: {exc.message or name}"
    return str(exc)


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        text = value.rstrip(b"\0")
        return text.decode() if text.isascii() and text.isalnum() else "0x" + value.hex()
    if isinstance(value, int) and value > 10**15:
        return f"{value / ONE_TOKEN:g} FED"
    return str(value)


def to_tokens(amount_wei: int) -> float:
    return amount_wei / ONE_TOKEN

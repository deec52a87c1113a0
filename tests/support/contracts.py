"""Helpers for the contract tests: independent Python mirrors of the contract hashes, a small Merkle tree,
custom-error assertions and a harness that drives rounds.

Deliberately independent of ``fedchain/commitments.py`` so the two implementations check each other.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import ape
from ape.exceptions import CustomError
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from fedchain.taskspec import SOLIDITY_NAMES, TaskSpec

FED = 10**18
HOUR = 3600
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20

# fixture amounts (conftest.py)
UNBONDING_DELAY = 7 * 24 * 3600
SPONSOR_FUNDS = 10_000_000 * FED
TRAINER_FUNDS = 10_000 * FED
TRAINER_STAKE = 1_000 * FED
AGGREGATOR_FUNDS = 20_000 * FED
AGGREGATOR_STAKE = 5_000 * FED

# enum values (contracts/TaskTypes.sol)
TASK_NONE, TASK_ACTIVE, TASK_COMPLETED = range(3)
(
    PH_NONE,
    PH_TRAINER_COMMIT,
    PH_TRAINER_REVEAL,
    PH_AGG_COMMIT,
    PH_AGG_REVEAL,
    PH_FINALIZED,
    PH_FAILED,
) = range(7)
TR_NONE, TR_COMMITTED, TR_REVEALED, TR_CLAIMED, TR_SLASHED = range(5)
AG_NONE, AG_COMMITTED, AG_REVEALED, AG_SLASHED, AG_CLAIMED = range(5)

PARAM_FIELDS = SOLIDITY_NAMES  # TaskParams in ABI order (fedchain.taskspec)


def label(text: str) -> bytes:
    """bytes32 label as Solidity's ``bytes32("text")``."""
    raw = text.encode()
    assert len(raw) <= 32
    return raw + b"\x00" * (32 - len(raw))


def sha(data: str | bytes) -> bytes:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).digest()


def salt_for(*parts) -> bytes:
    return keccak(text="salt:" + ":".join(str(p) for p in parts))


def default_params(**overrides) -> dict:
    params = {
        "architecture": "mlp:64-32-10",
        "initialModelCid": "bafkreiinitialmodel",
        "initialModelDigest": sha("initial model"),
        "validationCid": "bafkreivalidationset",
        "validationDigest": sha("validation set"),
        "rewardBudget": 1_000_003 * 10**12,  # not a round number: integer division matters
        "numRounds": 2,
        "minTrainers": 2,
        "maxTrainers": 3,
        "aggregatorQuorum": 1,
        "maxAggregators": 1,
        "commitDuration": HOUR,
        "revealDuration": HOUR,
        "aggregatorCommitDuration": HOUR,
        "aggregatorRevealDuration": HOUR,
        "minTrainerStake": 100 * FED,
        "minAggregatorStake": 1_000 * FED,
        "strategy": "fedavg",
        "strategyParams": b"",
        "dpEpsilonMilli": 8_000,
        "dpDeltaE18": 10**13,
        "maxSamples": 0,
        "maxModelBytes": 1 << 26,
    }
    unknown = set(overrides) - set(params)
    assert not unknown, unknown
    params.update(overrides)
    return params


def params_tuple(params: dict) -> tuple:
    """The ``createTask`` tuple, through the core's typed spec (fields by their Solidity names)."""
    return TaskSpec.from_chain(params).to_chain()


# ---------------------------------------------------------------- hashes (mirrors of the contract helpers)


def trainer_commitment(trainer, task_id, rnd, digest, num_samples, salt) -> bytes:
    return keccak(
        encode(
            ["address", "uint256", "uint256", "bytes32", "uint64", "bytes32"],
            [str(trainer), task_id, rnd, digest, num_samples, salt],
        )
    )


@dataclass
class Result:
    resultCid: str
    resultDigest: bytes
    scoresRoot: bytes
    totalWeight: int
    accepted: int
    rejected: int
    accuracyPpm: int = 912_345
    lossMicro: int = 301_234

    def as_tuple(self) -> tuple:
        return (
            self.resultCid,
            self.resultDigest,
            self.scoresRoot,
            self.totalWeight,
            self.accepted,
            self.rejected,
            self.accuracyPpm,
            self.lossMicro,
        )


def result_key(r: Result) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "uint32", "uint32", "uint32", "uint64"],
            [
                keccak(r.resultCid.encode()),
                r.resultDigest,
                r.scoresRoot,
                r.totalWeight,
                r.accepted,
                r.rejected,
                r.accuracyPpm,
                r.lossMicro,
            ],
        )
    )


def aggregator_commitment(aggregator, task_id, rnd, key, salt) -> bytes:
    return keccak(
        encode(["address", "uint256", "uint256", "bytes32", "bytes32"], [str(aggregator), task_id, rnd, key, salt])
    )


def score_leaf(trainer, score: int, weight: int) -> bytes:
    return keccak(keccak(encode(["address", "uint32", "uint64"], [str(trainer), score, weight])))


# ---------------------------------------------------------------- Merkle tree


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass
class ScoreTree:
    """Leaves (trainer, score, weight) ordered by address ascending, sorted-pair hashing, odd node promoted
    unchanged."""

    scores: dict  # address -> score
    weights: dict  # address -> attested weight
    levels: list = field(init=False)
    order: list = field(init=False)

    def __post_init__(self):
        self.scores = {to_checksum_address(str(a)): s for a, s in self.scores.items()}
        self.weights = {to_checksum_address(str(a)): w for a, w in self.weights.items()}
        self.order = sorted(self.scores, key=lambda a: int(a, 16))
        self.levels = [[score_leaf(a, self.scores[a], self.weights[a]) for a in self.order]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            above = [_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            self.levels.append(above)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, trainer) -> list[bytes]:
        index = self.order.index(to_checksum_address(str(trainer)))
        proof = []
        for level in self.levels[:-1]:
            if (index ^ 1) < len(level):
                proof.append(level[index ^ 1])
            index //= 2
        return proof


# ---------------------------------------------------------------- assertions


@contextmanager
def reverts_with(name: str, **inputs):
    """Assert the block reverts with custom error ``name`` and, if given, exactly these inputs."""
    with ape.reverts() as info:
        yield info
    err = info.value
    assert isinstance(err, CustomError), f"expected custom error {name}, got {type(err).__name__}: {err}"
    assert err.abi.name == name, f"expected {name}, got {err.abi.name}({err.inputs})"
    for key, expected in inputs.items():
        assert key in err.inputs, f"{name} has no input {key!r}: {err.inputs}"
        actual = err.inputs[key]
        if isinstance(expected, bytes):
            actual = bytes(actual)
        assert actual == expected, f"{name}.{key}: expected {expected!r}, got {actual!r}"


def deploy_reverts_with(container, *args, sender, name: str, **inputs) -> None:
    """Deploying ``container`` with ``args`` reverts with custom error ``name`` (and these inputs).

    Checked by a plain eth_call of the creation code, not through ``ape.reverts()``: on a revert ape enriches a
    call trace, and for a deployment it decodes the constructor arguments with whatever contract type it cached
    at the would-be address, which an earlier test (its chain since reverted to a snapshot) may have left there.
    """
    creation = bytes(container.contract_type.deployment_bytecode.to_bytes()) + bytes(
        container.constructor.encode_input(*args))
    _assert_call_reverts(container.contract_type, {"from": str(sender.address), "data": creation},
                         f"deploying {container.contract_type.name}", name, inputs)


def view_reverts_with(contract, method: str, *args, name: str, **inputs):
    """Views: ape drops anvil's revert data for eth_call, so call through web3 and decode it here."""
    calldata = getattr(contract, method).encode_input(*args)
    _assert_call_reverts(contract.contract_type, {"to": contract.address, "data": calldata}, method, name, inputs)


def _assert_call_reverts(contract_type, call: dict, what: str, name: str, inputs: dict) -> None:
    from web3.exceptions import ContractCustomError

    try:
        ape.chain.provider.web3.eth.call(call)
    except ContractCustomError as err:
        data = bytes.fromhex(str(err.data)[2:])
    else:
        raise AssertionError(f"{what} did not revert")
    for abi in contract_type.errors:
        if keccak(text=abi.selector)[:4] == data[:4]:
            break
    else:
        raise AssertionError(f"unknown error selector 0x{data[:4].hex()}")
    assert abi.name == name, f"expected {name}, got {abi.name}"
    values = decode([i.canonical_type for i in abi.inputs], data[4:])
    actual = {i.name: v for i, v in zip(abi.inputs, values, strict=True)}
    for key, expected in inputs.items():
        assert actual[key] == expected, f"{name}.{key}: expected {expected!r}, got {actual[key]!r}"


def events(receipt, event_abi) -> list:
    return list(receipt.decode_logs(event_abi))


def one_event(receipt, event_abi) -> dict:
    logs = events(receipt, event_abi)
    assert len(logs) == 1, f"expected one {event_abi.name}, got {len(logs)}"
    return dict(logs[0].event_arguments)


def assert_event(receipt, event_abi, **expected):
    args = one_event(receipt, event_abi)
    assert set(args) == set(expected), f"{event_abi.name}: args {sorted(args)} vs expected {sorted(expected)}"
    for key, value in expected.items():
        actual = args[key]
        if isinstance(value, bytes):
            actual = bytes(actual)
        elif hasattr(value, "address"):
            value = value.address
        assert actual == value, f"{event_abi.name}.{key}: expected {value!r}, got {actual!r}"


# ---------------------------------------------------------------- harness


class Fed:
    """Deployed contracts and the accounts around them, with helpers that drive rounds."""

    def __init__(self, chain, token, staking, tm, committee, vault, admin, treasury, sponsor, trainers, aggregators,
                 outsider):
        self.chain = chain
        self.token, self.staking, self.tm = token, staking, tm
        self.committee, self.vault = committee, vault
        self.admin, self.treasury, self.sponsor, self.outsider = admin, treasury, sponsor, outsider
        self.trainers, self.aggregators = trainers, aggregators

    # ---- tasks and time

    def create_task(self, sponsor=None, **overrides) -> int:
        sponsor = sponsor or self.sponsor
        params = default_params(**overrides)
        self.token.approve(self.tm, params["rewardBudget"], sender=sponsor)
        self.tm.createTask(params_tuple(params), sender=sponsor)
        return self.tm.taskCount()

    def round_of(self, task_id, rnd=None):
        if rnd is None:
            rnd = self.tm.getTask(task_id).currentRound
        return self.tm.getRound(task_id, rnd)

    def past_deadline(self, task_id):
        """Set the next block's time to one second after the current phase's deadline."""
        self.chain.pending_timestamp = self.round_of(task_id).phaseDeadline + 1

    def advance_after_deadline(self, task_id):
        self.past_deadline(task_id)
        return self.tm.advance(task_id, sender=self.outsider)

    # ---- trainers

    @staticmethod
    def update_of(trainer, task_id, rnd, num_samples):
        digest = sha(f"update:{trainer.address}:{task_id}:{rnd}")
        return {
            "cid": f"bafkreiupdate{trainer.address[2:10].lower()}t{task_id}r{rnd}",
            "digest": digest,
            "numSamples": num_samples,
            "salt": salt_for("trainer", trainer.address, task_id, rnd),
        }

    def commit(self, task_id, trainer, num_samples=100):
        rnd = self.tm.getTask(task_id).currentRound
        u = self.update_of(trainer, task_id, rnd, num_samples)
        c = trainer_commitment(trainer, task_id, rnd, u["digest"], num_samples, u["salt"])
        return self.tm.commitUpdate(task_id, rnd, c, sender=trainer)

    def reveal(self, task_id, trainer, num_samples=100):
        rnd = self.tm.getTask(task_id).currentRound
        u = self.update_of(trainer, task_id, rnd, num_samples)
        return self.tm.revealUpdate(task_id, u["cid"], u["digest"], num_samples, u["salt"], sender=trainer)

    def trainer_phases(self, task_id, samples: dict, reveal_only=None):
        """Commit for every trainer in ``samples`` ({account: numSamples}), close the commit phase, reveal
        for ``reveal_only`` (default: all) and close the reveal phase. Returns to AggregatorCommit."""
        for trainer, n in samples.items():
            self.commit(task_id, trainer, n)
        if self.round_of(task_id).phase == PH_TRAINER_COMMIT:
            self.advance_after_deadline(task_id)
        revealers = samples if reveal_only is None else reveal_only
        for trainer in revealers:
            self.reveal(task_id, trainer, samples[trainer])
        if self.round_of(task_id).phase == PH_TRAINER_REVEAL:
            self.advance_after_deadline(task_id)

    # ---- aggregators

    @staticmethod
    def make_result(task_id, rnd, scores: dict, samples: dict, tag="honest", **overrides) -> tuple[Result, ScoreTree]:
        """A result whose leaves attest each trainer's weight as its sample count (0 for a rejected trainer)."""
        weights = {t.address: (samples[t] if s > 0 else 0) for t, s in scores.items()}
        tree = ScoreTree({t.address: s for t, s in scores.items()}, weights)
        accepted = sum(1 for s in scores.values() if s > 0)
        r = Result(
            resultCid=f"bafkreiaggregate{tag}t{task_id}r{rnd}",
            resultDigest=sha(f"aggregate:{tag}:{task_id}:{rnd}"),
            scoresRoot=tree.root,
            totalWeight=sum(s * weights[t.address] for t, s in scores.items()),
            accepted=accepted,
            rejected=len(scores) - accepted,
        )
        for key, value in overrides.items():
            setattr(r, key, value)
        return r, tree

    def draw(self, task_id) -> list:
        """Draw the current round's committee (AggregatorCommit phase) and return its members as accounts."""
        rnd = self.tm.getTask(task_id).currentRound
        if not self.committee.drawn(task_id, rnd):
            self.committee.draw(task_id, rnd, sender=self.outsider)
        by_address = {a.address: a for a in self.aggregators}
        return [by_address[str(m)] for m in self.committee.membersOf(task_id, rnd)]

    def agg_commit(self, task_id, aggregator, result: Result):
        rnd = self.tm.getTask(task_id).currentRound
        salt = salt_for("aggregator", aggregator.address, task_id, rnd)
        c = aggregator_commitment(aggregator, task_id, rnd, result_key(result), salt)
        return self.committee.commitAggregate(task_id, c, sender=aggregator)

    def agg_reveal(self, task_id, aggregator, result: Result):
        rnd = self.tm.getTask(task_id).currentRound
        salt = salt_for("aggregator", aggregator.address, task_id, rnd)
        return self.committee.revealAggregate(task_id, result.as_tuple(), salt, sender=aggregator)

    def aggregator_phases(self, task_id, results: dict, reveal_only=None):
        """Commit ``results`` ({aggregator: Result}), close the phase, reveal (``reveal_only`` or all).
        Leaves the round in AggregatorReveal (unless it failed at AggregatorCommit)."""
        for agg, result in results.items():
            self.agg_commit(task_id, agg, result)
        if self.round_of(task_id).phase == PH_AGG_COMMIT:
            self.advance_after_deadline(task_id)
        revealers = results if reveal_only is None else reveal_only
        for agg in revealers:
            self.agg_reveal(task_id, agg, results[agg])

    def finish_round(self, task_id):
        """Leave AggregatorReveal (early when everyone revealed, else after the deadline)."""
        rnd = self.tm.getTask(task_id).currentRound
        _, _, committed, revealed, _ = self.committee.tally(task_id, rnd)
        if revealed == committed:
            return self.tm.advance(task_id, sender=self.outsider)
        return self.advance_after_deadline(task_id)

    def full_round(self, task_id, samples: dict, scores: dict, aggregator=None):
        """One honest round with one drawn aggregator; returns (receipt of the finalizing advance, result, tree)."""
        rnd = self.tm.getTask(task_id).currentRound
        self.trainer_phases(task_id, samples)
        aggregator = aggregator or self.draw(task_id)[0]
        result, tree = self.make_result(task_id, rnd, scores, samples)
        self.aggregator_phases(task_id, {aggregator: result})
        return self.finish_round(task_id), result, tree

    # ---- accounting

    def claim(self, task_id, rnd, trainer, tree: ScoreTree):
        address = to_checksum_address(trainer.address)
        return self.vault.claimReward(task_id, rnd, tree.scores[address], tree.weights[address], tree.proof(trainer),
                                      sender=trainer)

    def trainer_share(self, task_id, rnd) -> int:
        """The trainers' part of a finalized round's budget (RewardVault.splitOf)."""
        return self.vault.splitOf(task_id, rnd)[0]

    def holders(self):
        return [
            self.admin,
            self.treasury,
            self.sponsor,
            self.outsider,
            *self.trainers,
            *self.aggregators,
            self.staking,
            self.tm,
            self.committee,
            self.vault,
        ]

    def assert_conserved(self):
        total = sum(self.token.balanceOf(h) for h in self.holders())
        assert total == self.token.totalSupply()
        # the contracts hold exactly what their books say
        assert self.token.balanceOf(self.staking) == self.staking.totalStaked() + self.staking.totalUnbonding()
        assert self.token.balanceOf(self.tm) == 0 and self.token.balanceOf(self.committee) == 0

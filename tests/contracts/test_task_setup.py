"""TaskManager: deployment, task creation and validation, parameters, pure helpers, views."""

import pytest
from eth_utils import keccak

from tests.support.contracts import (
    HOUR,
    PARAM_FIELDS,
    PH_NONE,
    PH_TRAINER_COMMIT,
    TASK_ACTIVE,
    ZERO32,
    ZERO_ADDRESS,
    Result,
    aggregator_commitment,
    assert_event,
    default_params,
    deploy_reverts_with,
    params_tuple,
    result_key,
    reverts_with,
    score_leaf,
    sha,
    trainer_commitment,
    view_reverts_with,
)


def test_constructor_state(tm, token, staking, admin, chain):
    receipt = chain.get_receipt(tm.txn_hash)
    assert_event(receipt, tm.SlashFractionsChanged, trainerBps=10_000, aggregatorBps=5_000)
    assert_event(receipt, tm.PhaseDurationBoundsChanged, min=1, max=30 * 24 * HOUR)
    assert_event(receipt, tm.SettlementWindowChanged, oldWindow=0, newWindow=24 * HOUR)
    assert tm.token() == token.address
    assert tm.staking() == staking.address
    assert tm.trainerSlashBps() == 10_000
    assert tm.aggregatorSlashBps() == 5_000
    assert tm.minPhaseDuration() == 1
    assert tm.maxPhaseDuration() == 30 * 24 * HOUR
    assert tm.settlementWindow() == 24 * HOUR
    assert tm.taskCount() == 0
    assert tm.hasRole(tm.DEFAULT_ADMIN_ROLE(), admin)
    assert tm.hasRole(tm.PARAMETER_ROLE(), admin)
    assert bytes(tm.REJECTION_ROLE()) == keccak(text="REJECTION_ROLE")
    assert tm.vault() == tm.committee() == ZERO_ADDRESS  # connected once, by the deployment


@pytest.mark.parametrize("which", [0, 1, 2])
def test_constructor_rejects_zero_addresses(project, accounts, token, staking, which):
    args = [token.address, staking.address, accounts[0].address]
    args[which] = ZERO_ADDRESS
    deploy_reverts_with(project.TaskManager, *args, sender=accounts[0], name="ZeroAddress")


def test_create_task(fed, chain):
    tm, token, sponsor = fed.tm, fed.token, fed.sponsor
    params = default_params()
    before = token.balanceOf(sponsor)
    token.approve(tm, params["rewardBudget"], sender=sponsor)
    receipt = tm.createTask(params_tuple(params), sender=sponsor)
    ts = chain.blocks[receipt.block_number].timestamp
    assert tm.taskCount() == 1
    assert_event(
        receipt,
        tm.TaskCreated,
        taskId=1,
        sponsor=sponsor.address,
        architecture=params["architecture"],
        initialModelCid=params["initialModelCid"],
        rewardBudget=params["rewardBudget"],
        numRounds=params["numRounds"],
    )
    assert_event(receipt, tm.RoundStarted, taskId=1, round=1, commitDeadline=ts + HOUR)
    assert token.balanceOf(sponsor) == before - params["rewardBudget"]
    assert token.balanceOf(fed.vault) == params["rewardBudget"] and token.balanceOf(tm) == 0
    assert fed.vault.termsOf(1)[:3] == (300, 0, 180 * 24 * HOUR)

    info = tm.getTask(1)
    assert info.sponsor == sponsor.address
    assert info.status == TASK_ACTIVE
    assert info.currentRound == 1
    assert info.globalModelCid == params["initialModelCid"]
    assert bytes(info.globalModelDigest) == params["initialModelDigest"]
    assert info.remainingBudget == params["rewardBudget"]
    for name in PARAM_FIELDS:
        value = getattr(info.params, name)
        assert (bytes(value) if isinstance(params[name], bytes) else value) == params[name], name

    r = tm.getRound(1, 1)
    assert r.phase == PH_TRAINER_COMMIT
    assert r.phaseDeadline == ts + HOUR
    assert (r.committed, r.revealed, r.drawBlock, r.finalizedAt, r.settledAt) == (0, 0, 0, 0, 0)
    assert tm.getRound(1, 2).phase == PH_NONE
    assert tm.roundTrainerBond(1, 1) == tm.trainerBond(1) == params["minTrainerStake"]  # fixed at the round's start
    assert tm.roundTrainerBond(1, 2) == 0

    # ids count up
    assert fed.create_task() == 2
    assert tm.getTask(2).currentRound == 1


def test_create_task_stores_dynamic_fields(fed):
    tid = fed.create_task(strategy="fedprox", strategyParams=b'{"mu":0.01}', dpEpsilonMilli=0, dpDeltaE18=0)
    p = fed.tm.getTask(tid).params
    assert p.strategy == "fedprox"
    assert bytes(p.strategyParams) == b'{"mu":0.01}'
    assert p.dpEpsilonMilli == 0


def test_create_task_needs_allowance(fed):
    params = default_params()
    with reverts_with("ERC20InsufficientAllowance"):
        fed.tm.createTask(params_tuple(params), sender=fed.sponsor)
    assert fed.tm.taskCount() == 0


BAD_PARAMS = [
    ("architecture", {"architecture": ""}),
    ("initialModelCid", {"initialModelCid": ""}),
    ("initialModelCid", {"initialModelCid": "b" * 129}),
    ("initialModelDigest", {"initialModelDigest": ZERO32}),
    ("validationCid", {"validationCid": ""}),
    ("validationCid", {"validationCid": "b" * 129}),
    ("validationDigest", {"validationDigest": ZERO32}),
    ("rewardBudget", {"rewardBudget": 0}),
    ("numRounds", {"numRounds": 0}),
    ("minTrainers", {"minTrainers": 0}),
    ("maxTrainers", {"minTrainers": 3, "maxTrainers": 2}),
    ("aggregatorQuorum", {"aggregatorQuorum": 0}),
    ("maxAggregators", {"aggregatorQuorum": 2, "maxAggregators": 1}),
    ("maxAggregators", {"aggregatorQuorum": 1, "maxAggregators": 2}),  # quorum must be a strict majority
    ("maxAggregators", {"aggregatorQuorum": 2, "maxAggregators": 4}),
    ("commitDuration", {"commitDuration": 0}),
    ("revealDuration", {"revealDuration": 30 * 24 * HOUR + 1}),
    ("aggregatorCommitDuration", {"aggregatorCommitDuration": 0}),
    ("aggregatorRevealDuration", {"aggregatorRevealDuration": 30 * 24 * HOUR + 1}),
    ("maxAggregators", {"aggregatorQuorum": 2, "maxAggregators": 2}),  # q-of-q: a free veto for any member
    ("maxAggregators", {"aggregatorQuorum": 3, "maxAggregators": 3}),
    ("maxTrainers", {"minTrainers": 1, "maxTrainers": 1025}),
    ("minTrainerStake", {"minTrainerStake": 0}),  # slot squatting must cost a bond
    ("minAggregatorStake", {"minAggregatorStake": 0}),
    ("strategy", {"strategy": ""}),
    ("dpDeltaE18", {"dpDeltaE18": 10**18}),
    ("maxModelBytes", {"maxModelBytes": 0}),
    ("maxModelBytes", {"maxModelBytes": (1 << 40) + 1}),
]
# the protocol policy's bound (the DAO's, 4 GiB by default) is checked in tests/governance/test_lifecycle.py


@pytest.mark.parametrize("reason,overrides", BAD_PARAMS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BAD_PARAMS)])
def test_create_task_validation(fed, reason, overrides):
    params = default_params(**overrides)
    fed.token.approve(fed.tm, 10**30, sender=fed.sponsor)
    with reverts_with("InvalidTaskParams", reason=reason):
        fed.tm.createTask(params_tuple(params), sender=fed.sponsor)


def test_create_task_accepts_edge_values(fed):
    tid = fed.create_task(
        initialModelCid="b" * 128,
        validationCid="c",
        minTrainers=1,
        maxTrainers=1,
        aggregatorQuorum=2,
        maxAggregators=3,
        commitDuration=1,
        revealDuration=30 * 24 * HOUR,
        dpDeltaE18=10**18 - 1,
    )
    assert fed.tm.getTask(tid).params.maxAggregators == 3


def test_set_slash_fractions(fed):
    tm, admin = fed.tm, fed.admin
    receipt = tm.setSlashFractions(0, 10_000, sender=admin)
    assert_event(receipt, tm.SlashFractionsChanged, trainerBps=0, aggregatorBps=10_000)
    assert (tm.trainerSlashBps(), tm.aggregatorSlashBps()) == (0, 10_000)
    with reverts_with("InvalidSlashFraction", bps=10_001):
        tm.setSlashFractions(10_001, 0, sender=admin)
    with reverts_with("InvalidSlashFraction", bps=10_001):
        tm.setSlashFractions(0, 10_001, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=fed.outsider.address, neededRole=tm.PARAMETER_ROLE()):
        tm.setSlashFractions(1, 1, sender=fed.outsider)


def test_set_phase_duration_bounds(fed):
    tm, admin = fed.tm, fed.admin
    receipt = tm.setPhaseDurationBounds(60, 600, sender=admin)
    assert_event(receipt, tm.PhaseDurationBoundsChanged, min=60, max=600)
    assert (tm.minPhaseDuration(), tm.maxPhaseDuration()) == (60, 600)
    # new bounds apply to new tasks
    fed.token.approve(tm, 10**30, sender=fed.sponsor)
    with reverts_with("InvalidTaskParams", reason="commitDuration"):
        tm.createTask(params_tuple(default_params(commitDuration=59)), sender=fed.sponsor)
    with reverts_with("InvalidTaskParams", reason="commitDuration"):
        tm.createTask(params_tuple(default_params(commitDuration=601)), sender=fed.sponsor)
    fed.create_task(commitDuration=60, revealDuration=600, aggregatorCommitDuration=60, aggregatorRevealDuration=600)
    with reverts_with("InvalidDurationBounds", min=0, max=10):
        tm.setPhaseDurationBounds(0, 10, sender=admin)
    with reverts_with("InvalidDurationBounds", min=11, max=10):
        tm.setPhaseDurationBounds(11, 10, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount", account=fed.outsider.address):
        tm.setPhaseDurationBounds(1, 2, sender=fed.outsider)


def test_pure_helpers_match_python(tm, accounts):
    trainer, aggregator = accounts[3].address, accounts[8].address
    digest, salt = sha("update"), keccak(text="salt")
    for task_id, rnd, n in [(1, 1, 1), (7, 3, 2**64 - 1), (2**256 - 1, 2**200, 12345)]:
        assert bytes(tm.computeTrainerCommitment(trainer, task_id, rnd, digest, n, salt)) == trainer_commitment(
            trainer, task_id, rnd, digest, n, salt
        )
    result = Result("bafkreiresult", sha("model"), keccak(text="root"), 10**30, 3, 1, 999_999, 2**64 - 1)
    key = result_key(result)
    assert bytes(tm.computeResultKey(result.as_tuple())) == key
    # every field is part of the key
    for field in (
        "resultCid",
        "resultDigest",
        "scoresRoot",
        "totalWeight",
        "accepted",
        "rejected",
        "accuracyPpm",
        "lossMicro",
    ):
        other = Result(*result.as_tuple())
        current = getattr(other, field)
        if isinstance(current, str):
            changed = current + "x"
        elif isinstance(current, bytes):
            changed = keccak(current)
        else:
            changed = current - 1
        setattr(other, field, changed)
        assert bytes(tm.computeResultKey(other.as_tuple())) == result_key(other) != key, field
    assert bytes(tm.computeAggregatorCommitment(aggregator, 5, 2, key, salt)) == aggregator_commitment(
        aggregator, 5, 2, key, salt
    )
    for score, weight in ((0, 0), (1, 1), (1_000_000, 2**64 - 1), (2**32 - 1, 7)):
        assert bytes(tm.computeScoreLeaf(trainer, score, weight)) == score_leaf(trainer, score, weight)
    # known-answer check of the leaf encoding (independent of the helpers above)
    manual = keccak(keccak(bytes(12) + bytes.fromhex(trainer[2:]) + (42).to_bytes(32, "big")
                           + (9).to_bytes(32, "big")))
    assert bytes(tm.computeScoreLeaf(trainer, 42, 9)) == manual


def test_views_reject_unknown_tasks(fed):
    tm, t = fed.tm, fed.trainers[0].address
    for task_id in (0, 1):
        view_reverts_with(tm, "getTask", task_id, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "getRound", task_id, 1, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "getTrainerEntry", task_id, 1, t, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "roundTrainerBond", task_id, 1, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "phaseView", task_id, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "committeeTerms", task_id, 1, name="UnknownTask", taskId=task_id)
        view_reverts_with(tm, "trainerBond", task_id, name="UnknownTask", taskId=task_id)
    fed.create_task()
    assert fed.tm.getTask(1).currentRound == 1
    view_reverts_with(tm, "getTask", 2, name="UnknownTask", taskId=2)


def test_mutators_reject_unknown_tasks(fed):
    tm, committee, vault, t, agg = fed.tm, fed.committee, fed.vault, fed.trainers[0], fed.aggregators[0]
    with reverts_with("UnknownTask", taskId=3):
        tm.commitUpdate(3, 1, keccak(text="c"), sender=t)
    with reverts_with("UnknownTask", taskId=3):
        tm.revealUpdate(3, "cid", ZERO32, 1, ZERO32, sender=t)
    with reverts_with("UnknownTask", taskId=3):
        committee.commitAggregate(3, keccak(text="c"), sender=agg)
    with reverts_with("UnknownTask", taskId=3):
        committee.revealAggregate(3, Result("c", ZERO32, ZERO32, 0, 0, 0).as_tuple(), ZERO32, sender=agg)
    with reverts_with("UnknownTask", taskId=3):
        committee.draw(3, 1, sender=agg)
    with reverts_with("UnknownTask", taskId=3):
        tm.advance(3, sender=t)
    with reverts_with("RoundNotFinalized"):  # the vault reads the round through TaskManager.claimView
        vault.claimReward(3, 1, 1, 1, [], sender=t)
    with reverts_with("UnknownTask", taskId=3):
        tm.slashNonRevealingTrainer(3, 1, t, sender=t)
    with reverts_with("UnknownTask", taskId=3):
        committee.slashAggregator(3, 1, agg, sender=t)
    with reverts_with("UnknownTask", taskId=3):
        tm.releaseBond(3, 1, t, sender=t)
    with reverts_with("UnknownTask", taskId=3):
        vault.reclaimUnallocated(3, sender=t)


def test_every_protocol_parameter_is_bounded_in_the_contract(fed):
    """Issue 15: parameters that could break the protocol are refused by the contract itself."""
    tm, admin = fed.tm, fed.admin
    for bad in (0, 59, 30 * 24 * HOUR + 1, 2**64 - 1):
        with reverts_with("InvalidSettlementWindow", window=bad):
            tm.setSettlementWindow(bad, sender=admin)
    receipt = tm.setSettlementWindow(HOUR, sender=admin)
    assert_event(receipt, tm.SettlementWindowChanged, oldWindow=24 * HOUR, newWindow=HOUR)
    with reverts_with("InvalidDurationBounds", min=1, max=365 * 24 * HOUR + 1):
        tm.setPhaseDurationBounds(1, 365 * 24 * HOUR + 1, sender=admin)
    with reverts_with("AccessControlUnauthorizedAccount"):
        tm.setSettlementWindow(HOUR, sender=fed.outsider)


def test_the_contracts_are_connected_once(fed):
    with reverts_with("AlreadyConnected"):
        fed.tm.connect(fed.vault, fed.committee, sender=fed.admin)
    with reverts_with("AlreadyConnected"):
        fed.committee.connect(fed.tm, fed.vault, sender=fed.admin)
    with reverts_with("AlreadyConnected"):
        fed.vault.connect(fed.tm, sender=fed.admin)
    with reverts_with("NotTaskManager"):
        fed.vault.openTask(1, sender=fed.outsider)
    with reverts_with("NotVault"):
        fed.tm.markClaimed(1, 1, fed.outsider, 0, sender=fed.outsider)
    with reverts_with("NotVault"):
        fed.committee.markClaimed(1, 1, fed.outsider, sender=fed.outsider)

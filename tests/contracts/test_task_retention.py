"""TaskRetention: sponsors set their task's retention policy, PARAMETER_ROLE sets the default, within bounds."""

import pytest

from tests.support.contracts import assert_event, deploy_reverts_with, reverts_with

KEEP_ALL = 2**32 - 1
DEFAULT = (KEEP_ALL, KEEP_ALL, False, True)


@pytest.fixture(scope="module")
def retention(project, fed, admin):
    return admin.deploy(project.TaskRetention, fed.tm, admin, DEFAULT)


def policy_of(retention, task_id):
    policy, custom = retention.retentionOf(task_id)
    return tuple(policy), custom


def test_constructor_sets_roles_and_default_and_emits(project, fed, admin, retention, outsider):
    assert retention.tasks() == fed.tm.address
    assert retention.hasRole(retention.PARAMETER_ROLE(), admin)
    assert retention.hasRole(retention.DEFAULT_ADMIN_ROLE(), admin)
    assert not retention.hasRole(retention.PARAMETER_ROLE(), outsider)
    assert tuple(retention.defaultRetention()) == DEFAULT
    assert retention.KEEP_ALL() == KEEP_ALL and retention.MAX_ROUNDS() == 100_000
    receipt = retention.creation_metadata.receipt
    assert_event(receipt, retention.DefaultRetentionChanged, modelRounds=KEEP_ALL, updateRounds=KEEP_ALL,
                 keepRejected=False, keepValidation=True)


def test_constructor_rejects_zero_addresses_and_bad_defaults(project, fed, admin):
    zero = "0x" + "00" * 20
    deploy_reverts_with(project.TaskRetention, zero, admin, DEFAULT, sender=admin, name="ZeroAddress")
    deploy_reverts_with(project.TaskRetention, fed.tm, zero, DEFAULT, sender=admin, name="ZeroAddress")
    deploy_reverts_with(project.TaskRetention, fed.tm, admin, (0, 1, False, False), sender=admin,
                        name="InvalidRetention", modelRounds=0, updateRounds=1)


def test_tasks_follow_the_default_until_their_sponsor_sets_a_policy(fed, retention):
    task_id = fed.create_task()
    assert policy_of(retention, task_id) == (DEFAULT, False)
    receipt = retention.setTaskRetention(task_id, (1, 2, True, False), sender=fed.sponsor)
    assert_event(receipt, retention.TaskRetentionSet, taskId=task_id, sponsor=fed.sponsor, modelRounds=1,
                 updateRounds=2, keepRejected=True, keepValidation=False)
    assert policy_of(retention, task_id) == ((1, 2, True, False), True)
    other = fed.create_task()
    assert policy_of(retention, other) == (DEFAULT, False)  # one task's policy is not another's


def test_only_the_sponsor_sets_or_clears_a_task_policy(fed, retention):
    task_id = fed.create_task()
    for caller in (fed.outsider, fed.admin, fed.trainers[0]):
        with reverts_with("NotSponsor", taskId=task_id, caller=caller.address):
            retention.setTaskRetention(task_id, (1, 0, False, False), sender=caller)
    retention.setTaskRetention(task_id, (3, 0, False, False), sender=fed.sponsor)
    with reverts_with("NotSponsor", taskId=task_id, caller=fed.outsider.address):
        retention.clearTaskRetention(task_id, sender=fed.outsider)
    assert policy_of(retention, task_id) == ((3, 0, False, False), True)


def test_unknown_task_is_refused(fed, retention):
    with reverts_with("UnknownTask", taskId=999):
        retention.setTaskRetention(999, (1, 0, False, False), sender=fed.sponsor)


@pytest.mark.parametrize("policy", [(0, 0, False, False), (100_001, 0, False, False), (1, 100_001, False, False),
                                    (KEEP_ALL - 1, 0, False, False), (1, KEEP_ALL - 1, True, True)])
def test_out_of_bounds_counts_are_refused(fed, retention, policy):
    task_id = fed.create_task()
    with reverts_with("InvalidRetention", modelRounds=policy[0], updateRounds=policy[1]):
        retention.setTaskRetention(task_id, policy, sender=fed.sponsor)
    with reverts_with("InvalidRetention"):
        retention.setDefaultRetention(policy, sender=fed.admin)


@pytest.mark.parametrize("policy", [(1, 0, False, False), (100_000, 100_000, True, True),
                                    (KEEP_ALL, 0, False, True), (2, KEEP_ALL, True, False)])
def test_bounds_inclusive(fed, retention, policy):
    task_id = fed.create_task()
    retention.setTaskRetention(task_id, policy, sender=fed.sponsor)
    assert policy_of(retention, task_id) == (policy, True)


def test_clear_returns_the_task_to_the_default(fed, retention):
    task_id = fed.create_task()
    with reverts_with("NoTaskRetention", taskId=task_id):
        retention.clearTaskRetention(task_id, sender=fed.sponsor)
    retention.setTaskRetention(task_id, (1, 0, False, False), sender=fed.sponsor)
    receipt = retention.clearTaskRetention(task_id, sender=fed.sponsor)
    assert_event(receipt, retention.TaskRetentionCleared, taskId=task_id, sponsor=fed.sponsor)
    assert policy_of(retention, task_id) == (DEFAULT, False)


def test_default_changes_apply_to_tasks_without_their_own_policy(fed, retention):
    plain, own = fed.create_task(), fed.create_task()
    retention.setTaskRetention(own, (5, 5, False, True), sender=fed.sponsor)
    receipt = retention.setDefaultRetention((2, 1, True, False), sender=fed.admin)
    assert_event(receipt, retention.DefaultRetentionChanged, modelRounds=2, updateRounds=1, keepRejected=True,
                 keepValidation=False)
    assert policy_of(retention, plain) == ((2, 1, True, False), False)
    assert policy_of(retention, own) == ((5, 5, False, True), True)


def test_only_parameter_role_sets_the_default(fed, retention):
    for caller in (fed.sponsor, fed.outsider):
        with reverts_with("AccessControlUnauthorizedAccount", account=caller.address):
            retention.setDefaultRetention((1, 0, False, False), sender=caller)
    assert tuple(retention.defaultRetention()) == DEFAULT


def test_sponsor_may_change_the_policy_of_a_completed_task(fed, retention):
    task_id = fed.create_task(numRounds=1)
    fed.full_round(task_id, {t: 100 for t in fed.trainers[:2]}, {t: 1 for t in fed.trainers[:2]})
    assert fed.tm.getTask(task_id).status == 2  # Completed
    retention.setTaskRetention(task_id, (1, 0, False, False), sender=fed.sponsor)
    assert policy_of(retention, task_id) == ((1, 0, False, False), True)

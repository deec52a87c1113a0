"""TaskRetention in a governed deployment: only the timelock sets the default; sponsors still set their task's."""

from __future__ import annotations

import pytest

from fedchain.ape import governance as gov
from fedchain.ape.chain import explain_revert
from fedchain.ape.deploy import privileged_holders
from fedchain.retention import (
    RetentionPolicy,
    default_retention,
    default_retention_action,
    set_default_retention,
    set_task_retention,
    task_retention,
)
from tests.support.governance import create_task, pass_proposal


def test_the_timelock_alone_holds_the_retention_roles(dao):
    fed = dao.fed
    assert fed.retention is not None and fed.retention.tasks() == fed.tasks.address
    held = privileged_holders(fed, fed.timelock.address)
    assert {"TaskRetention.DEFAULT_ADMIN_ROLE", "TaskRetention.PARAMETER_ROLE"} <= set(held)
    assert privileged_holders(fed, dao.deployer.address) == []
    for account in (dao.deployer, dao.alice, dao.sponsor, dao.outsider):
        with pytest.raises(Exception) as info:  # noqa: PT011 - the custom error is checked below
            set_default_retention(fed, RetentionPolicy.minimal(), account)
        assert "AccessControlUnauthorizedAccount" in explain_revert(info.value)


def test_a_proposal_changes_the_default_and_sponsors_keep_their_own(dao):
    fed = dao.fed
    before = default_retention(fed)
    assert before == RetentionPolicy()  # the deploy-time default keeps everything but rejected updates
    plain, own = create_task(dao), create_task(dao)
    mine = RetentionPolicy(model_rounds=3, update_rounds=1)
    set_task_retention(fed, own, mine, dao.sponsor)
    new_default = RetentionPolicy(model_rounds=1, update_rounds=0, keep_rejected=False, keep_validation=True)
    action = default_retention_action(fed, new_default)
    assert "last 1 global model" in action.summary
    pid = pass_proposal(dao, [action], "Keep only the current model by default")
    assert default_retention(fed) == new_default
    assert task_retention(fed, plain) == (new_default, False)
    assert task_retention(fed, own) == (mine, True)
    assert gov.proposal_status(fed, pid)["state"] == gov.ProposalState.EXECUTED

"""Deploy the fedchain contracts and record their addresses for the connected network."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ape import chain

from fedchain.chain import Deployment, Fedchain, contracts_project, network_key

DEFAULT_UNBONDING_DELAY = 7 * 24 * 3600
LOCAL_UNBONDING_DELAY = 3600
DEFAULT_REJECTION_SLASH_BPS = 500  # RejectionSlasher: 5% of stake per rejected update (the DAO may change it)


def deploy_protocol(
    deployer: Any,
    *,
    admin: str | None = None,
    treasury: str | None = None,
    unbonding_delay: int = DEFAULT_UNBONDING_DELAY,
    aggregators: Iterable[str] = (),
    save: bool = True,
) -> Fedchain:
    """Deploy FedToken, Staking and TaskManager, wire their roles, and record the addresses."""
    project = contracts_project()
    admin = admin or deployer.address
    treasury = treasury or admin
    start_block = chain.blocks.height + 1
    token = project.FedToken.deploy(admin, admin, sender=deployer)
    staking = project.Staking.deploy(token.address, treasury, unbonding_delay, deployer.address, sender=deployer)
    tasks = project.TaskManager.deploy(token.address, staking.address, deployer.address, sender=deployer)
    staking.grantRole(staking.SLASHER_ROLE(), tasks.address, sender=deployer)
    rejection = project.RejectionSlasher.deploy(tasks.address, staking.address, deployer.address,
                                                DEFAULT_REJECTION_SLASH_BPS, sender=deployer)
    staking.grantRole(staking.SLASHER_ROLE(), rejection.address, sender=deployer)
    for aggregator in aggregators:
        tasks.grantRole(tasks.AGGREGATOR_ROLE(), aggregator, sender=deployer)
    if admin != deployer.address:
        for contract in (staking, tasks, rejection):
            contract.grantRole(contract.DEFAULT_ADMIN_ROLE(), admin, sender=deployer)
            contract.grantRole(contract.PARAMETER_ROLE(), admin, sender=deployer)
            contract.renounceRole(contract.PARAMETER_ROLE(), deployer.address, sender=deployer)
            contract.renounceRole(contract.DEFAULT_ADMIN_ROLE(), deployer.address, sender=deployer)
    deployment = Deployment(
        network=network_key(),
        chain_id=chain.chain_id,
        token=token.address,
        staking=staking.address,
        tasks=tasks.address,
        block=start_block,
        deployer=deployer.address,
        rejection_slasher=rejection.address,
    )
    if save:
        deployment.save()
    return Fedchain(deployment)

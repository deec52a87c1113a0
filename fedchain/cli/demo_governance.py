"""`fedchain demo --governance`: the DAO owns the demo's protocol, and one parameter changes by proposal.

After the usual setup the deployer hands every role and the treasury to a Governor + Timelock (local, short
periods) and keeps nothing. After the rounds, the sponsor proposes raising the trainer stake floor, the sponsor
and trainers vote, the chain time-travels through the voting period and the timelock delay, the proposal is
queued and executed, and a trainer with the old stake is refused when it tries to join the next task.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ape import chain
from rich.console import Console
from rich.table import Table

from fedchain.ape import governance as gov
from fedchain.ape.chain import Fedchain
from fedchain.ape.deploy import GovernanceConfig, deploy_governance, privileged_holders
from fedchain.protocol import ONE_TOKEN, to_tokens
from fedchain.reverts import RevertDecoder
from fedchain.store import ContentStore
from fedchain.web3chain import load_abis
from sponsor.tasks import create_task

DEMO_FLOOR_TOKENS = 200  # the new minTrainerStake floor the demo proposal sets (trainers stake 100)


def hand_to_dao(fed: Fedchain, people: Any, strategies: tuple[str, ...]) -> Fedchain:
    """Deploy the DAO, hand everything to its timelock, and have the sponsor and trainers delegate to themselves."""
    config = replace(GovernanceConfig.local(), strategies=tuple(strategies))
    fed = deploy_governance(fed, people.deployer, config, guardian=people.treasury.address)
    for voter in [people.sponsor, *people.trainers]:
        gov.delegate(fed, voter)
    return fed


def describe_dao(fed: Fedchain, people: Any) -> str:
    left = privileged_holders(fed, people.deployer.address)
    return (f"DAO: governor {fed.governor.address}, timelock (treasury) {fed.timelock.address}; "
            f"the deployer holds {', '.join(left) if left else 'no role'}")


def _travel_to(timestamp: int) -> None:
    chain.mine(timestamp=max(int(timestamp), int(chain.blocks.head.timestamp) + 1))


def change_by_proposal(fed: Fedchain, people: Any, task_id: int, console: Console, store: ContentStore) -> dict:
    """One parameter change through the full lifecycle, then the new floor visibly enforced."""
    before = int(fed.policy.minTrainerStake())
    actions = gov.parameter_actions(fed, {"minTrainerStake": str(DEMO_FLOOR_TOKENS)})
    steps: list[tuple[str, str]] = []
    pid = gov.propose(fed, people.sponsor, actions, f"Raise the trainer stake floor to {DEMO_FLOOR_TOKENS} FED")
    status = gov.proposal_status(fed, pid)
    steps.append(("propose", f"by the sponsor: {actions[0].summary}"))
    _travel_to(status["snapshot"] + 1)
    voters = [people.sponsor, *people.trainers]
    for i, voter in enumerate(voters):
        gov.vote(fed, voter, pid, "against" if i == len(voters) - 1 and len(voters) > 2 else "for")
    status = gov.proposal_status(fed, pid)
    steps.append(("vote", f"for {to_tokens(status['for']):,.0f} · against {to_tokens(status['against']):,.0f} · "
                          f"quorum {to_tokens(status['quorum']):,.0f} FED"))
    _travel_to(status["deadline"] + 1)
    gov.queue(fed, people.deployer, pid)
    status = gov.proposal_status(fed, pid)
    steps.append(("queue", f"timelock ETA {gov.human_time(status['eta'], status['now'])}"))
    _travel_to(status["eta"])
    gov.execute(fed, people.deployer, pid)
    after = int(fed.policy.minTrainerStake())
    steps.append(("execute", f"minTrainerStake {to_tokens(before):g} -> {to_tokens(after):g} FED"))

    refused = _join_next_task(fed, people, task_id, store)
    steps.append(("in effect", refused))
    table = Table(title="Governance: one parameter change by proposal", title_justify="left")
    table.add_column("step")
    table.add_column("result")
    for step, text in steps:
        table.add_row(step, text)
    console.print(table)
    return {"governor": fed.governor.address, "timelock": fed.timelock.address, "proposal_id": str(pid),
            "parameter": "minTrainerStake", "before": to_tokens(before), "after": to_tokens(after),
            "state": gov.proposal_status(fed, pid)["state"].label, "next_task_commit": refused,
            "deployer_roles": privileged_holders(fed, people.deployer.address),
            "treasury_balance": to_tokens(fed.token.balanceOf(fed.timelock.address))}


def _join_next_task(fed: Fedchain, people: Any, task_id: int, store: ContentStore) -> str:
    """A new task like the demo's; a trainer with 100 FED staked tries to commit and is refused."""
    spec = replace(fed.task(task_id).spec, reward_budget=10 * ONE_TOKEN, num_rounds=1, min_trainers=1,
                   max_trainers=1, commit_duration=60, reveal_duration=60, aggregator_commit_duration=60,
                   aggregator_reveal_duration=60)
    new_task = create_task(fed, people.sponsor, spec, store)
    trainer = people.trainers[0]
    staked = to_tokens(fed.staking.stakeOf(trainer.address))
    reverted = dry_run_revert(fed.tasks, "commitUpdate", (new_task, 1, b"\x01" * 32), trainer.address)
    if reverted:
        return f"trainer 1 ({staked:g} FED staked) refused in task {new_task}: {reverted}"
    return f"trainer 1 ({staked:g} FED staked) could still join task {new_task}"


def dry_run_revert(contract: Any, method: str, args: tuple, sender: str) -> str | None:
    """The custom error ``method(*args)`` from ``sender`` reverts with, decoded ('Name(arg=value, ...)'), or None.

    An eth_call, not a transaction: nothing is mined and ape prints no call trace.
    """
    from ape import networks
    from web3.exceptions import ContractCustomError, ContractLogicError

    data = getattr(contract, method).encode_input(*args)
    try:
        networks.provider.web3.eth.call({"from": sender, "to": contract.address, "data": "0x" + bytes(data).hex()})
        return None
    except (ContractCustomError, ContractLogicError) as exc:
        raw = bytes.fromhex(str(exc.data or "").removeprefix("0x"))
    return RevertDecoder(load_abis(), prefer=("TaskManager",)).signature(raw)

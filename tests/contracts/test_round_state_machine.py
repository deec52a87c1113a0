"""Stateful property test of the TaskManager round state machine (docs/PROTOCOL.md) on ape's anvil chain.

A Python model of the protocol predicts the outcome of every transaction the rules send (success, or the exact
custom error and its arguments); after every step the chain must equal the model, tokens are conserved,
(round, phase) moves at most one legal step, and budgets and stakes add up. Contracts are deployed once with ape;
each example runs between ``chain.snapshot()`` and ``chain.restore()``. Transactions go to ape's anvil as raw
JSON-RPC (ape's own path costs ~0.3 s a call, this ~10 ms) and every block is mined exactly one second after the
previous one, so the model knows each transaction's ``block.timestamp``.
The JSON-RPC harness, enum values and model records live in ``round_machine_lib.py``.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from eth_utils import keccak
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fedchain.commitments import AggregateResult, ScoreTree, aggregator_commitment, result_key, trainer_commitment
from tests.support.round_machine import (
    A_COMMITTED,
    A_REVEALED,
    A_SLASHED,
    AC,
    ACTIVE,
    AGG_BPS,
    AGG_STAKE,
    AR,
    COMPLETED,
    FAIL,
    FED,
    FIN,
    MIN_A_STAKE,
    MIN_T_STAKE,
    REACHED,
    ROUND_FIELDS,
    T_CLAIMED,
    T_COMMITTED,
    T_REVEALED,
    T_SLASHED,
    TASK,
    TC,
    TR,
    TRAINER_BPS,
    TRAINER_STAKE,
    UNBONDING,
    Entry,
    Env,
    Err,
    Iface,
    RoundModel,
    first,
    legal_step,
    update_of,
)

CONFIGS = st.fixed_dictionaries({
    "rounds": st.integers(1, 3),
    "min_trainers": st.integers(1, 2),
    "extra_trainers": st.integers(0, 1),  # maxTrainers = min + extra, at most 3 of the 4 trainers
    "committee": st.sampled_from([(1, 1), (2, 2), (2, 3)]),  # (aggregatorQuorum, maxAggregators)
    "durations": st.tuples(*[st.sampled_from([300, 3600])] * 4),
    "budget": st.integers(10**6, 10**24),
    "seed": st.integers(0, 2**32),
    "chaos": st.booleans(),  # False: participants act only in their phase, time stops short of deadlines
})


def when(pred: Any) -> Any:
    """Without chaos, a rule runs only where ``pred`` holds (so examples get further into the protocol)."""
    return precondition(lambda self: self.cfg["chaos"] or pred(self))


class RoundMachine(RuleBasedStateMachine):
    """One task per example; the model predicts every outcome and the invariant compares it with the chain."""

    def __init__(self, env: Env, balances: dict[str, int]) -> None:
        super().__init__()
        self.env, self.balances, self.supply = env, dict(balances), sum(balances.values())
        self.snapshot = env.chain.snapshot()
        self.now = int(env.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        self.stake = {a: TRAINER_STAKE for a in env.trainers} | {a: AGG_STAKE for a in env.aggregators}
        self.unbonding = {a: [0, 0] for a in self.stake}  # [amount, releaseTime]
        self.locked = {a: 0 for a in self.stake}  # Staking.lockedUntil: round end + unbonding delay
        self.cfg: dict = {}
        self.rounds: dict[int, RoundModel] = {}
        self.round = self.status = self.remaining = 0
        self.seen: list[tuple[int, int, int]] = []

    def teardown(self) -> None:
        """Unless a step failed, settle: play every remaining phase (the task must end Completed at its last
        round), let every trainer claim and slash whoever is slashable in every round, reclaim, withdraw."""
        try:
            if self.cfg and sys.exc_info()[0] is None:
                seed = self.cfg["seed"]
                self.play(4 * self.cfg["rounds"], absent=int(seed % 7 == 3), cheat=seed % 3 == 1)
                assert self.status == COMPLETED
                for rnd in range(1, self.cfg["rounds"] + 1):
                    for i in range(4):
                        self.claim(i, rnd, False)
                        self.slash_trainer(i, rnd)
                        self.slash_aggregator(i % 3, rnd)
                self.reclaim(True)
                self.warp_to(max(*(u[1] for u in self.unbonding.values()), *self.locked.values()) - 1)
                for i in range(7):
                    self.withdraw(i)
                self.check_chain()
                REACHED["completed"] += 1
        finally:
            self.env.chain.restore(self.snapshot)

    # ------------------------------------------------------------------ model helpers

    @property
    def cur(self) -> RoundModel:
        return self.rounds[self.round]

    def tx(self, sender: str, contract: Iface, fn: str, *args: Any, expect: Err) -> bool:
        """Send; check the block time and the predicted outcome. True when it succeeded."""
        ts, err = self.env.send(sender, contract, fn, *args)
        assert ts == self.now + 1, f"block time {ts}, model expected {self.now + 1}"
        self.now = ts
        assert err == expect, f"{fn}{args}: chain {err}, model {expect}"
        REACHED[fn, err[0] if err else "ok"] += 1
        return err is None

    def open_error(self, r: RoundModel, phase: int) -> Err:
        return first((r.phase != phase, ("WrongPhase", phase, r.phase)),
                     (self.now + 1 > r.deadline, ("PhaseClosed", r.deadline)))

    def warp_to(self, head: int) -> None:
        """Mine an empty block at ``head``; the next transaction runs at ``head + 1``."""
        if head > self.now:
            self.env.chain.pending_timestamp = head
            self.env.chain.mine()
            self.now = head

    def result_for(self, honest: bool) -> tuple[AggregateResult, ScoreTree]:
        """The honest aggregate of this round's revealed updates, or the dissent every cheat shares: maximal
        scores over half the true weight, so paying every claim would overdraw the round."""
        samples = {a: t.samples for a, t in self.cur.trainers.items() if t.status == T_REVEALED}
        if honest:
            h = {a: int.from_bytes(keccak(text=f"{self.cfg['seed']}:{self.round}:{a}")) for a in samples}
            scores = {a: 0 if v % 4 == 0 else v % 1_000_001 for a, v in h.items()}
            weight = sum(scores[a] * n for a, n in samples.items())
        else:
            scores = dict.fromkeys(samples, 1_000_000)
            weight = max(1, sum(1_000_000 * n for n in samples.values()) // 2)
        tree, tag, ok = ScoreTree(scores), "honest" if honest else "dissent", sum(1 for s in scores.values() if s)
        cid, digest = f"bafkrei{tag}r{self.round}", keccak(text=f"{tag}{self.round}")
        return AggregateResult(cid, digest, tree.root, weight, ok, len(scores) - ok, 912_345, 301_234), tree

    def slash_model(self, who: str, bps: int) -> None:
        active, unbonding = self.stake[who], self.unbonding[who]
        amount = (active + unbonding[0]) * bps // 10_000
        self.stake[who] -= min(amount, active)
        unbonding[0] -= amount - min(amount, active)
        unbonding[1] = unbonding[1] if unbonding[0] else 0
        self.balances[self.env.staking.address] -= amount
        self.balances[self.env.treasury] += amount

    def latest(self, pred: Any) -> int:
        """The latest round where ``pred`` holds, else the current one (what a round argument of 0 means)."""
        return max((i for i, r in self.rounds.items() if pred(r)), default=self.round)

    def phase_complete(self) -> bool:
        r, c = self.cur, self.cfg
        return {TC: len(r.trainers) >= c["max_trainers"], TR: r.revealed == len(r.trainers),
                AC: len(r.aggs) >= c["committee"][1], AR: r.agg_revealed == len(r.aggs)}[r.phase]

    def next_round(self) -> None:
        if self.round >= self.cfg["rounds"]:
            self.status = COMPLETED
        else:
            self.round += 1
            self.rounds[self.round] = RoundModel(TC, self.now + self.cfg["durations"][0])

    def advance_by(self, who: str) -> None:
        r, c = self.cur, self.cfg
        expect = first((self.status != ACTIVE, ("TaskNotActive", TASK)),
                       (self.now + 1 <= r.deadline and not self.phase_complete(), ("PhaseNotOver", r.deadline)))
        if not self.tx(who, self.env.tm, "advance", TASK, expect=expect):
            return
        reason = {TC: "TooFewTrainers" if len(r.trainers) < c["min_trainers"] else "",
                  TR: "TooFewTrainers" if r.revealed < c["min_trainers"] else "",
                  AC: "NoQuorum" if len(r.aggs) < c["committee"][0] else "",
                  AR: "NoQuorum" if r.accepted is None else ""}[r.phase]
        if reason:
            r.failed_phase, r.phase, r.deadline, r.reason = r.phase, FAIL, 0, reason.encode().ljust(32, b"\0")
            self.next_round()
        elif r.phase == AR:
            assert r.accepted is not None
            if r.accepted.result.total_weight > 0:
                r.budget = self.remaining // (c["rounds"] - self.round + 1)
                self.remaining -= r.budget
            r.phase, r.deadline = FIN, 0
            REACHED["finalized"] += 1
            self.next_round()
        else:
            r.phase += 1
            r.deadline = self.now + c["durations"][r.phase - 1]

    # ------------------------------------------------------------------ rules (each predicts, sends, updates)

    @initialize(cfg=CONFIGS)
    def create_task(self, cfg: dict) -> None:
        self.cfg = cfg | {"max_trainers": cfg["min_trainers"] + cfg["extra_trainers"]}
        (quorum, max_aggs), digest = cfg["committee"], hashlib.sha256(b"initial").digest()
        params = ("mlp:64-32-10", "bafkreiinitial", digest, "bafkreivalidation", digest, cfg["budget"], cfg["rounds"],
                  cfg["min_trainers"], self.cfg["max_trainers"], quorum, max_aggs, *cfg["durations"], MIN_T_STAKE,
                  MIN_A_STAKE, "fedavg", b"", 8_000, 10**13)
        assert self.tx(self.env.sponsor, self.env.tm, "createTask", params, expect=None)
        self.balances[self.env.sponsor] -= cfg["budget"]
        self.balances[self.env.tm.address] += cfg["budget"]
        self.remaining, self.status = cfg["budget"], ACTIVE
        self.next_round()

    @rule(phases=st.integers(1, 4), absent=st.sampled_from([0, 0, 1, 2, 3]), cheat=st.booleans())
    def play(self, phases: int, absent: int, cheat: bool) -> None:
        """For ``phases`` phases: all whom the phase asks for but ``absent`` act (on ``cheat`` a quorum of
        aggregators reports the dissent), then the phase ends; the chain is checked after each phase."""
        quorum = self.cfg["committee"][0]
        act = {TC: lambda i, n: self.trainer_commit(i, True, 10 + n), TR: lambda i, n: self.trainer_reveal(i, True),
               AC: lambda i, n: self.aggregator_commit(i, not cheat or n >= quorum),
               AR: lambda i, n: self.aggregator_reveal(i, True)}
        for _ in range(phases):
            if self.status != ACTIVE:
                return
            r = self.cur
            pool, entries = (self.env.trainers, r.trainers) if r.phase <= TR else (self.env.aggregators, r.aggs)
            # TC and AC want those who have not committed, TR and AR those who committed and have not revealed
            acting = [i for i, w in enumerate(pool) if (entries[w].status if w in entries else 0) == (r.phase - 1) % 2]
            for n, i in enumerate(acting[: max(0, len(acting) - absent)]):
                act[r.phase](i, n)
            if not self.phase_complete():
                self.warp_to(r.deadline)
            self.advance_by(self.env.outsider)
            self.check_chain()

    @when(lambda self: self.cur.phase == TC)
    @rule(t=st.integers(0, 3), honest=st.booleans(), samples=st.integers(1, 1000))
    def trainer_commit(self, t: int, honest: bool, samples: int) -> None:
        who, r = self.env.trainers[t], self.cur
        _, digest, salt = update_of(who, self.round)
        commitment = trainer_commitment(who, TASK, self.round, digest, samples, salt) if honest else keccak(text=who)
        expect = self.open_error(r, TC) or first(
            (who in r.trainers, ("AlreadyCommitted",)),
            (len(r.trainers) >= self.cfg["max_trainers"], ("TrainerLimitReached",)),
            (self.stake[who] < MIN_T_STAKE, ("InsufficientStake", self.stake[who], MIN_T_STAKE)))
        if self.tx(who, self.env.tm, "commitUpdate", TASK, commitment, expect=expect):
            r.trainers[who] = Entry(T_COMMITTED, samples, honest)
            self.lock(who, r.deadline + sum(self.cfg["durations"][1:]))

    @when(lambda self: self.cur.phase == TR)
    @rule(t=st.integers(0, 3), right_salt=st.booleans())
    def trainer_reveal(self, t: int, right_salt: bool) -> None:
        who, r = self.env.trainers[t], self.cur
        (cid, digest, salt), e = update_of(who, self.round), r.trainers.get(who)
        expect = self.open_error(r, TR) or first(
            (e is None, ("NotCommitted",)), (e and e.status != T_COMMITTED, ("AlreadyRevealed",)),
            (e and not (e.honest and right_salt), ("CommitmentMismatch",)))
        args = (cid, digest, e.samples if e else 1, salt if right_salt else b"\1" * 32)
        if self.tx(who, self.env.tm, "revealUpdate", TASK, *args, expect=expect):
            e.status, r.revealed = T_REVEALED, r.revealed + 1

    @when(lambda self: self.cur.phase == AC)
    @rule(a=st.integers(0, 3), honest=st.booleans())
    def aggregator_commit(self, a: int, honest: bool) -> None:
        """Aggregator 3 is the outsider, who lacks AGGREGATOR_ROLE."""
        who, r, (result, tree) = (*self.env.aggregators, self.env.outsider)[a], self.cur, self.result_for(honest)
        key, stake = result_key(result), self.stake.get(who, 0)
        role_error = ("AccessControlUnauthorizedAccount", who.lower(), keccak(text="AGGREGATOR_ROLE"))
        expect = first((a == 3, role_error)) or self.open_error(r, AC) or first(
            (who in r.aggs, ("AlreadyCommitted",)),
            (len(r.aggs) >= self.cfg["committee"][1], ("AggregatorLimitReached",)),
            (stake < MIN_A_STAKE, ("InsufficientStake", stake, MIN_A_STAKE)))
        commitment = aggregator_commitment(who, TASK, self.round, key, keccak(text=f"agg:{who}:{self.round}"))
        if self.tx(who, self.env.tm, "commitAggregate", TASK, commitment, expect=expect):
            r.aggs[who] = Entry(A_COMMITTED, result=result, tree=tree, key=key)
            self.lock(who, r.deadline + self.cfg["durations"][3])

    def lock(self, who: str, round_end: int) -> None:
        """A commit holds the stake back until the round's end (phases advanced at their deadlines) + delay."""
        self.locked[who] = max(self.locked[who], round_end + UNBONDING)

    @when(lambda self: self.cur.phase == AR)
    @rule(a=st.integers(0, 2), right_salt=st.booleans())
    def aggregator_reveal(self, a: int, right_salt: bool) -> None:
        who, r = self.env.aggregators[a], self.cur
        e = r.aggs.get(who)
        expect = self.open_error(r, AR) or first(
            (e is None, ("NotCommitted",)), (e and e.status != A_COMMITTED, ("AlreadyRevealed",)),
            (not right_salt, ("CommitmentMismatch",)))
        result = e.result if e else self.result_for(True)[0]
        salt = keccak(text=f"agg:{who}:{self.round}") if right_salt else b"\2" * 32
        if self.tx(who, self.env.tm, "revealAggregate", TASK, result.as_tuple(), salt, expect=expect):
            e.status, r.agg_revealed = A_REVEALED, r.agg_revealed + 1
            r.votes[e.key] += 1
            if r.votes[e.key] == self.cfg["committee"][0] and r.accepted is None:
                r.accepted = e

    @rule(to=st.sampled_from(["deadline", "unbonding", "small"]), offset=st.integers(-1, 1), small=st.integers(1, 200))
    def time_travel(self, to: str, offset: int, small: int) -> None:
        """Offset -1 runs the next transaction exactly at the deadline (still open), 0 one second after it."""
        releases = [max(u[1], self.locked[a]) for a, u in self.unbonding.items() if u[0]]
        head = self.now + small
        if to == "deadline" and self.cur.deadline:
            head = self.cur.deadline + offset
        elif to == "unbonding" and releases:
            head = min(releases) - 1 + offset
        if not self.cfg["chaos"] and self.cur.deadline:
            head = min(head, self.cur.deadline - 1)
        self.warp_to(head)

    @rule(caller=st.integers(0, 10))
    def advance(self, caller: int) -> None:
        self.advance_by(self.env.everyone[caller])

    @when(lambda self: any(r.phase == FIN for r in self.rounds.values()))
    @rule(t=st.integers(0, 3), rnd=st.integers(0, 3), tamper=st.booleans())
    def claim(self, t: int, rnd: int, tamper: bool) -> None:
        rnd = rnd or self.latest(lambda r: r.phase == FIN)
        who, r = self.env.trainers[t], self.rounds.get(rnd, RoundModel())
        rec, acc = r.trainers.get(who), r.accepted
        score = acc.tree.scores.get(who, 0) if acc else 0
        proof = acc.tree.proof(who) if acc and who in acc.tree.scores else []
        reward = r.budget * score * rec.samples // acc.result.total_weight if acc and rec and r.budget else 0
        expect = first(
            (r.phase != FIN, ("WrongPhase", FIN, r.phase)), (rec is None, ("NotCommitted",)),
            (rec and rec.status == T_CLAIMED, ("AlreadyClaimed",)),
            (rec and rec.status != T_REVEALED, ("NotRevealed",)),
            (r.budget == 0, ("NoRoundBudget",)), (tamper, ("InvalidProof",)),
            (reward > r.budget - r.paid, ("RoundOverpaid", r.budget - r.paid, reward)))
        if self.tx(who, self.env.tm, "claimReward", TASK, rnd, score + tamper, proof, expect=expect):
            rec.status, r.paid = T_CLAIMED, r.paid + reward
            self.balances[who] += reward
            self.balances[self.env.tm.address] -= reward

    @when(lambda self: any(r.phase >= AC for r in self.rounds.values()))
    @rule(t=st.integers(0, 3), rnd=st.integers(0, 3))
    def slash_trainer(self, t: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase >= AC)
        who, r = self.env.trainers[t], self.rounds.get(rnd, RoundModel())
        rec = r.trainers.get(who)
        expect = first(
            (r.phase < AC or (r.phase == FAIL and r.failed_phase == TC), ("SlashingNotOpen", r.phase)),
            (rec is None, ("NotCommitted",)), (rec and rec.status == T_SLASHED, ("AlreadySlashed",)),
            (rec and rec.status != T_COMMITTED, ("NotSlashable",)))
        if self.tx(self.env.outsider, self.env.tm, "slashNonRevealingTrainer", TASK, rnd, who, expect=expect):
            rec.status = T_SLASHED
            self.slash_model(who, TRAINER_BPS)

    @when(lambda self: any(r.phase >= FIN for r in self.rounds.values()))
    @rule(a=st.integers(0, 2), rnd=st.integers(0, 3))
    def slash_aggregator(self, a: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase >= FIN)
        who, r = self.env.aggregators[a], self.rounds.get(rnd, RoundModel())
        rec = r.aggs.get(who)
        agreed = rec and rec.status == A_REVEALED and (r.accepted is None or rec.key == r.accepted.key)
        expect = first(
            (not (r.phase == FIN or (r.phase == FAIL and r.failed_phase == AR)), ("SlashingNotOpen", r.phase)),
            (rec is None, ("NotCommitted",)), (rec and rec.status == A_SLASHED, ("AlreadySlashed",)),
            (agreed, ("NotSlashable",)))
        if self.tx(self.env.outsider, self.env.tm, "slashAggregator", TASK, rnd, who, expect=expect):
            rec.status = A_SLASHED
            self.slash_model(who, AGG_BPS)

    @rule(s=st.integers(0, 6), part=st.sampled_from([0, 4, 10, 1, -1]))
    def unstake(self, s: int, part: int) -> None:
        """Unstake nothing (0), a quarter, a tenth, everything (1) or one wei more than the stake (-1)."""
        who = (*self.env.trainers, *self.env.aggregators)[s]
        amount = self.stake[who] + 1 if part < 0 else self.stake[who] // part if part else 0
        expect = first((amount == 0, ("ZeroAmount",)),
                       (amount > self.stake[who], ("InsufficientStake", self.stake[who], amount)))
        if self.tx(who, self.env.staking, "requestUnstake", amount, expect=expect):
            self.stake[who] -= amount
            self.unbonding[who] = [self.unbonding[who][0] + amount, self.now + UNBONDING]

    @when(lambda self: any(u[0] for u in self.unbonding.values()))
    @rule(s=st.integers(0, 6))
    def withdraw(self, s: int) -> None:
        who = (*self.env.trainers, *self.env.aggregators)[s]
        amount, release = self.unbonding[who]
        expect = first((amount == 0, ("NothingToWithdraw",)), (self.now + 1 < release, ("StillUnbonding", release)),
                       (self.now + 1 < self.locked[who], ("StakeLocked", self.locked[who])))
        if self.tx(who, self.env.staking, "withdraw", expect=expect):
            self.unbonding[who] = [0, 0]
            self.balances[self.env.staking.address] -= amount
            self.balances[who] += amount

    @when(lambda self: self.status == COMPLETED)
    @rule(by_sponsor=st.booleans())
    def reclaim(self, by_sponsor: bool) -> None:
        who = self.env.sponsor if by_sponsor else self.env.outsider
        expect = first((not by_sponsor, ("NotSponsor",)), (self.status != COMPLETED, ("TaskNotCompleted", TASK)),
                       (self.remaining == 0, ("NothingToReclaim",)))
        if self.tx(who, self.env.tm, "reclaimUnallocated", TASK, expect=expect):
            self.balances[who] += self.remaining
            self.balances[self.env.tm.address] -= self.remaining
            self.remaining = 0

    # ------------------------------------------------------------------ invariant

    @invariant()
    def check_chain(self) -> None:
        """Conservation, legal phase steps and accounting, read in one batch and held against the model."""
        if not self.cfg:
            return
        env, holders, stakers, n = self.env, list(self.balances), list(self.stake), self.cfg["rounds"]
        out = env.read([(env.token, "totalSupply", ()), (env.tm, "getTask", (TASK,)),
                        (env.staking, "totalStaked", ()), (env.staking, "totalUnbonding", ())]
                       + [(env.tm, "getRound", (TASK, i)) for i in range(1, n + 1)]
                       + [(env.token, "balanceOf", (h,)) for h in holders]
                       + [(env.staking, f, (s,)) for f in ("stakeOf", "unbondingOf", "lockedUntil") for s in stakers])
        (supply, task, total_staked, total_unbonding), rounds, out = out[:4], out[4 : 4 + n], out[4 + n :]
        balances = dict(zip(holders, out[: len(holders)], strict=True))
        k = len(stakers)
        stakes, unbonding, locked = (out[len(holders) + i * k : len(holders) + (i + 1) * k] for i in range(3))

        # 1. token conservation: nothing minted after setup, every token sits with an account we track
        assert supply == self.supply
        assert sum(balances.values()) == supply
        assert balances == self.balances

        # 2. the phase machine moves at most one legal step per rule, exactly as the model predicts
        now = (task["currentRound"], rounds[task["currentRound"] - 1]["phase"], task["status"])
        if self.seen:
            left = rounds[self.seen[-1][0] - 1]["phase"]
            assert legal_step(self.seen[-1], now, left, n), f"illegal step {self.seen[-1]} -> {now}"
        self.seen.append(now)
        assert now == (self.round, self.cur.phase, self.status)
        assert self.status != COMPLETED or (self.round == n and self.cur.phase in (FIN, FAIL))
        for i, got in enumerate(rounds, start=1):
            m = self.rounds.get(i, RoundModel())
            want = (m.phase, m.deadline, len(m.trainers), m.revealed, len(m.aggs), m.agg_revealed, m.budget, m.paid,
                    m.failed_phase, m.reason, m.accepted.key if m.accepted else bytes(32))
            assert tuple(got[k] for k in ROUND_FIELDS) == want, f"round {i}"

        # 3. accounting
        assert all(g["paid"] <= g["roundBudget"] for g in rounds if g["phase"] == FIN)
        assert task["remainingBudget"] == self.remaining
        owed = sum(g["roundBudget"] - g["paid"] for g in rounds if g["phase"] == FIN)
        assert balances[env.tm.address] >= task["remainingBudget"] + owed
        assert stakes == [self.stake[s] for s in stakers] and total_staked == sum(stakes)
        assert [list(u) for u in unbonding] == [self.unbonding[s] for s in stakers]
        assert list(locked) == [self.locked[s] for s in stakers]
        assert total_unbonding == sum(u[0] for u in unbonding)  # only tracked accounts ever stake
        assert balances[env.staking.address] == total_staked + total_unbonding


def test_legal_step_rejects_skips_and_repeats() -> None:
    """The phase-sequence check itself: every legal step passes, skips, repeats and jumps do not."""
    for step in [((1, TC, 1), (1, TR, 1), TR), ((1, AC, 1), (1, AR, 1), AR), ((1, AR, 1), (2, TC, 1), FIN),
                 ((1, TC, 1), (2, TC, 1), FAIL), ((1, TR, 1), (2, TC, 1), FAIL), ((2, AR, 1), (2, FIN, 2), FIN),
                 ((2, AC, 1), (2, FAIL, 2), FAIL), ((2, FIN, 2), (2, FIN, 2), FIN)]:
        assert legal_step(*step, num_rounds=2), step
    for step in [((1, TC, 1), (1, AC, 1), AC), ((1, TR, 1), (1, TC, 1), TC), ((1, AR, 1), (1, FIN, 1), FIN),
                 ((1, TC, 1), (2, TC, 1), FIN), ((1, AR, 1), (3, TC, 1), FIN), ((1, AR, 1), (2, TR, 1), FIN),
                 ((1, AR, 1), (1, FIN, 2), FIN), ((2, FIN, 2), (2, FAIL, 2), FAIL), ((2, TR, 1), (1, TC, 1), FAIL)]:
        assert not legal_step(*step, num_rounds=2), step


SETTINGS = settings(max_examples=25, stateful_step_count=40, deadline=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain" replays
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


def test_round_state_machine(accounts: Any, project: Any, chain: Any) -> None:
    """Deploy and fund once, then run the state machine; every example is rolled back to this point."""
    admin, treasury = accounts[0], accounts[1]
    token = admin.deploy(project.FedToken, admin, admin)
    staking = admin.deploy(project.Staking, token, treasury, UNBONDING, admin)
    tm = admin.deploy(project.TaskManager, token, staking, admin)
    env = Env(chain, [token, staking, tm], accounts)
    setup = [(env.admin, env.staking, "grantRole", (keccak(text="SLASHER_ROLE"), tm.address)),
             (env.admin, env.token, "mint", (env.sponsor, 10**7 * FED)),
             (env.sponsor, env.token, "approve", (tm.address, 2**256 - 1))]
    for who, amount in [(t, TRAINER_STAKE) for t in env.trainers] + [(a, AGG_STAKE) for a in env.aggregators]:
        setup += [(env.admin, env.token, "mint", (who, 2 * amount)),
                  (who, env.token, "approve", (staking.address, amount)), (who, env.staking, "stake", (amount,))]
    setup += [(env.admin, env.tm, "grantRole", (keccak(text="AGGREGATOR_ROLE"), a)) for a in env.aggregators]
    for sender, contract, fn, args in setup:
        assert env.send(sender, contract, fn, *args)[1] is None, fn
    holders = [*env.everyone, staking.address, tm.address]
    balances = dict(zip(holders, env.read([(env.token, "balanceOf", (h,)) for h in holders]), strict=True))

    REACHED.clear()
    env.rpc("anvil_setBlockTimestampInterval", 1)  # every block exactly one second after the previous one
    try:
        run_state_machine_as_test(lambda: RoundMachine(env, balances), settings=SETTINGS)
    finally:
        env.rpc("anvil_removeBlockTimestampInterval")
    print(sorted(REACHED.items(), key=str))
    for outcome in ["completed", "finalized", ("claimReward", "ok"), ("advance", "PhaseNotOver")]:
        assert REACHED[outcome] > 0, f"no example reached {outcome}"

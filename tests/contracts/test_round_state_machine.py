"""Stateful property test of the round state machine (docs/PROTOCOL.md) on ape's anvil chain: TaskManager, Staking,
AggregatorCommittee and RewardVault together.

A Python model of the protocol predicts the outcome of every transaction the rules send (success, or the exact
custom error and its arguments); after every step the chain must equal the model, tokens are conserved, (round,
phase) moves at most one legal step, and budgets, bonds and stakes add up: the vault holds exactly what it still
owes, every account's reserved stake is exactly the bonds of its open commitments, no claim or slash happens
twice, and at the end (every round settled and swept) nothing is left in the vault and no stake stays reserved.

Contracts are deployed once with ape; each example runs between ``chain.snapshot()`` and ``chain.restore()``.
Transactions go to ape's anvil as raw JSON-RPC (ape's own path costs ~0.3 s a call, this ~10 ms) and every block is
mined exactly one second after the previous one, so the model knows each transaction's ``block.timestamp``. The
JSON-RPC harness, enum values and model records live in ``tests/support/round_machine.py``.
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
    A_CLAIMED,
    A_COMMITTED,
    A_REVEALED,
    A_SLASHED,
    AC,
    ACTIVE,
    AGG_BPS,
    AGG_SHARE_BPS,
    AGG_STAKE,
    AR,
    CLAIM_WINDOW,
    COMPLETED,
    FAIL,
    FED,
    FEE_BPS,
    FIN,
    MIN_A_STAKE,
    MIN_T_STAKE,
    REACHED,
    ROUND_FIELDS,
    SETTLE,
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
    # (aggregatorQuorum, maxAggregators): a strict majority; (3, 5) has more seats than the 3 approved aggregators
    "committee": st.sampled_from([(1, 1), (2, 3), (3, 5)]),
    "durations": st.tuples(*[st.sampled_from([300, 3600])] * 4),
    "budget": st.integers(10**6, 10**24),
    "seed": st.integers(0, 2**32),
    "chaos": st.booleans(),  # False: participants act only in their phase, time stops short of deadlines
})


def n_seats_left(r: RoundModel, aggregators: list[str]) -> list[str]:
    """Approved aggregators the draw left out of the committee."""
    return [a for a in aggregators if r.drawn and a not in r.members]


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
        self.reserved = dict.fromkeys(self.stake, 0)
        self.unbonding = {a: [0, 0] for a in self.stake}  # [amount, releaseTime]
        self.cfg: dict = {}
        self.rounds: dict[int, RoundModel] = {}
        self.round = self.status = self.remaining = 0
        self.reclaimed = False
        self.seen: list[tuple[int, int, int]] = []

    def teardown(self) -> None:
        """Unless a step failed, settle everything: play every remaining phase (the task must end Completed at its
        last round); claim, slash and collect in every round; after the settlement window release every bond;
        after the claim window sweep every round; reclaim. Then nothing may be left: no token in the vault, no
        stake reserved."""
        try:
            if self.cfg and sys.exc_info()[0] is None:
                seed = self.cfg["seed"]
                self.play(4 * self.cfg["rounds"], absent=int(seed % 7 == 3), cheat=seed % 3 == 1)
                assert self.status == COMPLETED
                rounds = range(1, self.cfg["rounds"] + 1)
                for rnd in rounds:
                    for i in range(4):
                        self.claim(i, rnd, False)
                        self.slash_trainer(i, rnd)
                    for i in range(3):
                        self.claim_aggregator(i, rnd)
                        self.slash_aggregator(i, rnd)
                self.warp_to(max(r.settled_at for r in self.rounds.values()))
                for rnd in rounds:
                    for i in range(4):
                        self.release_trainer(i, rnd)
                    for i in range(3):
                        self.release_aggregator(i, rnd)
                self.warp_to(max(r.finalized_at for r in self.rounds.values()) + CLAIM_WINDOW)
                for rnd in rounds:
                    self.sweep(rnd)
                self.reclaim(True)
                self.check_chain()
                assert self.balances[self.env.vault.address] == 0, "tokens left in the vault"
                assert not any(self.reserved.values()), f"stake left reserved: {self.reserved}"
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

    def free(self, who: str) -> int:
        return self.stake.get(who, 0) - self.reserved.get(who, 0)

    def result_for(self, honest: bool) -> tuple[AggregateResult, ScoreTree]:
        """The honest aggregate of this round's revealed updates (attested weights: the sample counts, 0 when
        rejected), or the dissent every cheat shares: maximal scores over half the true weight, so paying every
        claim would overdraw the trainers' part."""
        samples = {a: t.samples for a, t in self.cur.trainers.items() if t.status == T_REVEALED}
        if honest:
            h = {a: int.from_bytes(keccak(text=f"{self.cfg['seed']}:{self.round}:{a}")) for a in samples}
            scores = {a: 0 if v % 4 == 0 else v % 1_000_001 for a, v in h.items()}
            weights = {a: n if scores[a] else 0 for a, n in samples.items()}
            weight = sum(scores[a] * weights[a] for a in samples)
        else:
            scores, weights = dict.fromkeys(samples, 1_000_000), dict(samples)
            weight = max(1, sum(1_000_000 * n for n in samples.values()) // 2)
        tree, tag, ok = ScoreTree(scores, weights), "honest" if honest else "dissent", sum(1 for s in scores.values()
                                                                                            if s)
        cid, digest = f"bafkrei{tag}r{self.round}", keccak(text=f"{tag}{self.round}")
        return AggregateResult(cid, digest, tree.root, weight, ok, len(scores) - ok, 912_345, 301_234), tree

    def settle_bond(self, who: str, e: Entry, bps: int) -> None:
        """Slash ``bps`` of an entry's bond (to the treasury) and release the rest."""
        amount = e.bond * bps // 10_000
        self.stake[who] -= amount
        self.reserved[who] -= e.bond
        e.bond = 0
        self.balances[self.env.staking.address] -= amount
        self.balances[self.env.treasury] += amount

    def release(self, who: str, e: Entry) -> None:
        self.reserved[who] -= e.bond
        e.bond = 0

    def pay(self, r: RoundModel, to: str, amount: int) -> None:
        """A vault payment, preceded by the round's protocol fee the first time the round pays out."""
        if not r.fee_collected:
            r.fee_collected = True
            self.balances[self.env.vault.address] -= r.split()[2]
            self.balances[self.env.treasury] += r.split()[2]
        self.balances[self.env.vault.address] -= amount
        self.balances[to] += amount

    def latest(self, pred: Any) -> int:
        """The latest round where ``pred`` holds, else the current one (what a round argument of 0 means)."""
        return max((i for i, r in self.rounds.items() if pred(r)), default=self.round)

    def phase_complete(self) -> bool:
        r, c = self.cur, self.cfg
        return {TC: len(r.trainers) >= c["max_trainers"], TR: r.revealed == len(r.trainers),
                AC: r.drawn and len(r.aggs) >= len(r.members), AR: r.agg_revealed == len(r.aggs)}[r.phase]

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
            r.finalized_at = r.settled_at = self.now
            self.next_round()
        elif r.phase == AR:
            assert r.accepted is not None
            if r.accepted.result.total_weight > 0:
                r.budget = self.remaining // (c["rounds"] - self.round + 1)
                self.remaining -= r.budget
            r.phase, r.deadline = FIN, 0
            r.finalized_at, r.settled_at = self.now, self.now + SETTLE
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
                  MIN_A_STAKE, "fedavg", b"", 8_000, 10**13, 0, 1 << 26)
        assert self.tx(self.env.sponsor, self.env.tm, "createTask", params, expect=None)
        self.balances[self.env.sponsor] -= cfg["budget"]
        self.balances[self.env.vault.address] += cfg["budget"]
        self.remaining, self.status = cfg["budget"], ACTIVE
        self.next_round()

    @rule(phases=st.integers(1, 4), absent=st.sampled_from([0, 0, 1, 2, 3]), cheat=st.booleans())
    def play(self, phases: int, absent: int, cheat: bool) -> None:
        """For ``phases`` phases: all whom the phase asks for but ``absent`` act (on ``cheat`` a quorum of
        the drawn committee reports the dissent), then the phase ends; the chain is checked after each phase."""
        quorum = self.cfg["committee"][0]
        act = {TC: lambda w, n: self.trainer_commit(self.env.trainers.index(w), True, 10 + n),
               TR: lambda w, n: self.trainer_reveal(self.env.trainers.index(w), True),
               AC: lambda w, n: self.aggregator_commit(self.env.aggregators.index(w), not cheat or n >= quorum),
               AR: lambda w, n: self.aggregator_reveal(self.env.aggregators.index(w), True)}
        for _ in range(phases):
            if self.status != ACTIVE:
                return
            r = self.cur
            if r.phase == AC and not r.drawn:
                self.draw()
            if r.phase <= TR:
                pool, entries = self.env.trainers, r.trainers
            else:
                pool, entries = r.members, r.aggs
            # TC and AC want those who have not committed, TR and AR those who committed and have not revealed
            acting = [w for w in pool if (entries[w].status if w in entries else 0) == (r.phase - 1) % 2]
            if r.phase == TC:
                acting = [w for w in acting if self.free(w) >= MIN_T_STAKE]
            for n, w in enumerate(acting[: max(0, len(acting) - absent)]):
                act[r.phase](w, n)
            if r.phase == AC and n_seats_left(r, self.env.aggregators):
                self.aggregator_commit(self.env.aggregators.index(n_seats_left(r, self.env.aggregators)[0]), True)
            elif r.phase == AC:
                self.aggregator_commit(3, True)  # the outsider is never drawn
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
            (self.free(who) < MIN_T_STAKE, ("InsufficientStake", self.free(who), MIN_T_STAKE)))
        if self.tx(who, self.env.tm, "commitUpdate", TASK, self.round, commitment, expect=expect):
            r.trainers[who] = Entry(T_COMMITTED, samples, honest, bond=MIN_T_STAKE)
            self.reserved[who] += MIN_T_STAKE

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

    @rule(caller=st.integers(0, 10))
    def draw(self, caller: int = 10) -> None:
        """Anyone draws the committee in the aggregator commit phase (a no-op once drawn); the seat count is
        predicted (the eligible: approved with free stake for the bond), the seats are read from the chain."""
        r = self.cur
        expect = None if r.drawn else first((r.phase != AC, ("WrongPhase", AC, r.phase)))
        eligible = [a for a in self.env.aggregators if self.free(a) >= MIN_A_STAKE]
        if self.tx(self.env.everyone[caller], self.env.committee, "draw", TASK, self.round, expect=expect) \
                and not r.drawn:
            members = [m.lower() for m in self.env.read([(self.env.committee, "membersOf", (TASK, self.round))])[0]]
            assert len(members) == min(self.cfg["committee"][1], len(eligible)) == len(set(members))
            assert set(members) <= {a.lower() for a in eligible}
            r.drawn, r.members = True, [a for a in self.env.aggregators if a.lower() in members]
            REACHED["drawn", len(members)] += 1

    @when(lambda self: self.cur.phase == AC)
    @rule(a=st.integers(0, 3), honest=st.booleans())
    def aggregator_commit(self, a: int, honest: bool) -> None:
        """Aggregator 3 is the outsider, who is not approved (never drawn)."""
        who, r = (*self.env.aggregators, self.env.outsider)[a], self.cur
        if r.phase == AC and not r.drawn and not self.open_error(r, AC):
            self.draw()
        result, tree = self.result_for(honest)
        key = result_key(result)
        expect = self.open_error(r, AC) or first(
            (who in r.aggs, ("AlreadyCommitted",)),
            (who not in r.members, ("NotInCommittee",)),
            (self.free(who) < MIN_A_STAKE, ("InsufficientStake", self.free(who), MIN_A_STAKE)))
        commitment = aggregator_commitment(who, TASK, self.round, key, keccak(text=f"agg:{who}:{self.round}"))
        if self.tx(who, self.env.committee, "commitAggregate", TASK, commitment, expect=expect):
            r.aggs[who] = Entry(A_COMMITTED, result=result, tree=tree, key=key, bond=MIN_A_STAKE)
            self.reserved[who] += MIN_A_STAKE

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
        if self.tx(who, self.env.committee, "revealAggregate", TASK, result.as_tuple(), salt, expect=expect):
            e.status, r.agg_revealed = A_REVEALED, r.agg_revealed + 1
            r.votes[e.key] += 1
            if r.votes[e.key] == self.cfg["committee"][0] and r.accepted is None:
                r.accepted = e

    @rule(to=st.sampled_from(["deadline", "unbonding", "settle", "window", "small"]), offset=st.integers(-1, 1),
          small=st.integers(1, 200))
    def time_travel(self, to: str, offset: int, small: int) -> None:
        """Offset -1 runs the next transaction exactly at the deadline (still open), 0 one second after it."""
        releases = [u[1] for u in self.unbonding.values() if u[0]]
        ended = [r for r in self.rounds.values() if r.phase == FIN]
        head = self.now + small
        if to == "deadline" and self.cur.deadline:
            head = self.cur.deadline + offset
        elif to == "unbonding" and releases:
            head = min(releases) - 1 + offset
        elif to == "settle" and ended:
            head = ended[-1].settled_at + offset
        elif to == "window" and ended:
            head = ended[-1].finalized_at + CLAIM_WINDOW + offset
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
        weight = acc.tree.weights.get(who, 0) if acc else 0
        proof = acc.tree.proof(who) if acc and who in acc.tree.scores else []
        part = r.split()[0]
        reward = part * score * weight // acc.result.total_weight if acc and rec and r.budget else 0
        status = rec.status if rec else 0
        expect = first(
            (r.phase != FIN, ("RoundNotFinalized",)), (status == T_CLAIMED, ("AlreadyClaimed",)),
            (status != T_REVEALED, ("NotRevealed", status)), (r.budget == 0, ("NoRoundBudget",)),
            (self.now + 1 > r.finalized_at + CLAIM_WINDOW, ("ClaimWindowClosed", r.finalized_at + CLAIM_WINDOW)),
            (score + tamper == 0, ("NothingToClaim",)), (tamper, ("InvalidProof",)),
            (reward > part - r.paid, ("RoundOverpaid", part - r.paid, reward)))
        if self.tx(who, self.env.vault, "claimReward", TASK, rnd, score + tamper, weight, proof, expect=expect):
            rec.status, r.paid = T_CLAIMED, r.paid + reward
            self.release(who, rec)
            self.pay(r, who, reward)

    @when(lambda self: any(r.phase == FIN for r in self.rounds.values()))
    @rule(a=st.integers(0, 2), rnd=st.integers(0, 3))
    def claim_aggregator(self, a: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase == FIN)
        who, r = self.env.aggregators[a], self.rounds.get(rnd, RoundModel())
        rec = r.aggs.get(who)
        status = rec.status if rec else 0
        matched = r.accepted is not None and rec is not None and rec.key == r.accepted.key
        expect = first(
            (r.phase != FIN, ("RoundNotFinalized",)), (status == A_CLAIMED, ("AlreadyClaimed",)),
            (status != A_REVEALED, ("NotRevealed", status)), (not matched, ("NotInAcceptedQuorum",)),
            (self.now + 1 > r.finalized_at + CLAIM_WINDOW, ("ClaimWindowClosed", r.finalized_at + CLAIM_WINDOW)))
        if self.tx(who, self.env.vault, "claimAggregatorReward", TASK, rnd, expect=expect):
            amount = r.split()[1] // r.votes[r.accepted.key]
            rec.status, r.agg_paid = A_CLAIMED, r.agg_paid + amount
            self.release(who, rec)
            self.pay(r, who, amount)

    @when(lambda self: any(r.phase >= AC for r in self.rounds.values()))
    @rule(t=st.integers(0, 3), rnd=st.integers(0, 3))
    def slash_trainer(self, t: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase >= AC)
        who, r = self.env.trainers[t], self.rounds.get(rnd, RoundModel())
        rec = r.trainers.get(who)
        expect = first(
            (rec is None, ("NotCommitted",)), (rec and rec.status == T_SLASHED, ("AlreadySlashed",)),
            (rec and rec.status != T_COMMITTED, ("NotSlashable",)),
            (r.phase < AC or (r.phase == FAIL and r.failed_phase == TC), ("SlashingNotOpen", r.phase)))
        if self.tx(self.env.outsider, self.env.tm, "slashNonRevealingTrainer", TASK, rnd, who, expect=expect):
            rec.status = T_SLASHED
            self.settle_bond(who, rec, TRAINER_BPS)

    @when(lambda self: any(r.phase >= FIN for r in self.rounds.values()))
    @rule(a=st.integers(0, 2), rnd=st.integers(0, 3))
    def slash_aggregator(self, a: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase >= FIN)
        who, r = self.env.aggregators[a], self.rounds.get(rnd, RoundModel())
        rec = r.aggs.get(who)
        status = rec.status if rec else 0
        dissent = status == A_REVEALED and r.accepted is not None and rec.key != r.accepted.key
        expect = first(
            (rec is None, ("NotCommitted",)), (status == A_SLASHED, ("AlreadySlashed",)),
            (not (r.phase == FIN or (r.phase == FAIL and r.failed_phase == AR)), ("SlashingNotOpen", r.phase)),
            (dissent and self.now + 1 > r.settled_at, ("SettlementClosed", r.settled_at)),
            (status != A_COMMITTED and not dissent, ("NotSlashable",)))
        if self.tx(self.env.outsider, self.env.committee, "slashAggregator", TASK, rnd, who, expect=expect):
            rec.status = A_SLASHED
            self.settle_bond(who, rec, AGG_BPS)

    def release_error(self, r: RoundModel, status: int, bond: int, committed: int, commit_phase: int) -> Err:
        never_asked = status == committed and r.phase == FAIL and r.failed_phase == commit_phase
        return first(
            (r.phase not in (FIN, FAIL), ("NotSettled", 0)),
            (r.phase == FIN and self.now + 1 <= r.settled_at, ("NotSettled", r.settled_at)),
            ((status != committed + 1 and not never_asked) or bond == 0, ("NoBond",)))

    @rule(t=st.integers(0, 3), rnd=st.integers(0, 3))
    def release_trainer(self, t: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase in (FIN, FAIL))
        who, r = self.env.trainers[t], self.rounds.get(rnd, RoundModel())
        rec = r.trainers.get(who)
        expect = self.release_error(r, rec.status if rec else 0, rec.bond if rec else 0, T_COMMITTED, TC)
        if self.tx(self.env.outsider, self.env.tm, "releaseBond", TASK, rnd, who, expect=expect):
            self.release(who, rec)

    @rule(a=st.integers(0, 2), rnd=st.integers(0, 3))
    def release_aggregator(self, a: int, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase in (FIN, FAIL))
        who, r = self.env.aggregators[a], self.rounds.get(rnd, RoundModel())
        rec = r.aggs.get(who)
        expect = self.release_error(r, rec.status if rec else 0, rec.bond if rec else 0, A_COMMITTED, AC)
        if self.tx(self.env.outsider, self.env.committee, "releaseBond", TASK, rnd, who, expect=expect):
            self.release(who, rec)

    @when(lambda self: any(r.phase == FIN for r in self.rounds.values()))
    @rule(rnd=st.integers(0, 3))
    def sweep(self, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase == FIN)
        r = self.rounds.get(rnd, RoundModel())
        closes = r.finalized_at + CLAIM_WINDOW
        expect = first((r.phase != FIN, ("RoundNotFinalized",)),
                       (self.now + 1 <= closes, ("ClaimWindowOpen", closes)), (r.swept, ("AlreadySwept",)))
        if self.tx(self.env.outsider, self.env.vault, "sweep", TASK, rnd, expect=expect):
            self.pay(r, self.env.sponsor, r.owed() - (0 if r.fee_collected else r.split()[2]))
            r.swept = True

    @when(lambda self: any(r.phase == FIN for r in self.rounds.values()))
    @rule(rnd=st.integers(0, 3))
    def collect_fee(self, rnd: int) -> None:
        rnd = rnd or self.latest(lambda r: r.phase == FIN)
        r = self.rounds.get(rnd, RoundModel())
        if self.tx(self.env.outsider, self.env.vault, "collectFee", TASK, rnd,
                   expect=first((r.phase != FIN, ("RoundNotFinalized",)))):
            self.pay(r, self.env.outsider, 0)

    @rule(s=st.integers(0, 6), part=st.sampled_from([0, 4, 10, 1, -1]))
    def unstake(self, s: int, part: int) -> None:
        """Unstake nothing (0), a quarter, a tenth, all the free stake (1) or one wei more than it (-1)."""
        who = (*self.env.trainers, *self.env.aggregators)[s]
        free = self.free(who)
        amount = free + 1 if part < 0 else free // part if part else 0
        expect = first((amount == 0, ("ZeroAmount",)), (amount > free, ("InsufficientStake", free, amount)))
        if self.tx(who, self.env.staking, "requestUnstake", amount, expect=expect):
            self.stake[who] -= amount
            self.unbonding[who] = [self.unbonding[who][0] + amount, self.now + UNBONDING]

    @when(lambda self: any(u[0] for u in self.unbonding.values()))
    @rule(s=st.integers(0, 6))
    def withdraw(self, s: int) -> None:
        who = (*self.env.trainers, *self.env.aggregators)[s]
        amount, release = self.unbonding[who]
        expect = first((amount == 0, ("NothingToWithdraw",)), (self.now + 1 < release, ("StillUnbonding", release)))
        if self.tx(who, self.env.staking, "withdraw", expect=expect):
            self.unbonding[who] = [0, 0]
            self.balances[self.env.staking.address] -= amount
            self.balances[who] += amount

    @when(lambda self: self.status == COMPLETED)
    @rule(by_sponsor=st.booleans())
    def reclaim(self, by_sponsor: bool) -> None:
        who = self.env.sponsor if by_sponsor else self.env.outsider
        expect = first((not by_sponsor, ("NotSponsor",)), (self.status != COMPLETED, ("TaskNotCompleted", TASK)),
                       (self.reclaimed or self.remaining == 0, ("NothingToReclaim",)))
        if self.tx(who, self.env.vault, "reclaimUnallocated", TASK, expect=expect):
            self.balances[who] += self.remaining
            self.balances[self.env.vault.address] -= self.remaining
            self.reclaimed = True

    # ------------------------------------------------------------------ invariant

    @invariant()
    def check_chain(self) -> None:
        """Conservation, legal phase steps and accounting, read in one batch and held against the model."""
        if not self.cfg:
            return
        env, holders, stakers, n = self.env, list(self.balances), list(self.stake), self.cfg["rounds"]
        per_round = [(env.tm, "getRound", (TASK, i)) for i in range(1, n + 1)]
        per_round += [(env.committee, "tally", (TASK, i)) for i in range(1, n + 1)]
        per_round += [(env.vault, "paidOf", (TASK, i)) for i in range(1, n + 1)]
        out = env.read([(env.token, "totalSupply", ()), (env.tm, "getTask", (TASK,)),
                        (env.staking, "totalStaked", ()), (env.staking, "totalUnbonding", ())] + per_round
                       + [(env.token, "balanceOf", (h,)) for h in holders]
                       + [(env.staking, f, (s,)) for f in ("stakeOf", "reservedOf", "unbondingOf") for s in stakers])
        (supply, task, total_staked, total_unbonding), out = out[:4], out[4:]
        rounds, tallies, paid, out = out[:n], out[n : 2 * n], out[2 * n : 3 * n], out[3 * n :]
        balances = dict(zip(holders, out[: len(holders)], strict=True))
        k = len(stakers)
        stakes, reserved, unbonding = (out[len(holders) + i * k : len(holders) + (i + 1) * k] for i in range(3))

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
        for i, (got, tally, books) in enumerate(zip(rounds, tallies, paid, strict=True), start=1):
            m = self.rounds.get(i, RoundModel())
            accepted = m.accepted.key if m.accepted and m.phase == FIN else bytes(32)
            want = (m.phase, m.deadline, len(m.trainers), m.revealed, m.budget, m.failed_phase, m.reason, accepted,
                    m.finalized_at, m.settled_at)
            assert tuple(got[f] for f in ROUND_FIELDS) == want, f"round {i}"
            key = m.accepted.key if m.accepted else bytes(32)
            assert tuple(tally) == (m.drawn, len(m.members), len(m.aggs), m.agg_revealed, key), f"tally {i}"
            assert tuple(books) == (m.paid, m.agg_paid, m.fee_collected, m.swept), f"books {i}"
            assert m.paid <= m.split()[0]

        # 3. accounting: the vault holds exactly what it owes, bonds add up, stakes as modelled
        unallocated = 0 if self.reclaimed else self.remaining
        assert task["remainingBudget"] == self.remaining
        assert balances[env.vault.address] == unallocated + sum(r.owed() for r in self.rounds.values())
        bonds = dict.fromkeys(stakers, 0)
        for r in self.rounds.values():
            for who, e in (*r.trainers.items(), *r.aggs.items()):
                bonds[who] += e.bond
        assert list(reserved) == [bonds[s] for s in stakers] == [self.reserved[s] for s in stakers]
        assert stakes == [self.stake[s] for s in stakers] and total_staked == sum(stakes)
        assert all(s >= r for s, r in zip(stakes, reserved, strict=True))
        assert [list(u) for u in unbonding] == [self.unbonding[s] for s in stakers]
        assert total_unbonding == sum(u[0] for u in unbonding)  # only tracked accounts ever stake
        assert balances[env.staking.address] == total_staked + total_unbonding
        assert balances[env.tm.address] == balances[env.committee.address] == 0


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


SETTINGS = settings(max_examples=40, stateful_step_count=40, deadline=None, derandomize=True,  # the same examples in CI
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain" replays
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


def test_round_state_machine(accounts: Any, project: Any, chain: Any) -> None:
    """Deploy and fund once, then run the state machine; every example is rolled back to this point."""
    admin, treasury = accounts[0], accounts[1]
    token = admin.deploy(project.FedToken, admin, admin)
    staking = admin.deploy(project.Staking, token, treasury, UNBONDING, admin)
    tm = admin.deploy(project.TaskManager, token, staking, admin)
    committee = admin.deploy(project.AggregatorCommittee, staking, admin)
    vault = admin.deploy(project.RewardVault, token, staking, admin)
    env = Env(chain, [token, staking, tm, committee, vault], accounts)
    slasher = keccak(text="SLASHER_ROLE")
    setup = [(env.admin, env.tm, "connect", (vault.address, committee.address)),
             (env.admin, env.committee, "connect", (tm.address, vault.address)),
             (env.admin, env.vault, "connect", (tm.address,)),
             (env.admin, env.vault, "setTerms", (AGG_SHARE_BPS, FEE_BPS, CLAIM_WINDOW)),
             (env.admin, env.staking, "grantRole", (slasher, tm.address)),
             (env.admin, env.staking, "grantRole", (slasher, committee.address)),
             (env.admin, env.token, "mint", (env.sponsor, 10**7 * FED)),
             (env.sponsor, env.token, "approve", (tm.address, 2**256 - 1))]
    for who, amount in [(t, TRAINER_STAKE) for t in env.trainers] + [(a, AGG_STAKE) for a in env.aggregators]:
        setup += [(env.admin, env.token, "mint", (who, 2 * amount)),
                  (who, env.token, "approve", (staking.address, amount)), (who, env.staking, "stake", (amount,))]
    setup += [(env.admin, env.committee, "grantRole", (keccak(text="AGGREGATOR_ROLE"), a)) for a in env.aggregators]
    for sender, contract, fn, args in setup:
        assert env.send(sender, contract, fn, *args)[1] is None, fn
    holders = [*env.everyone, staking.address, tm.address, committee.address, vault.address]
    balances = dict(zip(holders, env.read([(env.token, "balanceOf", (h,)) for h in holders]), strict=True))

    REACHED.clear()
    env.rpc("anvil_setBlockTimestampInterval", 1)  # every block exactly one second after the previous one
    try:
        run_state_machine_as_test(lambda: RoundMachine(env, balances), settings=SETTINGS)
    finally:
        env.rpc("anvil_removeBlockTimestampInterval")
    print(sorted(REACHED.items(), key=str))
    for outcome in ["completed", "finalized", ("claimReward", "ok"), ("advance", "PhaseNotOver"),
                    ("claimAggregatorReward", "ok"), ("releaseBond", "ok"), ("sweep", "ok"),
                    ("slashNonRevealingTrainer", "ok"), ("commitAggregate", "NotInCommittee")]:
        assert REACHED[outcome] > 0, f"no example reached {outcome}"

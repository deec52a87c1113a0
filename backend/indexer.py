"""The chain indexer: follows every fedchain contract event from the deployment block, `confirmations` blocks
behind the head, into the read model.

- Resume: the cursor (last block and its hash) moves in the same transaction as the rows of its block range, so a
  restart continues after the last committed range with no gap and no duplicate ((tx hash, log index) is unique).
- Chain reset: a different chain id, genesis hash or deployment, a cursor above the head, or a cursor block whose
  hash changed (anvil restarted, a snapshot reverted, a reorg deeper than the confirmation depth) wipes the read
  model and re-indexes from the deployment block. The database holds no truth of its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from backend.central_privacy import refresh_central_privacy
from backend.db import session_factory, wipe
from backend.details import load_round_details
from backend.models import ChainEvent, IndexerState, Round
from backend.projections import Projector, event_args_json, refresh_proposal_states
from fedchain.config import settings
from fedchain.deployment import Deployment
from fedchain.store import ContentStore, open_store
from fedchain.web3chain import Web3Chain, load_abis

log = logging.getLogger(__name__)

LAST_BLOCK = Gauge("fedchain_indexer_last_block", "Last block fully indexed")
HEAD_BLOCK = Gauge("fedchain_indexer_head_block", "Chain head seen by the indexer")
LAG_BLOCKS = Gauge("fedchain_indexer_lag_blocks", "Blocks between the chain head and the last indexed block")
EVENTS = Counter("fedchain_indexer_events", "Contract events indexed")
RESETS = Counter("fedchain_indexer_resets", "Chain resets detected (read model wiped and rebuilt)")
ERRORS = Counter("fedchain_indexer_errors", "Indexer loop iterations that failed")


def default_confirmations(network: str) -> int:
    """Local chains mine a block per transaction and never reorg; public ones need a margin."""
    return 0 if network.endswith(":local") else 6


@dataclass
class IndexerConfig:
    rpc_url: str
    network: str = "ethereum:local"
    confirmations: int | None = None
    batch_blocks: int = 2000
    poll_seconds: float = 1.0
    store_spec: str | None = None
    max_file_bytes: int = field(default_factory=lambda: settings().max_model_bytes)  # only headers are read
    details_retry_seconds: float = 10.0

    @property
    def depth(self) -> int:
        return default_confirmations(self.network) if self.confirmations is None else self.confirmations


@dataclass
class IndexerStatus:
    deployment: str = "not loaded"
    head: int | None = None
    last_block: int | None = None
    error: str | None = None
    resets: int = 0
    updated: float = field(default_factory=time.time)

    @property
    def lag(self) -> int | None:
        if self.head is None or self.last_block is None:
            return None
        return max(0, self.head - self.last_block)


class Indexer:
    """One indexer per database; call `step()` repeatedly, or `run()` / `start()` to loop."""

    def __init__(self, engine: Engine, config: IndexerConfig, store: ContentStore | None = None,
                 abis: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.engine = engine
        self.config = config
        self.sessions = session_factory(engine)
        self.store = store or open_store(config.store_spec)
        self.abis = abis or load_abis()
        self.source: Web3Chain | None = None
        self.status = IndexerStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_details_retry = 0.0

    # --- one iteration ---------------------------------------------------------------------------
    def _source(self) -> Web3Chain | None:
        record = Deployment.find(self.config.network)
        if record is None:
            self.status.deployment = f"no deployment recorded for {self.config.network}"
            return None
        if self.source is None or self.source.deployment != record:
            self.source = Web3Chain(self.config.rpc_url, record, self.abis)
        return self.source

    def step(self) -> int:
        """Index the next confirmed block range; returns the number of blocks indexed (0 when caught up)."""
        source = self._source()
        if source is None:
            return 0
        head = source.head()
        self.status.head = head
        HEAD_BLOCK.set(head)
        if source.chain_id() != source.deployment.chain_id or not source.has_code("tasks"):
            self.status.deployment = "the recorded deployment is not on the connected chain"
            return 0
        self.status.deployment = f"{source.deployment.network} TaskManager {source.deployment.addresses['tasks']}"
        with self.sessions.begin() as session:
            state = self._checked_state(session, source, head)
            safe = head - self.config.depth
            if safe <= state.last_block:
                self._report(state.last_block, head)
                refresh_proposal_states(session, source, head)
                self._retry_details(session)
                return 0
            start, end = state.last_block + 1, min(safe, state.last_block + self.config.batch_blocks)
            end_hash = source.block_hash(end)
            logs = source.logs(start, end)
            projector = Projector(session, source)
            for entry in logs:
                session.add(ChainEvent(
                    block_number=entry.block_number, block_hash=entry.block_hash, tx_hash=entry.tx_hash,
                    log_index=entry.log_index, contract=entry.contract, address=entry.address.lower(),
                    name=entry.name, args=event_args_json(entry.args)))
                projector.apply(entry)
            session.flush()
            for task_id, round_ in projector.finalized_rounds + projector.failed_rounds:
                rnd = session.get(Round, (task_id, round_))
                if rnd is not None:
                    load_round_details(session, self.store, rnd, self.config.max_file_bytes)
            for task_id in sorted({task_id for task_id, _ in projector.failed_rounds}):
                refresh_central_privacy(session, task_id)  # a round failed after aggregation still counts
            refresh_proposal_states(session, source, end)
            state.last_block, state.last_block_hash = end, end_hash
            EVENTS.inc(len(logs))
        self._report(end, head)
        return end - start + 1

    def _checked_state(self, session: Session, source: Web3Chain, head: int) -> IndexerState:
        """The cursor row, after wiping the read model if the chain it describes is gone."""
        deployment = source.deployment
        genesis = source.block_hash(0) or ""
        contracts = json.dumps(deployment.addresses, sort_keys=True)
        state = session.get(IndexerState, 1)
        if state is not None:
            reason = None
            if (state.chain_id, state.genesis_hash) != (source.chain_id(), genesis):
                reason = "chain id or genesis block changed"
            elif (state.tasks_address, state.deployment_block, state.contracts) != (
                    deployment.addresses["tasks"], deployment.block, contracts):
                reason = "the deployment changed (or gained contracts, e.g. a governor, whose past events are needed)"
            elif state.last_block > head:
                reason = f"indexed block {state.last_block} is above the head {head}"
            elif state.last_block >= 0 and source.block_hash(state.last_block) != state.last_block_hash:
                reason = f"the hash of indexed block {state.last_block} changed"
            if reason is None:
                return state
            log.warning("chain reset detected (%s): re-indexing from block %s", reason, deployment.block)
            self.status.resets += 1
            RESETS.inc()
            wipe(session)
            state.resets += 1
        else:
            state = IndexerState(id=1, resets=0)
            session.add(state)
        start = max(deployment.block - 1, -1)
        state.chain_id, state.genesis_hash = source.chain_id(), genesis
        state.tasks_address, state.deployment_block = deployment.addresses["tasks"], deployment.block
        state.contracts = contracts
        state.last_block, state.last_block_hash = start, source.block_hash(start) if start >= 0 else ""
        session.flush()
        return state

    def _retry_details(self, session: Session) -> None:
        """Result files that were not in the content store yet may have arrived since."""
        now = time.monotonic()
        if now - self._last_details_retry < self.config.details_retry_seconds:
            return
        self._last_details_retry = now
        for rnd in session.scalars(select(Round).where(Round.details_status.in_(("pending", "unavailable")))):
            load_round_details(session, self.store, rnd, self.config.max_file_bytes)

    def _report(self, last_block: int, head: int) -> None:
        self.status.last_block, self.status.error, self.status.updated = last_block, None, time.time()
        LAST_BLOCK.set(last_block)
        LAG_BLOCKS.set(max(0, head - last_block))

    # --- loops -----------------------------------------------------------------------------------
    def catch_up(self, max_steps: int = 10_000) -> None:
        """Index until the confirmed head is reached (tests, `fedchain backend index --once`)."""
        for _ in range(max_steps):
            if self.step() == 0:
                return
        raise RuntimeError(f"indexer did not catch up within {max_steps} steps")

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                caught_up = self.step() == 0
            except Exception as exc:  # keep serving; /health shows the error
                ERRORS.inc()
                self.status.error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("indexer step failed: %s", self.status.error)
                caught_up = True
            if caught_up:
                self._stop.wait(self.config.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="fedchain-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

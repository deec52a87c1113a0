"""The Litestar app: read API over the indexed read model, /health, Prometheus /metrics, OpenAPI at /schema."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.response import Response
from sqlalchemy.orm import Session
from web3 import Web3

from backend.api.contributions import ContributionController, LeaderboardController
from backend.api.economics import AccountController, EconomicsController
from backend.api.governance import EventController, ProposalController
from backend.api.schemas import Health
from backend.api.tasks import TaskController
from backend.db import make_engine, migrate, ping, session_factory
from backend.indexer import Indexer, IndexerConfig
from backend.models import IndexerState
from fedchain.config import settings

DEFAULT_CORS_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080")  # the dashboard's default address


def default_database_url() -> str:


    home = settings().home
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'backend.sqlite3'}"


@dataclass
class BackendConfig:
    """Everything `fedchain backend serve` configures."""

    database_url: str = field(default_factory=lambda: settings().database_url or default_database_url())
    rpc_url: str = field(default_factory=lambda: settings().rpc_url)
    network: str = "ethereum:local"
    confirmations: int | None = None
    run_indexer: bool = True
    poll_seconds: float = 1.0
    store_spec: str | None = field(default_factory=lambda: settings().store)
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    rate_limit_per_minute: int = 600  # per client address; 0 disables

    def indexer_config(self) -> IndexerConfig:
        return IndexerConfig(rpc_url=self.rpc_url, network=self.network, confirmations=self.confirmations,
                             poll_seconds=self.poll_seconds, store_spec=self.store_spec)


class MetricsController(PrometheusController):
    """Prometheus text format at /metrics (not JSON, so not part of the OpenAPI document)."""

    include_in_schema = False


def provide_db(state: State) -> Generator[Session, None, None]:
    session = state.sessions()
    try:
        yield session
    finally:
        session.close()


@get("/health", sync_to_thread=True, tags=["system"], summary="Chain and database reachability, indexer lag",
     responses={503: ResponseSpec(data_container=Health, description="The chain or the database is unreachable")})
def health(state: State) -> Response[Health]:
    database = ping(state.engine)
    head = None
    try:
        head = int(state.web3.eth.block_number)
    except Exception:  # noqa: BLE001 - any transport error means "chain not reachable"
        head = None
    last_block = None
    if database:
        with state.sessions() as session:
            cursor = session.get(IndexerState, 1)
            last_block = cursor.last_block if cursor else None
    indexer: Indexer | None = state.indexer
    lag = None if head is None or last_block is None else max(0, head - last_block)
    ok = database and head is not None
    body = Health(
        status="ok" if ok else "unavailable", database=database, chain=head is not None, chain_head=head,
        last_indexed_block=last_block, lag_blocks=lag, indexer_error=indexer.status.error if indexer else None,
        deployment=indexer.status.deployment if indexer else "indexer not running in this process",
    )
    return Response(body, status_code=200 if ok else 503)


def create_app(config: BackendConfig | None = None, indexer: Indexer | None = None) -> Litestar:
    """The app; with `config.run_indexer` it indexes in a background thread while it serves."""
    config = config or BackendConfig()
    engine = make_engine(config.database_url)
    state: dict[str, Any] = {
        "engine": engine,
        "sessions": session_factory(engine),
        "web3": Web3(Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": 3})),
        "indexer": indexer,
    }

    def startup(app: Litestar) -> None:
        migrate(engine)
        if app.state.indexer is None and config.run_indexer:
            app.state.indexer = Indexer(engine, config.indexer_config())
            app.state.indexer.start()

    def shutdown(app: Litestar) -> None:
        if app.state.indexer is not None and config.run_indexer:
            app.state.indexer.stop()

    middleware: list[Any] = []
    prometheus = PrometheusConfig(app_name="fedchain_backend", group_path=True, exclude=["/metrics"])
    middleware.append(prometheus.middleware)
    if config.rate_limit_per_minute > 0:
        limit = RateLimitConfig(rate_limit=("minute", config.rate_limit_per_minute),
                                exclude=["/health", "/metrics", "/schema"])
        middleware.append(limit.middleware)
    return Litestar(
        route_handlers=[TaskController, ContributionController, LeaderboardController, EconomicsController,
                        AccountController, ProposalController, EventController, MetricsController, health],
        dependencies={"db": Provide(provide_db)},
        state=State(state),
        on_startup=[startup],
        on_shutdown=[shutdown],
        middleware=middleware,
        cors_config=CORSConfig(allow_origins=list(config.cors_origins), allow_methods=["GET", "OPTIONS"]),
        openapi_config=OpenAPIConfig(title="fedchain backend", version="0.1.0", path="/schema",
                                     description="Read API over the indexed fedchain contracts. The chain is the "
                                                 "truth; amounts in wei are decimal strings."),
        debug=False,
    )

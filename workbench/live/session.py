"""`Live`: a live run set up and torn down in one place, for the CLI, notebooks and apps.

It opens the store, starts the local exchange in-process when the exchange is `local`
(replaying the stored candles; pass `serve_local=False` to use one already running at the
settings' address), builds the ccxt clients with `workbench.localexchange.connect`, the broker and
the engine:

    async with Live(paper=True, speed=600) as live:
        sid = await live.engine.add_strategy("data/strategies/sma_cross.json", allocation=1.0)
        await live.engine.start()
        ...
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from workbench.auth import redact
from workbench.auth.keys import KeyFileError, with_unlocked_keys
from workbench.broker.ccxt_broker import CcxtBroker
from workbench.broker.paper import PaperBroker
from workbench.data.shipped import ensure_shipped
from workbench.errors import WorkbenchError
from workbench.fills import FillModel
from workbench.live.control import control_handler
from workbench.live.engine import LiveEngine
from workbench.localexchange import LocalExchange, load_history
from workbench.risk.account import AccountLimits
from workbench.risk.limits import RiskLimits
from workbench.settings import Settings, load_settings
from workbench.store import Store
from workbench.store.sharing import ReadServer
from workbench.venue import connect

log = logging.getLogger(__name__)


class LiveError(WorkbenchError):
    """A live run that cannot start: what is missing and what to do."""


class Live:
    """Store, (local) exchange, clients, broker and engine of one live run."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        paper: bool = True,
        exchange: str | None = None,
        serve_local: bool = True,
        speed: float | None = None,
        start: Any = None,
        symbols: list[str] | None = None,
        fill_model: FillModel | None = None,
        limits: RiskLimits | None = None,
        account_limits: AccountLimits | None = None,
        exchange_stops: bool = True,
        replay_missed: bool = False,
        passphrase: str | None = None,
        ops: str | None = None,
        http_port: int | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        # Health, metrics, logs and alerts of this run (workbench.ops), under a role name
        # ("live", "serve"); `http_port` also serves /health, /ready, /metrics on 127.0.0.1.
        self.ops_role = ops
        self.http_port = http_port
        self.ops: Any = None
        self._ops_running: Any = None
        self.exchange_name = exchange or self.settings.exchange
        self.passphrase = passphrase  # unlocks the key file (else WORKBENCH_KEYS_PASSPHRASE)
        self.paper = paper
        self.serve_local = serve_local and self.exchange_name == "local"
        self.speed = speed if speed is not None else self.settings.local_speed
        self.start_at = start
        self.symbols = symbols
        self.fill_model = fill_model or FillModel()
        # Limits: given here, else the settings' [risk] (WORKBENCH_RISK_*).
        self.limits = limits if limits is not None else self.settings.risk.strategy_limits()
        self.account_limits = (
            account_limits if account_limits is not None else self.settings.risk.account_limits()
        )
        self.exchange_stops = exchange_stops  # real orders: stops rest on the exchange
        self.replay_missed = replay_missed  # paper: trade missed bars as if never down
        self.store: Store | None = None
        self.reads: ReadServer | None = None
        self.server: LocalExchange | None = None
        self.clients: Any = None
        self._engine: LiveEngine | None = None

    @property
    def engine(self) -> LiveEngine:
        if self._engine is None:
            raise LiveError("the live run has not started: use `async with Live(...)`")
        return self._engine

    async def __aenter__(self) -> Self:
        try:
            self.settings = with_unlocked_keys(
                self.settings.model_copy(update={"exchange": self.exchange_name}),
                self.passphrase,
            )
        except KeyFileError as exc:
            raise LiveError(str(exc)) from exc
        redact.install(redact.settings_secrets(self.settings))
        if (
            not self.paper
            and self.exchange_name != "local"
            and not (self.settings.api_key and self.settings.api_secret)
        ):
            raise LiveError(
                f"orders on {self.exchange_name} need keys: WORKBENCH_API_KEY and "
                "WORKBENCH_API_SECRET, or `workbench keys set`; or run with --paper"
            )
        self.store = Store.open(self.settings.db)
        try:
            if self.store.path is not None:
                # This process owns the DuckDB file while it runs: it serves reads to the others.
                self.reads = await ReadServer(
                    self.store, timeout_s=self.settings.read_timeout_s
                ).start()
            port = None
            if self.serve_local:
                # A fresh database gets the shipped candles, as `make demo` does.
                ensure_shipped(self.store)
                history = load_history(self.store, "local", self.symbols)
                self.server = LocalExchange(
                    history,
                    host=self.settings.local_host,
                    port=0,
                    speed=self.speed,
                    start=self.start_at,
                    fill_model=self.fill_model,
                )
                await self.server.start()
                port = self.server.port
            self.clients = connect(self.exchange_name, settings=self.settings, port=port)
            await self.clients.load_markets()
            broker = (
                PaperBroker(self.fill_model)
                if self.paper
                else CcxtBroker(self.clients, use_exchange_stops=self.exchange_stops)
            )
            self._engine = LiveEngine(
                self.store,
                self.clients,
                broker,
                fill_model=self.fill_model,
                limits=self.limits,
                account_limits=self.account_limits,
                replay_missed=self.replay_missed,
            )
            if self.reads is not None:  # `live halt` / `live resume` from another shell
                self.reads.control = control_handler(self._engine, self.store.audit)
            if self.ops_role is not None:
                from workbench.ops.running import operations

                self._ops_running = operations(
                    self, self.settings, role=self.ops_role, http_port=self.http_port
                )
                self.ops = await self._ops_running.__aenter__()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._ops_running is not None:
            running, self._ops_running = self._ops_running, None
            try:
                await running.__aexit__(None, None, None)
            except Exception:  # the engine, the exchange and the store are closed regardless
                log.exception("stopping the ops service failed")
        if self._engine is not None:
            await self._engine.stop()
        if self.clients is not None:
            await self.clients.close()
        if self.server is not None:
            await self.server.stop()
        if self.reads is not None:
            await self.reads.stop()
        if self.store is not None:
            self.store.close()

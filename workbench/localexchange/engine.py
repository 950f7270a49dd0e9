"""The engine of the local exchange: replay clock, markets, matcher and streams in one step.

`Engine.step` is the heartbeat. It reads the replay clock, walks every symbol's price path from
the last step to now, lets resting orders fill on it, and publishes klines. The server calls it
on a timer and before answering any request, so every answer is as of "now" and never later.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from workbench.fills import FeeAsset, FillModel
from workbench.localexchange.auth import KeyRing
from workbench.localexchange.clock import Clock
from workbench.localexchange.commission import with_bnb_markets
from workbench.localexchange.errors import bad_symbol
from workbench.localexchange.faults import Faults
from workbench.localexchange.formats import account_position, execution_report
from workbench.localexchange.markets import MarketRules, market_id
from workbench.localexchange.matching import BalanceEvent, Matcher, OrderEvent
from workbench.localexchange.replay import SymbolReplay
from workbench.localexchange.streams import StreamHub


class Engine:
    """Everything the local exchange knows, advanced by `step`."""

    def __init__(
        self,
        history: Mapping[str, pd.DataFrame],
        *,
        clock: Clock,
        timeframe_ms: int,
        fill_model: FillModel,
        accounts: dict[str, dict[str, float]],
        keyring: KeyRing,
        max_volume_fraction: float | None = None,
    ) -> None:
        if not history:
            raise ValueError("the local exchange needs the candles of at least one symbol")
        if fill_model.fee_asset is FeeAsset.BNB:
            history = with_bnb_markets(history, timeframe_ms)
        self.clock = clock
        self.timeframe_ms = timeframe_ms
        self.fill_model = fill_model
        self.keyring = keyring
        self.replays: dict[str, SymbolReplay] = {
            market_id(symbol): SymbolReplay(symbol, frame, timeframe_ms)
            for symbol, frame in sorted(history.items())
        }
        self.markets: dict[str, MarketRules] = {
            mid: MarketRules.derive(replay) for mid, replay in self.replays.items()
        }
        for mid, rules in self.markets.items():
            self.replays[mid].price_decimals = rules.price_decimals
        self.matcher = Matcher(
            self.markets, self.replays, fill_model, accounts, max_volume_fraction
        )
        self.matcher.listeners.append(self._publish_user_event)
        self.hub = StreamHub(self.replays)
        self.faults = Faults()
        self.last_ms = clock.now_ms()

    def step(self) -> int:
        """Advance matching and streams to the clock's now, and give now (sim epoch ms)."""
        now = self.clock.now_ms()
        if now > self.last_ms:
            for mid in {o.symbol for o in self.matcher.working.values()}:
                replay = self.replays[mid]
                path = replay.path_between(self.last_ms, now)
                volume = replay.volume_between(self.last_ms, now)
                self.matcher.advance(mid, path, now, volume)
            self.hub.publish_klines(now)
            self.last_ms = now
        return self.last_ms

    def rules(self, market: str | None) -> MarketRules:
        """Give a market's rules by Binance id, or reject the symbol with -1121."""
        if not market or market not in self.markets:
            raise bad_symbol()
        return self.markets[market]

    def _publish_user_event(self, event: OrderEvent | BalanceEvent) -> None:
        if isinstance(event, OrderEvent):
            payload = execution_report(event.order, event.exec_type, event.trade, event.time_ms)
            self.hub.publish_user(event.order.account, payload)
        else:
            account = self.matcher.accounts[event.account]
            self.hub.publish_user(
                event.account, account_position(account, event.assets, event.time_ms)
            )

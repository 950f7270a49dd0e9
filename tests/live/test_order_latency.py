"""Close → order without queueing: an order decided on a bar's close is sent while that
market's close is being handled, not after the engine has handled every other market that
closed at the same instant (ten markets closing together made the last one wait for nine).
Real paper broker and engine on the local exchange through the unmodified ccxt.pro clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from local_market import STEP_MS, Market, bar_ms, run_to
from shipped import CANDLE_DIR, ROOT

from workbench.broker.base import Execution
from workbench.broker.models import Order, OrderPurpose
from workbench.broker.paper import PaperBroker
from workbench.fills import FillModel
from workbench.live.engine import LiveEngine
from workbench.live.events import CandleClosed, EngineEvent
from workbench.localexchange import LocalExchange, ManualClock, load_csv_history
from workbench.settings import Settings
from workbench.store import Store
from workbench.venue import connect

SYMBOLS = ("ETH/BTC", "LTC/BTC", "XLM/BTC")
BARS = 120


def quick_cross(symbol: str) -> dict[str, Any]:
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["market"]["symbol"] = symbol
    raw["params"]["fast"].update(default=2, range=[2, 50, 1])
    raw["params"]["slow"].update(default=5, range=[5, 200, 1])
    raw["risk"] = {"sizing": {"method": "fixed_fraction", "fraction": 0.5}}
    return raw


@pytest.fixture
async def market() -> AsyncIterator[Market]:
    both = load_csv_history(CANDLE_DIR, list(SYMBOLS))
    common = both[SYMBOLS[0]].index
    for symbol in SYMBOLS[1:]:
        common = common.intersection(both[symbol].index)
    candles = {symbol: both[symbol].loc[common[:BARS]] for symbol in SYMBOLS}
    clock = ManualClock(bar_ms(candles[SYMBOLS[0]], 0) + 1)
    async with LocalExchange(candles, clock=clock, tick_s=0.002) as server:
        clients = connect("local", settings=Settings(), port=server.port)
        await clients.load_markets()
        yield server, clock, clients
        await clients.close()


async def test_an_order_is_sent_before_another_markets_close_is_handled(
    market: Market, tmp_path: Path
) -> None:
    _, clock, clients = market
    # One sequence of what happened: each market's close handled, each order sent.
    seen: list[tuple[str, str, int]] = []
    broker = PaperBroker()
    submit = broker.submit

    async def recorded(order: Order) -> Execution:
        if order.purpose in (OrderPurpose.ENTRY, OrderPurpose.EXIT):
            seen.append(("order", order.symbol, order.created_ms - STEP_MS))  # its signal's bar
        return await submit(order)

    broker.submit = recorded  # type: ignore[method-assign]

    def on_event(event: EngineEvent) -> None:
        if isinstance(event, CandleClosed) and event.fresh:
            seen.append(("closed", event.key[1], event.candle.ts_ms))

    with Store.open(tmp_path / "latency.duckdb") as store:
        engine = LiveEngine(store, clients, broker, fill_model=FillModel())
        engine.subscribe(on_event)
        for symbol in SYMBOLS:
            await engine.add_strategy(quick_cross(symbol), allocation=0.3, strategy_id=symbol)
        await engine.start()
        first = clock.now_ms()
        await run_to(clock, engine, first + (BARS - 10) * STEP_MS, settle_s=0.2)
        await engine.stop()

    orders = [(i, symbol, bar) for i, (what, symbol, bar) in enumerate(seen) if what == "order"]
    assert len(orders) >= 10, f"the quick cross traded: {len(orders)} orders"
    for i, symbol, bar in orders:
        # Its own market's close of that bar came before it, and no other market's close
        # was handled in between.
        closed_at = seen.index(("closed", symbol, bar))
        between = [s for what, s, _ in seen[closed_at + 1 : i] if what == "closed"]
        assert between == [], (
            f"the {symbol} order of bar {pd.Timestamp(bar, unit='ms')} waited for the "
            f"closes of {between}"
        )

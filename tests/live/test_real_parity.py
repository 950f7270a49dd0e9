"""The real broker trades like the backtest: CcxtBroker on the local exchange (fees taken in
the asset received, as Binance takes them; lot steps and minimums applied) makes the same
round trips, bar for bar and side for side, as the backtest of the same bars with the same
fee asset and lot rules; its books equal the exchange's. The paper broker's exact parity is
in test_engine.py; this is the one a real account exercises."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from local_market import STEP_MS, Market, bar_ms, open_market, run_to
from shipped import CANDLE_DIR, ROOT

from workbench.backtest.engine import backtest
from workbench.broker.ccxt_broker import CcxtBroker
from workbench.fills import FeeAsset, FillModel
from workbench.live.engine import LiveEngine
from workbench.localexchange import load_csv_history
from workbench.store import Store
from workbench.strategy import load_spec
from workbench.venue.rules import market_rules

BARS = 400
CASH = 0.8


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:BARS]


@pytest.fixture
async def market(candles: pd.DataFrame) -> AsyncIterator[Market]:
    # Only BTC on the account: every ETH on it is the strategy's.
    async for opened in open_market(candles, balances={"BTC": 1.0}, fee_asset="received"):
        yield opened


async def test_the_real_broker_makes_the_backtests_round_trips_with_fees_in_the_asset_received(
    market: Market, candles: pd.DataFrame, tmp_path: Path
) -> None:
    _, clock, clients = market
    raw = json.loads((ROOT / "data" / "strategies" / "sma_cross.json").read_text())
    raw["params"]["fast"]["default"], raw["params"]["slow"]["default"] = 5, 20
    fill_model = FillModel(fee_asset=FeeAsset.RECEIVED)
    with Store.open(tmp_path / "parity.duckdb") as store:
        broker = CcxtBroker(clients, sweep_s=0.5, poll_s=0.2)
        engine = LiveEngine(store, clients, broker, fill_model=fill_model)
        sid = await engine.add_strategy(raw, allocation=CASH, strategy_id="p")
        await engine.start()
        await run_to(clock, engine, bar_ms(candles, BARS - 1) + 1)
        await engine.stop()
        trips = store.trading.round_trips(sid)
        orders = store.trading.orders(sid)
        fills = store.trading.fills(sid)
    rules = market_rules(clients.rest, "ETH/BTC")
    seen = candles.iloc[: BARS - 1]
    tested = backtest(
        load_spec(raw), seen, cash=CASH, fees=fill_model.fee_rate,
        fee_asset=FeeAsset.RECEIVED, lot_rules=rules,
    )  # fmt: skip
    closed = tested.trades[tested.trades["exit_reason"] != "open"].reset_index(drop=True)
    assert len(closed) >= 3, "the window must hold trades to compare"

    # The same round trips: entered and left in the same bars, the same way.
    def bar_of(times: pd.Series) -> list[int]:
        ms = pd.to_datetime(times, utc=True).dt.as_unit("ms").astype("int64")
        return [int(t - t % STEP_MS) for t in ms]

    assert len(trips) == len(closed)
    assert bar_of(trips["entry_time"]) == bar_of(closed["entry_time"])
    assert bar_of(trips["exit_time"]) == bar_of(closed["exit_time"])
    assert list(trips["direction"]) == list(closed["side"])
    # Sizes: what the account bought net of the fee taken in ETH, the exit sold all of it to
    # the lot step; the backtest's at its own fill prices, so within the bar's price moves.
    np.testing.assert_allclose(trips["amount"], closed["size"], rtol=0.005)
    for trip, bar_ms_ in zip(trips.itertuples(), bar_of(trips["entry_time"]), strict=True):
        bar = seen.loc[pd.Timestamp(bar_ms_, unit="ms", tz="UTC")]
        assert bar["low"] <= trip.entry_price <= bar["high"], trip.trade_no
    # Nothing refused or rejected; every buy's fee was in ETH and every sell's in BTC.
    assert all(o.state == "filled" for o in orders)
    assert {f.fee_currency for f in fills if f.side == "buy"} == {"ETH"}
    assert {f.fee_currency for f in fills if f.side == "sell"} == {"BTC"}
    # And the account holds what the books say: no ETH left beyond a lot step after the
    # last exit (the backtest too ends flat or holding one position).
    held = sum(f.base_delta for f in fills)
    balance = (await clients.rest.fetch_balance()).get("ETH", {}).get("total") or 0.0
    assert balance == pytest.approx(held, abs=rules.amount_step / 10)

"""Market data through ccxt: markets, paginated klines equal to the stored ones, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.fills import bar_path, path_price
from workbench.localexchange import LocalExchange, ManualClock
from workbench.venue.client import ExchangeClients

FIVE_MIN_MS = 300_000


def frame_of(ohlcv: list[list[float]]) -> pd.DataFrame:
    frame = pd.DataFrame(ohlcv, columns=["ts", "open", "high", "low", "close", "volume"])
    frame["ts"] = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    return frame.set_index("ts")


async def test_load_markets_makes_one_call_and_gives_spot_markets_with_filters(
    stepped: ExchangeClients,
) -> None:
    stepped.rest.markets = None
    calls: list[str] = []
    original = stepped.rest.fetch

    async def spy(url: str, *args: object, **kwargs: object) -> object:
        calls.append(url)
        return await original(url, *args, **kwargs)

    stepped.rest.fetch = spy  # type: ignore[method-assign]
    markets = await stepped.rest.load_markets(reload=True)
    assert set(markets) == {"ETH/BTC", "LTC/BTC"}
    assert calls == [f"http://127.0.0.1:{calls[0].split(':')[2].split('/')[0]}/api/v3/exchangeInfo"]
    eth = markets["ETH/BTC"]
    assert eth["spot"] and eth["active"] and eth["base"] == "ETH" and eth["quote"] == "BTC"
    assert eth["limits"]["cost"]["min"] == 0.0001
    assert eth["limits"]["amount"]["min"] > eth["precision"]["amount"] > 0
    assert eth["precision"]["price"] > 0


async def test_paginated_fetch_ohlcv_equals_the_stored_candles_up_to_the_clock(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    stored = history["ETH/BTC"]
    since = int(stored.index[0].value // 1_000_000)
    got: list[list[float]] = []
    while True:
        page = await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", since=since, limit=1000)
        if not page:
            break
        got.extend(page)
        since = page[-1][0] + FIVE_MIN_MS
        if len(page) < 1000:
            break
    frame = frame_of(got)
    now = pd.Timestamp(manual_clock.now_ms(), unit="ms", tz="UTC")
    assert len(frame) > 2500
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    assert frame.index[-1] <= now < frame.index[-1] + pd.Timedelta("5min")
    closed = frame.iloc[:-1]
    expected = stored.loc[closed.index[0] : closed.index[-1]]
    pd.testing.assert_frame_equal(closed, expected, check_names=False, check_freq=False)


async def test_the_last_kline_is_the_forming_bar_as_it_stands_now(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame], manual_clock: ManualClock
) -> None:
    last = (await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", limit=2))[-1]
    bar = history["ETH/BTC"].loc[pd.Timestamp(last[0], unit="ms", tz="UTC")]
    fraction = (manual_clock.now_ms() - last[0]) / FIVE_MIN_MS
    price = path_price(bar_path(bar.open, bar.high, bar.low, bar.close), fraction)
    assert last[1] == bar.open
    assert last[4] == pytest.approx(price, rel=1e-6)
    assert bar.low <= last[3] <= last[2] <= bar.high
    assert last[5] == pytest.approx(bar.volume * fraction)


async def test_no_kline_ticker_or_book_is_ever_past_the_clock(
    stepped: ExchangeClients, manual_clock: ManualClock
) -> None:
    now = manual_clock.now_ms()
    future = await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", since=now + FIVE_MIN_MS)
    assert future == []
    ticker = await stepped.rest.fetch_ticker("ETH/BTC")
    assert ticker["timestamp"] <= now
    book = await stepped.rest.fetch_order_book("ETH/BTC", limit=5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"][0][0] <= ticker["last"] <= book["asks"][0][0]
    manual_clock.advance(FIVE_MIN_MS)
    later = await stepped.rest.fetch_ohlcv("ETH/BTC", "5m", limit=3)
    assert later[-1][0] > now - FIVE_MIN_MS and later[-1][0] <= now + FIVE_MIN_MS


async def test_hourly_klines_aggregate_the_base_candles(
    stepped: ExchangeClients, history: dict[str, pd.DataFrame]
) -> None:
    hourly = frame_of(await stepped.rest.fetch_ohlcv("LTC/BTC", "1h", limit=50)).iloc[:-1]
    base = history["LTC/BTC"]
    expected = base.resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    expected = expected.loc[hourly.index]
    np.testing.assert_allclose(hourly.to_numpy(), expected.to_numpy(), rtol=1e-12)


async def test_an_unknown_interval_or_symbol_is_refused(stepped: ExchangeClients) -> None:
    import ccxt

    with pytest.raises(ccxt.BadRequest):
        await stepped.rest.fetch_ohlcv("ETH/BTC", "1m")
    with pytest.raises(ccxt.BadSymbol):
        await stepped.rest.public_get_klines({"symbol": "DOGEBTC", "interval": "5m"})


async def test_the_replay_is_deterministic(
    history: dict[str, pd.DataFrame], start_ms: int, settings: object
) -> None:
    from workbench.venue import connect

    seen = []
    for _ in range(2):
        clock = ManualClock(start_ms + 123_456)
        async with (
            LocalExchange(history, clock=clock) as server,
            connect("local", port=server.port, settings=settings) as ex,  # type: ignore[arg-type]
        ):
            seen.append(await ex.rest.fetch_ohlcv("ETH/BTC", "15m", limit=20))
    assert seen[0] == seen[1]

"""The correctness promise: vectorbt's backtest equals a plain bar-by-bar loop of the fill model.

The oracle below knows nothing of vectorbt or of `workbench.backtest`: it walks the bars one
by one, calls the shared fill model (`workbench.fills`) for prices, fees and protective exits,
and recomputes ATR and realized volatility with plain loops. Only the strategy's signals (the
evaluator's output) are shared input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shipped import CANDLE_FILES, shipped

from workbench.backtest.engine import backtest
from workbench.fills import FeeAsset, FeeIn, FillModel, Protection, Side, bar_path, first_exit
from workbench.lots import LotRules
from workbench.strategy.loader import load_spec
from workbench.strategy.risk import FixedAmount, FixedFraction, FixedRisk, VolatilityTarget
from workbench.strategy.vectorized import evaluate

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted((ROOT / "data" / "strategies").glob("*.json"))
FEE_RATE = 0.001
SLIPPAGE = 0.0005
CASH = 10_000.0
REL = 1e-9


@dataclass
class OracleTrade:
    side: str
    entry_time: pd.Timestamp
    entry_price: float
    size: float
    exit_time: pd.Timestamp | None = None
    exit_price: float | None = None
    exit_reason: str = "open"


def wilder_atr(high: list[float], low: list[float], close: list[float], n: int) -> list[float]:
    out, acc = [math.nan] * len(high), 0.0
    for t in range(len(high)):
        tr = high[t] - low[t]
        if t > 0:
            tr = max(tr, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < n:
            acc += tr
            if t == n - 1:
                acc /= n
                out[t] = acc
        else:
            acc = (acc * (n - 1) + tr) / n
            out[t] = acc
    return out


def realized_vol(close: list[float], lookback: int, bars_per_year: float) -> list[float]:
    out = [math.nan] * len(close)
    logs = [math.nan] + [math.log(close[t] / close[t - 1]) for t in range(1, len(close))]
    for t in range(lookback, len(close)):
        window = np.asarray(logs[t - lookback + 1 : t + 1])
        out[t] = float(np.std(window, ddof=1)) * math.sqrt(bars_per_year)
    return out


def oracle(spec, candles: pd.DataFrame, signals, fm: FillModel, cash: float, lots=None):
    """Give (trades, equity at each close) of a plain bar-by-bar simulation.

    ``lots`` (`LotRules`): entries are rounded down to the lot step and refused under the
    market's minimums, as the venue does.
    """
    o, h, lo, c = (candles[k].tolist() for k in ("open", "high", "low", "close"))
    times = list(candles.index)
    le, lx = signals.entries.iloc[:, 0].tolist(), signals.exits.iloc[:, 0].tolist()
    none = [False] * len(o)
    se = signals.short_entries.iloc[:, 0].tolist() if signals.short_entries is not None else none
    sx = signals.short_exits.iloc[:, 0].tolist() if signals.short_exits is not None else none
    risk, sizing = spec.risk, spec.risk.sizing
    atr = vol = None
    if isinstance(sizing, FixedRisk):
        atr = wilder_atr(h, lo, c, sizing.atr_period)
    if isinstance(sizing, VolatilityTarget):
        vol = realized_vol(c, sizing.lookback, 365 * 86400 / spec.market.timeframe_seconds)
    quote, base = cash, 0.0
    side: Side | None = None
    rate = fm.effective_rate
    # The account holds base and quote only: a BNB fee is paid in quote value, and so is
    # reserved from the cash an entry may spend.
    fee_from_cash = fm.fee_in(Side.BUY) is not FeeIn.BASE

    def book(trade_side: Side, price: float, quantity: float) -> float:
        """Apply one fill to the balances; give the base it moved (unsigned)."""
        nonlocal quote, base
        charge = fm.charge(trade_side, price, quantity)
        quote += charge.quote - (charge.fee_quote if charge.fee_in is FeeIn.OTHER else 0.0)
        base += charge.base
        return abs(charge.base)

    def affordable(spend: float, price: float) -> float:
        """Give the order quantity ``spend`` quote buys at ``price``, fee included."""
        return spend / (price * (1 + rate)) if fee_from_cash else spend / price

    prot = Protection()
    trades: list[OracleTrade] = []
    equity = []

    def close_position(i: int, trigger: float, why: str) -> None:
        nonlocal quote, base, side
        exit_side = Side.SELL if side is Side.BUY else Side.BUY
        price = fm.market_price(exit_side, trigger)
        quantity = abs(base)
        if exit_side is Side.BUY and fm.fee_in(Side.BUY) is FeeIn.BASE:
            quantity = abs(base) / (1 - rate)  # the fee comes off the base bought back
        book(exit_side, price, quantity)
        base = 0.0
        trades[-1].exit_time, trades[-1].exit_price, trades[-1].exit_reason = times[i], price, why
        side = None

    for i in range(len(o)):
        path = bar_path(o[i], h[i], lo[i], c[i])
        walk = False
        if side is not None:
            hit, prot = first_exit(side, prot, path[:1])  # resting stops meet the opening tick
            wants_out = lx[i - 1] if side is Side.BUY else sx[i - 1]
            if hit is not None:
                close_position(i, hit.price, hit.kind.value)
            elif wants_out:
                close_position(i, o[i], "signal")
            else:
                walk = True
        elif i > 0:
            go_long, go_short = le[i - 1] and not lx[i - 1], se[i - 1] and not sx[i - 1]
            want = None if go_long == go_short else (Side.BUY if go_long else Side.SELL)
            if want is not None:
                fill = fm.market_price(want, o[i])
                # A buy spends at most the cash; a short reserves its fee in quote.
                buy = affordable if want is Side.BUY else (lambda q, p: q / (p * (1 + rate)))
                cap = buy(quote, fill)
                units, atr_distance = math.nan, None
                if isinstance(sizing, FixedAmount):
                    units = buy(sizing.amount, fill)
                    units = min(units, cap) if want is Side.BUY else units
                elif isinstance(sizing, FixedFraction):
                    units = buy(min(sizing.fraction, 1.0) * quote, fill)
                elif isinstance(sizing, FixedRisk) and not math.isnan(atr[i - 1]):
                    atr_distance = sizing.atr_multiple * atr[i - 1]
                    units = min(quote * sizing.risk_fraction / atr_distance, cap)
                elif isinstance(sizing, VolatilityTarget) and not math.isnan(vol[i - 1]):
                    fraction = min(sizing.max_fraction, sizing.target_volatility / vol[i - 1], 1)
                    units = buy(fraction * quote, fill)
                if lots is not None and not math.isnan(units):
                    units = lots.round_down(units)
                    if not lots.allows(units, fill):
                        units = math.nan  # the venue refuses it
                if not math.isnan(units) and units > 0:
                    side = want
                    sign = 1.0 if want is Side.BUY else -1.0
                    units = book(want, fill, units)  # the trade's size: the base it holds
                    stop = fill * (1 - sign * risk.stop_loss) if risk.stop_loss else None
                    if atr_distance is not None:
                        level = fill - sign * atr_distance
                        pick = max if want is Side.BUY else min
                        stop = level if stop is None else pick(stop, level)
                    target = fill * (1 + sign * risk.take_profit) if risk.take_profit else None
                    prot = Protection(stop, target, risk.trailing_stop, fill)
                    trades.append(
                        OracleTrade("long" if want is Side.BUY else "short", times[i], fill, units)
                    )
                    walk = True
        if walk:
            hit, prot = first_exit(side, prot, path)
            if hit is not None:
                close_position(i, hit.price, hit.kind.value)
        equity.append(quote + base * c[i])
    return trades, equity


def compare(
    spec,
    candles,
    fm: FillModel,
    cash: float = CASH,
    fee_asset: FeeAsset | None = None,
    lots: LotRules | None = None,
) -> list[OracleTrade]:
    """Assert the engine matches the oracle (trades and equity); give the oracle's trades.

    The engine is told ``fee_asset`` (default: the oracle's model's)."""
    fee_asset = fm.fee_asset if fee_asset is None else fee_asset
    result = backtest(
        spec,
        candles,
        cash=cash,
        fees=FEE_RATE,
        slippage=SLIPPAGE,
        fee_asset=fee_asset,
        lot_rules=lots,
    )
    expected, equity = oracle(spec, candles, evaluate(spec, candles), fm, cash, lots)
    got = result.trades
    assert len(got) == len(expected), f"{len(got)} trades vs oracle {len(expected)}"
    for row, want in zip(got.itertuples(), expected, strict=True):
        assert (row.side, row.entry_time) == (want.side, want.entry_time)
        assert row.entry_price == pytest.approx(want.entry_price, rel=REL)
        assert row.size == pytest.approx(want.size, rel=REL)
        assert row.exit_reason == want.exit_reason
        if want.exit_time is None:
            assert pd.isna(row.exit_time)
        else:
            assert row.exit_time == want.exit_time
            assert row.exit_price == pytest.approx(want.exit_price, rel=REL)
    np.testing.assert_allclose(result.equity.to_numpy(), equity, rtol=REL)
    assert result.stats["final_equity"] == pytest.approx(equity[-1], rel=REL)
    return expected


@pytest.fixture(scope="module")
def candle_sets() -> dict[str, pd.DataFrame]:
    return {path.name: shipped(path)[1] for path in CANDLE_FILES}


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_engine_matches_oracle_on_every_shipped_file(spec_file: Path, candle_sets) -> None:
    spec = load_spec(spec_file)
    fm = FillModel(fee_rate=FEE_RATE, slippage=SLIPPAGE)
    reasons: set[str] = set()
    for name, candles in candle_sets.items():
        try:
            reasons |= {t.exit_reason for t in compare(spec, candles, fm)}
        except AssertionError as exc:
            raise AssertionError(f"{spec.name} on {name}: {exc}") from exc
    risk = spec.risk
    # The comparison must have exercised each configured protective exit at least once.
    for kind, level in [
        ("stop_loss", risk.stop_loss),
        ("take_profit", risk.take_profit),
        ("trailing_stop", risk.trailing_stop),
    ]:
        if level is not None:
            assert kind in reasons, f"no {kind} exit happened: the oracle did not test it"


@pytest.mark.parametrize("fee_asset", [FeeAsset.RECEIVED, FeeAsset.BNB])
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_engine_matches_oracle_for_each_fee_asset(
    spec_file: Path, fee_asset: FeeAsset, candle_sets
) -> None:
    """Fees in the base received (Binance's default) or in BNB at its discount."""
    spec = load_spec(spec_file)
    fm = FillModel(fee_rate=FEE_RATE, slippage=SLIPPAGE, fee_asset=fee_asset)
    for name in ("ETH_BTC-5m.csv.gz", "XRP_USDT-5m.csv.gz"):
        try:
            trades = compare(spec, candle_sets[name], fm, fee_asset=fee_asset)
        except AssertionError as exc:
            raise AssertionError(f"{spec.name} on {name}: {exc}") from exc
        assert trades, f"{spec.name} on {name}: no trade, the fees were not tested"


def test_oracle_notices_a_fee_taken_in_quote_instead_of_base(candle_sets) -> None:
    """The comparison can fail: booking a received-asset fee as a quote fee is caught."""
    spec = load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")
    candles = candle_sets["ETH_BTC-5m.csv.gz"]
    with pytest.raises(AssertionError):
        quote = FillModel(FEE_RATE, SLIPPAGE, FeeAsset.QUOTE)
        compare(spec, candles, quote, fee_asset=FeeAsset.RECEIVED)


@pytest.mark.parametrize("fee_asset", [FeeAsset.QUOTE, FeeAsset.RECEIVED])
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: p.stem)
def test_entries_are_rounded_to_the_lot_step_and_refused_under_the_minimums(
    spec_file: Path, fee_asset: FeeAsset, candle_sets
) -> None:
    spec = load_spec(spec_file)
    candles = candle_sets["ETH_BTC-5m.csv.gz"]
    free = backtest(spec, candles, cash=CASH, fees=FEE_RATE, slippage=SLIPPAGE).trades
    # Rules that bind: a step of a seventh of the median order, a minimum notional above a
    # third of the orders once rounded.
    step = float(free["size"].median() / 7)
    rounded = np.floor(free["size"] / step) * step * free["entry_price"]
    lots = LotRules(step, 0.0, float(rounded.quantile(0.35)))
    fm = FillModel(FEE_RATE, SLIPPAGE, fee_asset)
    expected = compare(spec, candles, fm, fee_asset=fee_asset, lots=lots)
    result = backtest(
        spec,
        candles,
        cash=CASH,
        fees=FEE_RATE,
        slippage=SLIPPAGE,
        fee_asset=fee_asset,
        lot_rules=lots,
    )
    assert result.stats["refused_orders"] > 0 and len(expected) > 0
    # Orders are whole steps (the position holds what a received-asset fee leaves of one).
    kept = 1 - FEE_RATE if fee_asset is FeeAsset.RECEIVED else 1.0
    longs = result.trades[result.trades["side"] == "long"]
    steps = longs["size"] / kept / lots.amount_step
    np.testing.assert_allclose(steps, np.round(steps), rtol=1e-9)


def test_oracle_notices_a_different_fill_model(candle_sets) -> None:
    """The comparison can fail: a fee of 0.2 % instead of 0.1 % is caught."""
    spec = load_spec(ROOT / "data" / "strategies" / "ema_cross_rsi.json")
    candles = candle_sets["ETH_BTC-5m.csv.gz"]
    with pytest.raises(AssertionError):
        compare(spec, candles, FillModel(fee_rate=0.002, slippage=SLIPPAGE))


def test_oracle_notices_a_same_bar_fill(candle_sets) -> None:
    """The comparison can fail: acting on a signal one bar late is caught."""
    spec = load_spec(ROOT / "data" / "strategies" / "sma_cross.json")
    candles = candle_sets["ETH_BTC-5m.csv.gz"]
    fm = FillModel(fee_rate=FEE_RATE, slippage=SLIPPAGE)
    signals = evaluate(spec, candles)
    late = type(signals)(**{**signals.__dict__})
    late.entries = signals.entries.shift(1, fill_value=False)
    late.exits = signals.exits.shift(1, fill_value=False)
    expected, _ = oracle(spec, candles, late, fm, CASH)
    got = backtest(spec, candles, fees=FEE_RATE, slippage=SLIPPAGE).trades
    assert [t.entry_time for t in expected] != list(got["entry_time"])

"""The reference run: the same plan executed and accounted by vectorbt's ``from_signals``.

`workbench.backtest.engine.simulate` runs the compiled kernel (`workbench.backtest.run_nb`),
which repeats vectorbt's order arithmetic operation for operation. This module hands the same
planned orders (`workbench.backtest.plan.plan_orders_nb`) to vectorbt: the tests hold the two
equal, and `Simulation.portfolio` gives a vectorbt Portfolio to whoever wants vectorbt's own
analysis. Importing vectorbt takes seconds: only this module does, when it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.ledger import fee_rates
from workbench.backtest.plan import REASON_NAMES, plan_orders_nb
from workbench.fills import FillModel
from workbench.portfolio.stats import equity_stats, stats_frame, trade_stats
from workbench.risk.sizing import entry_sizes
from workbench.strategy.model import Spec
from workbench.strategy.vectorized import evaluate


@dataclass
class VectorbtSimulation:
    """The outcome of one vectorbt run over combinations x symbols."""

    portfolio: Any  # vectorbt Portfolio
    grid: pd.DataFrame
    symbols: list[str]
    index: pd.DatetimeIndex
    phases: int
    reason: np.ndarray  # (rows, columns) int8, why each order was placed
    init_cash: float
    timeframe_seconds: int
    start_bar: int = 0  # bars before it only warm indicators up (walk-forward test windows)
    shared_cash: bool = False  # True when the symbols of a combination share one cash pool

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def bars(self) -> pd.DatetimeIndex:
        """Give the bars the statistics cover (from ``start_bar`` on)."""
        return self.index[self.start_bar :]

    def close_rows(self) -> slice:
        """Give the rows valued at each covered bar's close."""
        return slice(self.start_bar * self.phases + self.phases - 1, None, self.phases)

    def equity(self) -> np.ndarray:
        """Give total equity at each covered bar's close, bars x combinations."""
        if self.shared_cash:
            # One cash pool per combination: vectorbt's group value. (Per column, vectorbt
            # gives every symbol the whole pool as its initial cash: summing those would
            # count the cash once per symbol.)
            value = np.asarray(self.portfolio.value()).reshape(-1, len(self.grid))
            return value[self.close_rows()]
        value = np.asarray(self.portfolio.value(group_by=False))[self.close_rows()]
        return value.reshape(len(self.bars), len(self.grid), self.n_symbols).sum(axis=2)

    def exposure(self) -> np.ndarray:
        """Give per combination the share of bars with a position open at some time."""
        if self.n_symbols == 1:
            # One position at a time: the bars from entry to exit, from the trade records.
            rec = self.trade_records()
            first = np.maximum(rec["entry_idx"] // self.phases, self.start_bar)
            bars = rec["exit_idx"] // self.phases - first + 1
            # An exit at a bar's open holds no part of that bar.
            bars = bars - ((rec["status"] == 1) & (rec["exit_idx"] % self.phases == 0))
            held = np.bincount(rec["col"], weights=bars, minlength=self.columns)
            return held / len(self.bars)
        assets = np.asarray(self.portfolio.assets()) != 0
        held = assets[self.close_rows()]
        if self.phases == 2:
            held = held | assets[self.start_bar * 2 :: 2]
        per_bar = held.reshape(len(self.bars), len(self.grid), self.n_symbols).any(axis=2)
        return per_bar.mean(axis=0)

    def trade_records(self) -> np.ndarray:
        return self.portfolio.trades.records

    def stats(self) -> pd.DataFrame:
        """Give the statistics, one row per combination (parameters first)."""
        parts: dict[str, np.ndarray] = equity_stats(
            self.equity(), self.init_cash, self.bars, self.timeframe_seconds
        )
        records = self.trade_records()
        closed = records[records["status"] == 1]
        parts.update(trade_stats(closed["pnl"], closed["col"] // self.n_symbols, len(self.grid)))
        orders = self.portfolio.orders.records
        fees = np.bincount(orders["col"], weights=orders["fees"], minlength=self.columns)
        parts["fees"] = fees.reshape(len(self.grid), self.n_symbols).sum(axis=1)
        parts["exposure"] = self.exposure()
        return pd.concat([self.grid.reset_index(drop=True), stats_frame(parts)], axis=1)

    @property
    def columns(self) -> int:
        return len(self.grid) * self.n_symbols

    def trades(self) -> pd.DataFrame:
        """Give every trade: combination, symbol, side, entry/exit time, price, size, P&L."""
        rec = self.trade_records()
        entry_bar = rec["entry_idx"] // self.phases
        exit_bar = rec["exit_idx"] // self.phases
        reasons = self.reason[rec["exit_idx"], rec["col"]]
        is_open = rec["status"] == 0
        return pd.DataFrame(
            {
                "combination": rec["col"] // self.n_symbols,
                "symbol": np.asarray(self.symbols, dtype=object)[rec["col"] % self.n_symbols],
                "side": np.where(rec["direction"] == 0, "long", "short"),
                "entry_time": self.index[entry_bar],
                "entry_price": rec["entry_price"],
                "size": rec["size"],
                "exit_time": self.index[exit_bar].where(~is_open, pd.NaT),
                "exit_price": np.where(is_open, np.nan, rec["exit_price"]),
                "exit_reason": [
                    "open" if o else REASON_NAMES.get(int(r), "signal")
                    for o, r in zip(is_open, reasons, strict=True)
                ],
                "fees": rec["entry_fees"] + np.where(is_open, 0.0, rec["exit_fees"]),
                "pnl": rec["pnl"],
                "return": rec["return"],
            }
        )


def vectorbt_simulate(
    spec: Spec,
    candles: Mapping[str, pd.DataFrame],
    grid: pd.DataFrame,
    fill_model: FillModel,
    cash: float = 10_000.0,
    shared_cash: bool = True,
    start_bar: int = 0,
) -> VectorbtSimulation:
    """Run every combination of ``grid`` on every symbol of (aligned) ``candles``.

    Bars before ``start_bar`` only warm indicators up: no signal acts before it.
    """
    import vectorbt as vbt

    symbols = list(candles)
    first = candles[symbols[0]]
    index = pd.DatetimeIndex(first.index)
    risk = spec.risk
    stop_loss = np.nan if risk.stop_loss is None else float(risk.stop_loss)
    take_profit = np.nan if risk.take_profit is None else float(risk.take_profit)
    trailing = np.nan if risk.trailing_stop is None else float(risk.trailing_stop)
    tf_s = spec.market.timeframe_seconds
    n, k, s = len(index), len(grid), len(symbols)
    booked = fill_model.on_pair()
    sizes_by_symbol = {sym: entry_sizes(risk, candles[sym], tf_s, booked) for sym in symbols}
    has_stops = not np.isnan([stop_loss, take_profit, trailing]).all()
    has_atr_stop = any(not np.isnan(z.atr_stop).all() for z in sizes_by_symbol.values())
    phases = 2 if (has_stops or has_atr_stop) else 1
    as_fraction = sizes_by_symbol[symbols[0]].as_fraction
    closes: list[np.ndarray] = []
    outputs = []
    for symbol in symbols:
        frame, sizes = candles[symbol], sizes_by_symbol[symbol]
        sig = evaluate(spec, frame, grid)
        none = np.zeros((n, k), dtype=bool)
        if start_bar > 1:
            for sig_frame in (sig.entries, sig.short_entries):
                if sig_frame is not None:
                    sig_frame.iloc[: start_bar - 1] = False
        arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
        outputs.append(
            plan_orders_nb(
                arrays["open"],
                arrays["high"],
                arrays["low"],
                arrays["close"],
                np.ascontiguousarray(sig.entries.to_numpy(dtype=bool)),
                np.ascontiguousarray(sig.exits.to_numpy(dtype=bool)),
                none if sig.short_entries is None else sig.short_entries.to_numpy(dtype=bool),
                none if sig.short_exits is None else sig.short_exits.to_numpy(dtype=bool),
                sizes.long,
                sizes.short,
                sizes.atr_stop,
                stop_loss,
                take_profit,
                trailing,
                float(fill_model.slippage),
                phases,
            )
        )
        valued = np.empty(n * phases)
        valued[phases - 1 :: phases] = arrays["close"]
        if phases == 2:
            valued[0::2] = arrays["open"]
        closes.append(valued)
    rows = n * phases

    def interleave(pos: int) -> np.ndarray:
        # Columns are combination-major: column = combination * n_symbols + symbol.
        out = np.empty((rows, k, s), dtype=outputs[0][pos].dtype)
        for j, arrs in enumerate(outputs):
            out[:, :, j] = arrs[pos]
        return out.reshape(rows, k * s)

    le, lx, se, sx, price, size, reason = (interleave(p) for p in range(7))
    close = np.repeat(np.stack(closes, axis=1)[:, None, :], k, axis=1).reshape(rows, k * s)
    group_by = np.repeat(np.arange(k), s) if (shared_cash and s > 1) else None
    per_column_cash = cash if (shared_cash or s == 1) else cash / s
    init_cash = np.full(k if group_by is not None else k * s, float(per_column_cash))
    buy_fee, sell_fee = fee_rates(fill_model)
    # Buys (long entries, short exits) and sells pay different rates in vectorbt's terms.
    fees = sell_fee if buy_fee == sell_fee else np.where(le | sx, buy_fee, sell_fee)
    pf = vbt.Portfolio.from_signals(
        close=close,
        entries=le,
        exits=lx,
        short_entries=se,
        short_exits=sx,
        size=size,
        size_type=2 if as_fraction else 0,  # vectorbt SizeType: Percent=2, Amount=0
        price=price,
        fees=fees,
        slippage=float(fill_model.slippage),
        init_cash=init_cash,
        cash_sharing=group_by is not None,
        group_by=group_by,
        use_stops=False,
        upon_opposite_entry="ignore",
        accumulate=False,
        freq=None,
    )
    return VectorbtSimulation(
        pf, grid, symbols, index, phases, reason, float(cash), tf_s, start_bar, group_by is not None
    )

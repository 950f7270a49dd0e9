"""Live tables (positions, open orders with cancel, trades, refusals), the portfolio
(equity per quote currency, allocation, risk status) and the strategy comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, NumeralTickFormatter
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from workbench.auth.acting import ActingEngine, ActionFailed, BadInput
from workbench.auth.roles import Action, NotAuthorized
from workbench.ui.formats import percent, quote_of
from workbench.ui.live_risk_rows import limits_text
from workbench.ui.live_strategy_table import drawdown
from workbench.ui.shared import Closed, LiveService
from workbench.ui.stat_tables import display_frame, refill, stat_table

CURVE_POINTS = 2000  # points kept per equity curve in the comparison
POSITION_NUMBERS = ["position", "average_price", "unrealized_pnl", "equity"]
TRADE_NUMBERS = ["trade_no", "amount", "entry_price", "exit_price", "pnl", "fees"]
TOTAL_NUMBERS = ["equity", "allocated", "realized_pnl", "unrealized_pnl", "fees", "return"]
TABLE_ROWS = 500  # newest trades and refusals shown


def _table(numbers: Sequence[str] = (), **kw: Any) -> pn.widgets.Tabulator:
    """Give an empty paged table of display text whose ``numbers`` columns sort by number."""
    return stat_table(
        pd.DataFrame(),
        numbers=numbers,
        sizing_mode="stretch_width",
        pagination="local",
        page_size=10,
        **kw,
    )


def shown(frame: pd.DataFrame, quote_column: str = "symbol") -> pd.DataFrame:
    """Give a frame as traders read it, amounts in each row's quote currency (from its
    market, or its quote column)."""
    if quote_column not in frame:
        return display_frame(frame)
    quotes = [quote_of(str(s)) for s in frame[quote_column]]
    return display_frame(frame, quotes=quotes)


def portfolio_frames(status: pd.DataFrame, allocations: dict[str, float]) -> tuple[Any, Any]:
    """Give total equity per quote currency, and each strategy's share of its quote's total."""
    if status.empty:
        return pd.DataFrame(), pd.DataFrame()
    frame = status.assign(
        quote=status["symbol"].map(quote_of),
        allocation=status["strategy_id"].map(allocations),
    )
    totals = frame.groupby("quote", as_index=False).agg(
        equity=("equity", "sum"),
        allocated=("allocation", "sum"),
        realized_pnl=("realized_pnl", "sum"),
        unrealized_pnl=("unrealized_pnl", "sum"),
        fees=("fees", "sum"),
        strategies=("strategy_id", "count"),
    )
    totals["return"] = totals["equity"] / totals["allocated"] - 1.0
    share = frame["equity"] / frame.groupby("quote")["equity"].transform("sum")
    allocation = frame[["strategy_id", "quote", "allocation", "equity", "state"]].assign(
        share=share
    )
    return totals, allocation


class LiveTables:
    """Positions, open orders, trade history and refused orders, refreshed on events."""

    def __init__(self, service: LiveService, acting: ActingEngine) -> None:
        self.service = service
        self.acting = acting
        self.positions = _table(POSITION_NUMBERS, name="positions")
        cancel = {"cancel": "Cancel"} if acting.may(Action.CANCEL_ORDER) else {}
        self.orders = _table(name="open orders", buttons=cancel)
        self.orders.on_click(self._on_order_click)
        self.trades = _table(TRADE_NUMBERS, name="trades")
        self.refusals = _table(name="refusals")
        self.message = pn.pane.Markdown("")
        # A click picks an order and says which; Confirm cancels that one. The table may have
        # changed in the browser's hands (a row is clicked by position), so what is
        # cancelled is what the trader read, never a row that moved under the pointer.
        self.confirm = pn.widgets.Button(name="Confirm cancel", button_type="danger")
        self.confirm.visible = False
        self.confirm.on_click(self._on_confirm)
        self._picked: str | None = None
        self.refresh_stored()

    def refresh_status(self, status: pd.DataFrame) -> None:
        if status.empty:
            return
        held = status[status["position"] != 0]
        refill(self.positions, shown(held[["strategy_id", "symbol", *POSITION_NUMBERS]]))

    def refresh_stored(self) -> None:
        """Read orders, trades and refusals from the store (after an event changed them)."""
        trading = self.service.store.trading
        orders = trading.orders(open_only=True)
        orders_frame = pd.DataFrame(
            [
                {
                    "client_order_id": o.client_order_id,
                    "strategy_id": o.strategy_id,
                    "symbol": o.symbol,
                    "side": str(o.side),
                    "type": str(o.type),
                    "amount": o.amount,
                    "price": o.price,
                    "state": str(o.state),
                    "filled": o.filled,
                }
                for o in orders
            ],
            columns=[
                "client_order_id",
                "strategy_id",
                "symbol",
                "side",
                "type",
                "amount",
                "price",
                "state",
                "filled",
            ],
        )
        refill(self.orders, orders_frame)
        # The newest rows only: a long run's whole history is not sent on every fill.
        refill(self.trades, shown(trading.round_trips(latest=TABLE_ROWS)))
        refill(self.refusals, trading.refusals(latest=TABLE_ROWS))

    async def _on_order_click(self, event: Any) -> None:
        if event.column != "cancel":
            return
        try:
            row = self.orders.value.iloc[event.row]
        except (IndexError, KeyError, TypeError):
            self.message.object = f"No open order at row {event.row!r}."
            return
        self._picked = str(row["client_order_id"])
        price = "market" if pd.isna(row["price"]) else f"@ {row['price']:g}"
        self.message.object = (
            f"Cancel {self._picked} ({row['strategy_id']}: {row['side']} {row['amount']:g} "
            f"{row['symbol']} {price})?"
        )
        self.confirm.visible = True

    async def _on_confirm(self, _event: Any = None) -> None:
        client_order_id, self._picked = self._picked, None
        self.confirm.visible = False
        if client_order_id is None:
            return
        try:
            await self.acting.cancel_order(client_order_id)
        except (NotAuthorized, BadInput, ActionFailed) as exc:
            self.message.object = f"Not cancelled: {exc}"
            return
        self.message.object = f"Cancel sent for {client_order_id}."
        self.refresh_stored()

    def __panel__(self) -> Any:
        return pn.Tabs(
            ("Positions", self.positions),
            (
                "Open orders",
                pn.Column(
                    pn.Row(self.message, self.confirm), self.orders, sizing_mode="stretch_width"
                ),
            ),
            ("Trades", self.trades),
            ("Refused orders", self.refusals),
            sizing_mode="stretch_width",
        )


class PortfolioView:
    """Equity per quote currency, allocation per strategy, and the risk guard's status."""

    def __init__(self, service: LiveService) -> None:
        self.service = service
        self.totals = stat_table(
            pd.DataFrame(), numbers=TOTAL_NUMBERS, sizing_mode="stretch_width", name="totals"
        )
        self.allocation = _table(["allocation", "equity", "share"], name="allocation")
        self.risk = _table(["drawdown", "halts"], name="risk")

    def refresh(self, status: pd.DataFrame) -> None:
        engine = self.service.engine
        allocations = {sid: live.runner.initial_cash for sid, live in engine.strategies.items()}
        totals, allocation = portfolio_frames(status, allocations)
        refill(self.totals, shown(totals, "quote"))
        refill(self.allocation, shown(allocation, "quote"))
        rows = []
        for sid, live in engine.strategies.items():
            state = live.risk.state
            rows.append(
                {
                    "strategy_id": sid,
                    "drawdown": percent(drawdown(live.runner.equity(), state.peak_equity)),
                    "halted": state.halted_until_ms > (live.runner.last_close_ms or 0),
                    "halts": len(state.halts),
                    "limits": limits_text(live.risk.limits),  # its own; the account's: Risk tab
                }
            )
        refill(self.risk, pd.DataFrame(rows))

    def __panel__(self) -> Any:
        return pn.Column(
            "### Total equity per quote currency",
            self.totals,
            "### Allocation per strategy",
            self.allocation,
            "### Risk status",
            self.risk,
            sizing_mode="stretch_width",
        )


def max_drawdown(returns: Any) -> float:
    """Give the deepest fall from a peak of a return curve, as a positive fraction (0 when it
    never fell), as the backtest's statistics give it."""
    value = 1.0 + np.asarray(returns, dtype=float)
    if not len(value):
        return 0.0
    return float(max(0.0, np.max(1.0 - value / np.maximum.accumulate(value))))


class ComparisonView:
    """Every strategy's return curve on one chart, streaming, beside their metrics."""

    def __init__(self, service: LiveService) -> None:
        self.service = service
        self.figure = figure(
            x_axis_type="datetime",
            height=380,
            sizing_mode="stretch_width",
            tools="xpan,xwheel_zoom,box_zoom,reset,save",
            title="Return per strategy",
            name="comparison",
        )
        self.figure.yaxis.formatter = NumeralTickFormatter(format="0.0%")
        self.sources: dict[str, ColumnDataSource] = {}
        self.metrics = _table(["return", "trades", "win_rate", "max_drawdown"], name="metrics")
        self.pane = pn.pane.Bokeh(self.figure, sizing_mode="stretch_width")
        self.add_missing()

    def add_missing(self) -> None:
        """Give a curve to each strategy not drawn yet (from its stored equity)."""
        engine = self.service.engine
        colors = Category10_10
        for sid, live in engine.strategies.items():
            if sid in self.sources:
                continue
            frame = self.service.store.trading.equity(sid).tail(CURVE_POINTS)
            ms = pd.DatetimeIndex(frame["ts"]).as_unit("ms").asi8.astype(float)
            cash = live.runner.initial_cash
            source = ColumnDataSource(
                {"ts": list(ms), "ret": list(frame["equity"].to_numpy(dtype=float) / cash - 1)}
            )
            self.sources[sid] = source
            color = colors[(len(self.sources) - 1) % len(colors)]
            self.figure.line("ts", "ret", source=source, color=color, legend_label=sid)
        if self.figure.legend:
            self.figure.legend.location = "top_left"
            self.figure.legend.click_policy = "hide"

    def push(self, closed: list[Closed]) -> None:
        points: dict[str, tuple[list[float], list[float]]] = {}
        strategies = self.service.engine.strategies
        for event in closed:
            for sid, said in event.strategies.items():
                if sid in self.sources and "equity" in said:
                    ts, ret = points.setdefault(sid, ([], []))
                    ts.append(float(event.candle.ts_ms))
                    ret.append(said["equity"] / strategies[sid].runner.initial_cash - 1.0)
        for sid, (ts, ret) in points.items():
            self.sources[sid].stream({"ts": ts, "ret": ret}, rollover=CURVE_POINTS)

    def refresh_metrics(self, status: pd.DataFrame) -> None:
        if status.empty:
            return
        wins = self.service.store.trading.win_rates()
        drawdown = {sid: max_drawdown(s.data["ret"]) for sid, s in self.sources.items()}
        metrics = status[["strategy_id", "state", "symbol", "return", "trades"]].assign(
            win_rate=status["strategy_id"].map(wins),
            max_drawdown=status["strategy_id"].map(drawdown),
        )
        refill(self.metrics, shown(metrics))

    def __panel__(self) -> Any:
        return pn.Column(self.pane, self.metrics, sizing_mode="stretch_width")

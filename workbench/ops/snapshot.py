"""A read of an engine's state for /ready, /metrics and the stale-feed alert, taken on its
loop at the moment it is asked (never inside the engine's work on a bar).

`view_of(engine)` reads what the engine already holds in memory (feeds, runners, risk
state); no IO. `lag_bars` is the pure arithmetic of how far a feed is behind in the
market's own bar closes: by the engine's market clock, extrapolated from the exchange's
time when that runs by itself (a venue, a replay at a speed), else the time the exchange
last told (a replay stepped by hand, whose time waits while this machine is busy: the ops
service asks it before each look).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workbench.live.events import StrategyState


@dataclass(frozen=True)
class FeedView:
    """One market the engine follows: how far behind it is, whether it is up."""

    symbol: str
    timeframe: str
    step_ms: int
    last_closed_ms: int | None
    lag_bars: float | None  # None: not known yet (nothing closed, or no market time)
    up: bool
    reconnects: int
    problem: str | None


@dataclass(frozen=True)
class StrategyView:
    """One strategy as it stands: state, equity, drawdown from its peak, position."""

    strategy_id: str
    symbol: str
    state: StrategyState
    equity: float
    peak_equity: float
    drawdown: float  # fraction of the peak, >= 0
    position: float
    open_orders: int
    problem: str | None


@dataclass(frozen=True)
class EngineView:
    """Every feed and strategy of one engine at one moment."""

    exchange: str
    market_now_ms: int | None
    feeds: tuple[FeedView, ...]
    strategies: tuple[StrategyView, ...]
    halted: bool = False  # the account's kill switch is on


def lag_bars(now_ms: int | None, last_closed_ms: int | None, step_ms: int) -> float | None:
    """Give how many bar closes the market's clock has seen since a feed's last closed bar
    (0 when it is current).

    At market time `now_ms` the newest closed bar opened at `floor(now / step) * step - step`;
    a feed whose last closed bar opened at `last_closed_ms` lacks the bars in between.
    """
    if now_ms is None or last_closed_ms is None:
        return None
    newest = now_ms - now_ms % step_ms - step_ms
    return max(0.0, (newest - last_closed_ms) / step_ms)


def drawdown(equity: float, peak: float) -> float:
    """Give the drawdown of `equity` from `peak` as a fraction (0 at or above the peak)."""
    if peak <= 0:
        return 0.0
    return max(0.0, 1.0 - equity / peak)


def view_of(engine: Any, *, strategies: bool = True) -> EngineView:
    """Give what an engine holds now, read on its loop; `strategies=False` reads the feeds
    only (the stale-feed check each second needs no equity of every strategy)."""
    clock = getattr(engine, "market_clock", None)
    now_ms = clock.known_ms() if clock is not None else None
    if now_ms is None and getattr(clock, "speed", None) == 1.0:
        now_ms = int(time.time() * 1000)
    feeds = tuple(
        FeedView(
            feed.symbol,
            feed.timeframe,
            feed.step_ms,
            feed.last_closed_ms,
            lag_bars(now_ms, feed.last_closed_ms, feed.step_ms),
            feed.problem is None,
            feed.stats.reconnects,
            feed.problem,
        )
        for feed in list(engine.feeds.values())
    )
    shown = []
    for sid, live in list(engine.strategies.items()) if strategies else ():
        runner = live.runner
        equity = float(runner.equity())
        peak = max(float(live.risk.state.peak_equity), equity)
        shown.append(
            StrategyView(
                sid,
                runner.symbol,
                live.state,
                equity,
                peak,
                drawdown(equity, peak),
                float(runner.portfolio.position(runner.symbol).amount),
                len(live.orders.open_orders()),
                live.problem,
            )
        )
    halted = getattr(engine, "halted", None) is not None
    return EngineView(engine.exchange, now_ms, feeds, tuple(shown), halted)

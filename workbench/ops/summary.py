"""The daily summary alert: per strategy, the day's P&L, its closed trades and equity now.

P&L of a day is the change of the strategy's marked equity over it (the last mark before the
day against the last mark in it; a strategy started that day counts from its allocation),
so it includes open positions at their marks. Trades are the round trips closed that day.
"""

from __future__ import annotations

import datetime as dt

from workbench.ops.alerts import Alert, AlertLevel, AlertRule


def next_summary_at(now: dt.datetime, hour: int) -> dt.datetime:
    """Give the next time (UTC, naive) the summary is due at `hour`:00 after `now`."""
    due = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return due if due > now else due + dt.timedelta(days=1)


def daily_summary(store: object, day_end: dt.datetime, where: str = "") -> Alert:
    """Give the summary of the 24 hours before `day_end` (UTC, naive) from the store."""
    start = day_end - dt.timedelta(days=1)
    db = store.db  # type: ignore[attr-defined]
    strategies = db.fetchall("SELECT strategy_id, allocation FROM strategies ORDER BY 1")
    lines, total = [], 0.0
    for sid, allocation in strategies:
        before = db.fetchone(
            "SELECT equity FROM equity WHERE strategy_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            [sid, start],
        )
        last = db.fetchone(
            "SELECT equity FROM equity WHERE strategy_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            [sid, day_end],
        )
        trades = db.fetchone(
            "SELECT count(*), coalesce(sum(pnl), 0) FROM round_trips "
            "WHERE strategy_id = ? AND exit_time >= ? AND exit_time < ?",
            [sid, start, day_end],
        ) or (0, 0.0)
        if last is None:
            continue  # not marked yet: nothing happened to it
        opening = float(before[0]) if before else float(allocation)
        equity = float(last[0])
        pnl = equity - opening
        total += pnl
        pct = pnl / opening * 100 if opening else 0.0
        lines.append(
            f"{sid}: P&L {pnl:+.8g} ({pct:+.2f} %), {int(trades[0])} trades "
            f"(closed P&L {float(trades[1]):+.8g}), equity {equity:.8g}"
        )
    body = "\n".join(lines) if lines else "no strategy was marked that day"
    title = f"daily summary {start:%Y-%m-%d}: P&L {total:+.8g}" + (f" ({where})" if where else "")
    return Alert(AlertRule.DAILY_SUMMARY, AlertLevel.INFO, title, body, f"summary:{start:%Y-%m-%d}")

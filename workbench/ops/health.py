"""Readiness: is this engine fit to trade now? Pure assessment of probe results.

/health says only that the process answers. /ready (and `workbench status`) says whether it
is ready: the engine started, the database took a write, the exchange answered (and its
clock is within `max_skew_ms` of ours), the event loop runs timers on time, and every feed
is at most `max_feed_lag_bars` behind. It gives strategies by state and each feed's lag, and
nothing secret: no strategy ids, balances, keys or error texts beyond a check's summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.ops.snapshot import EngineView

MAX_SKEW_MS = 1000.0  # Binance refuses signed requests outside recvWindow (5 s) by default


@dataclass(frozen=True)
class Probe:
    """What one probe found: whether it passed, and the figures it read."""

    ok: bool
    detail: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    """The answer of /ready: ready or not, each check, strategies by state, feeds."""

    ready: bool
    checks: dict[str, Probe]
    strategies: dict[str, int]
    feeds: list[dict[str, Any]]
    halted: bool = False  # the kill switch is on: ready, and doing as it was told

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "checks": {name: asdict(probe) for name, probe in self.checks.items()},
            "strategies": self.strategies,
            "feeds": self.feeds,
            "halted": self.halted,
        }


def assess(
    view: EngineView | None,
    *,
    database: Probe,
    exchange: Probe,
    loop_lag_s: float | None,
    max_feed_lag_bars: float,
    max_loop_lag_s: float,
    max_skew_ms: float = MAX_SKEW_MS,
) -> Readiness:
    """Give the readiness of an engine from its view and the probes' results."""
    checks: dict[str, Probe] = {}
    checks["engine"] = (
        Probe(True, "running", {"strategies": len(view.strategies)})
        if view is not None
        else Probe(False, "the engine has not started yet")
    )
    checks["database"] = database
    skew = exchange.figures.get("clock_skew_ms")
    if exchange.ok and skew is not None and abs(skew) > max_skew_ms:
        exchange = Probe(
            False,
            f"clock skew {skew:+.0f} ms exceeds {max_skew_ms:g} ms: sync this machine's clock "
            "(chrony, systemd-timesyncd)",
            exchange.figures,
        )
    checks["exchange"] = exchange
    if loop_lag_s is None:
        checks["loop"] = Probe(True, "not measured yet")
    else:
        late = loop_lag_s > max_loop_lag_s
        limit = f" (> {max_loop_lag_s:g} s)" if late else ""
        checks["loop"] = Probe(
            not late,
            f"timers {loop_lag_s * 1000:.0f} ms late{limit}",
            {"lag_s": round(loop_lag_s, 4)},
        )
    feeds: list[dict[str, Any]] = []
    strategies: dict[str, int] = {}
    if view is not None:
        behind = []
        for f in view.feeds:
            feeds.append(
                {"symbol": f.symbol, "timeframe": f.timeframe, "lag_bars": f.lag_bars, "up": f.up}
            )
            if not f.up or (f.lag_bars is not None and f.lag_bars > max_feed_lag_bars):
                behind.append(f"{f.symbol} {f.timeframe}")
        checks["feeds"] = Probe(
            not behind,
            f"behind or down: {', '.join(behind)}" if behind else f"{len(feeds)} current",
            {"max_lag_bars": max_feed_lag_bars},
        )
        for s in view.strategies:
            strategies[str(s.state)] = strategies.get(str(s.state), 0) + 1
    ready = all(probe.ok for probe in checks.values())
    return Readiness(ready, checks, strategies, feeds, bool(view and view.halted))

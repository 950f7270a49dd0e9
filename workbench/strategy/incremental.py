"""Incremental evaluation: one closed candle at a time, for live trading.

``IncrementalStrategy(spec, params)`` holds bounded state (a few floats and ring buffers per
indicator and rule node); ``update(candle)`` costs the same on the millionth candle as on the
first. Replaying candles one by one gives the same signals, bar for bar, and the same
indicator floats as ``evaluate`` (the parity promise, tested in tests/strategy). Seed it from
at least ``warmup_bars`` of stored history before the first live candle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.candles import Candle
from workbench.strategy.fields import OHLCV, check_candles, derived_fields
from workbench.strategy.indicators.registry import SOURCE
from workbench.strategy.model import IndicatorDef, Spec
from workbench.strategy.rules_incremental import compile_rule
from workbench.strategy.timeframes import timeframe_seconds

NAN = math.nan
_NS = 1_000_000_000


@dataclass(frozen=True)
class SignalEvent:
    """What the strategy says at one closed candle, with its current indicator values."""

    ts_ns: int  # bar open time, ns since epoch (UTC)
    entry: bool
    exit: bool
    short_entry: bool
    short_exit: bool
    values: dict[str, float]
    ready: bool  # at least warmup_bars candles seen

    @property
    def ts(self) -> pd.Timestamp:
        """Give the bar's open time as a UTC timestamp."""
        return pd.Timestamp(self.ts_ns, tz="UTC")


class _Node:
    """One indicator instance: its incremental object and where its inputs come from."""

    def __init__(self, ind: IndicatorDef, params: Mapping[str, Any]) -> None:
        kind = ind.spec_kind
        self.obj = kind.incremental(ind.bound_args(dict(params)))
        self.inputs = tuple(ind.source if n == SOURCE else n for n in kind.inputs)
        self.outputs = tuple(ind.output_names())
        if len(self.inputs) == 1 and len(self.outputs) == 1:
            self.step = self._step_one  # type: ignore[method-assign]  # the common case, cheap

    def step(self, values: dict[str, float]) -> None:
        outs = self.obj.update(*[values[name] for name in self.inputs])
        for name, value in zip(self.outputs, outs, strict=True):
            values[name] = value

    def _step_one(self, values: dict[str, float]) -> None:
        values[self.outputs[0]] = self.obj.update(values[self.inputs[0]])[0]


class _HigherTimeframe:
    """Aggregates strategy candles into HTF bars and steps the HTF indicators when one closes."""

    def __init__(self, timeframe: str, base_seconds: int, nodes: list[_Node]) -> None:
        self.step_ns = timeframe_seconds(timeframe) * _NS
        self.base_ns = base_seconds * _NS
        self.nodes = nodes
        self.bucket: int | None = None
        self.bar: list[float] = []
        self.closed = True
        self.current = {name: NAN for node in nodes for name in node.outputs}

    def add(self, ts_ns: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        bucket = (ts_ns // self.step_ns) * self.step_ns
        if bucket != self.bucket:
            if not self.closed:
                self._close()
            self.bucket, self.bar, self.closed = bucket, [o, h, lo, c, v], False
        else:
            bar = self.bar
            if h > bar[1]:
                bar[1] = h
            if lo < bar[2]:
                bar[2] = lo
            bar[3] = c
            bar[4] = bar[4] + v
        if ts_ns + self.base_ns >= bucket + self.step_ns:  # this candle closes the HTF bar
            self._close()

    def _close(self) -> None:
        o, h, lo, c, v = self.bar
        values: dict[str, float] = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
        values.update(derived_fields(o, h, lo, c))
        for node in self.nodes:
            node.step(values)
        for name in self.current:
            self.current[name] = values[name]
        self.closed = True


def _never(values: Mapping[str, float]) -> bool:
    return False


class IncrementalStrategy:
    """Evaluates a spec one closed candle at a time with fixed parameter values."""

    def __init__(self, spec: Spec, params: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.params = spec.resolve_params(dict(params or {}))
        self.warmup_bars = spec.warmup_bars(self.params)
        base = spec.market.timeframe_seconds
        self._nodes: list[_Node] = []
        by_tf: dict[str, list[_Node]] = {}
        for ind in spec.indicators.values():
            node = _Node(ind, self.params)
            if ind.timeframe is None:
                self._nodes.append(node)
            else:
                by_tf.setdefault(ind.timeframe, []).append(node)
        self._htf = [_HigherTimeframe(tf, base, nodes) for tf, nodes in by_tf.items()]
        self._outputs = [n for ind in spec.indicators.values() for n in ind.output_names()]
        rules = {
            key: compile_rule(rule, self.params) if rule is not None else _never
            for key, rule in spec.rules.items()
        }
        self._entry, self._exit = rules["entries"], rules["exits"]
        self._short_entry, self._short_exit = rules["short_entries"], rules["short_exits"]
        self.bars_seen = 0
        self.last_ts_ns: int | None = None

    def seed(self, history: pd.DataFrame) -> SignalEvent | None:
        """Feed stored closed candles (oldest first); give the event of the last one."""
        check_candles(history)
        event = None
        idx = pd.DatetimeIndex(history.index)
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        cols = [history[c].to_numpy(dtype=float).tolist() for c in OHLCV]
        for i, ts_ns in enumerate(idx.as_unit("ns").asi8.tolist()):
            event = self._step(ts_ns, cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i])
        return event

    def update(self, candle: Any) -> SignalEvent:
        """Consume one closed candle: a mapping, a pandas row (named by its time) or an object
        with ``ts`` (open time) or ``ts_ms`` (open time, ms since epoch) and OHLCV fields, such
        as ``workbench.candles.Candle``."""
        if type(candle) is Candle:  # the live path, kept cheap
            return self._step(
                int(candle.ts_ms) * 1_000_000,
                float(candle.open),
                float(candle.high),
                float(candle.low),
                float(candle.close),
                float(candle.volume),
            )
        get = candle.get if isinstance(candle, Mapping) else lambda k: getattr(candle, k, None)
        ts_ms = get("ts_ms")
        if ts_ms is not None:
            ts_ns = int(ts_ms) * 1_000_000
        else:
            ts = get("ts")
            if ts is None and isinstance(candle, pd.Series):
                ts = candle.name
            if ts is None:
                raise ValueError("candle has no 'ts' (open time) or 'ts_ms'")
            stamp = pd.Timestamp(ts)
            stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
            ts_ns = stamp.value
        o, h, lo, c, v = (float(get(k)) for k in OHLCV)
        return self._step(ts_ns, o, h, lo, c, v)

    def _step(self, ts_ns: int, o: float, h: float, lo: float, c: float, v: float) -> SignalEvent:
        if self.last_ts_ns is not None and ts_ns <= self.last_ts_ns:
            raise ValueError("candles must arrive in strictly increasing time (closed bars only)")
        self.last_ts_ns = ts_ns
        values: dict[str, float] = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
        values.update(derived_fields(o, h, lo, c))
        for htf in self._htf:
            htf.add(ts_ns, o, h, lo, c, v)
            values.update(htf.current)
        for node in self._nodes:
            node.step(values)
        self.bars_seen += 1
        return SignalEvent(
            ts_ns=ts_ns,
            entry=bool(self._entry(values)),
            exit=bool(self._exit(values)),
            short_entry=bool(self._short_entry(values)),
            short_exit=bool(self._short_exit(values)),
            values={name: values[name] for name in self._outputs},
            ready=self.bars_seen >= self.warmup_bars,
        )

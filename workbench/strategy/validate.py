"""Turn a raw JSON document into a ``Spec``, collecting every problem with its JSON path."""

from __future__ import annotations

import difflib
import re
from typing import Any

from workbench.strategy.errors import Problem, SpecError
from workbench.strategy.indicators.registry import KINDS, PRICE_FIELDS, SOURCE
from workbench.strategy.model import IndicatorDef, Market, ParamDef, Spec
from workbench.strategy.risk import RISK_FRACTIONS, SIZING_METHODS, FixedFraction, Risk
from workbench.strategy.rules import RuleEnv, parse_rule
from workbench.strategy.timeframes import timeframe_seconds

TOP_KEYS = ("name", "description", "market", "params", "indicators", "entry", "exit")
TOP_KEYS += ("short_entry", "short_exit", "risk")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RULE_KEYS = ("entry", "exit", "short_entry", "short_exit")


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def unknown_keys(self, raw: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in raw:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(_join(path, key), f"unknown key {key!r}{hint}")

    def obj(self, raw: Any, path: str) -> dict[str, Any]:
        if isinstance(raw, dict):
            return raw
        self.fail(path, f"expected an object, got {type(raw).__name__}")
        return {}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_spec(raw: Any, source: str | None = None) -> Spec:
    """Give the ``Spec`` for a raw document, or raise ``SpecError`` listing every problem."""
    c = _Collector()
    doc = c.obj(raw, "")
    c.unknown_keys(doc, TOP_KEYS, "")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        c.fail("name", "required: a non-empty string")
    market = _market(c, doc.get("market"))
    params = _params(c, doc.get("params", {}))
    indicators = _indicators(c, doc.get("indicators", {}), params, market)
    series = {f: f for f in PRICE_FIELDS}
    raw_inds = doc.get("indicators", {}) if isinstance(doc.get("indicators"), dict) else {}
    for ind_name, body in raw_inds.items():  # from the raw doc: no cascade of errors
        kind = KINDS.get(body.get("kind")) if isinstance(body, dict) else None
        for out in kind.outputs if kind else ():
            series[f"{ind_name}.{out}"] = f"{ind_name}.{out}"
        if kind and len(kind.outputs) == 1:
            series[ind_name] = f"{ind_name}.{kind.outputs[0]}"
    int_params = [p.name for p in params.values() if p.type is int]
    env = RuleEnv(series, int_params, list(params), c.problems)
    rules: dict[str, Any] = {}
    if "entry" not in doc:
        c.fail("entry", "required: the long (or only) entry rule")
    for key in RULE_KEYS:
        if key in doc:
            rules[key] = parse_rule(doc[key], key, env)
    if "short_exit" in doc and "short_entry" not in doc:
        c.fail("short_exit", "given without a short_entry rule")
    risk = _risk(c, doc.get("risk", {}))
    if c.problems or market is None:
        raise SpecError(c.problems, source)
    return Spec(
        name=name,
        description=str(doc.get("description", "")),
        market=market,
        params=params,
        indicators=indicators,
        entry=rules.get("entry"),
        exit=rules.get("exit"),
        short_entry=rules.get("short_entry"),
        short_exit=rules.get("short_exit"),
        risk=risk,
        raw=doc,
    )


def _market(c: _Collector, raw: Any) -> Market | None:
    if raw is None:
        c.fail("market", "required: {'symbol': 'BASE/QUOTE', 'timeframe': '5m'}")
        return None
    doc = c.obj(raw, "market")
    c.unknown_keys(doc, ("symbol", "timeframe"), "market")
    symbol, tf = doc.get("symbol"), doc.get("timeframe")
    ok = True
    if not isinstance(symbol, str) or "/" not in symbol:
        c.fail("market.symbol", f"required: a symbol like 'ETH/BTC', got {symbol!r}")
        ok = False
    try:
        timeframe_seconds(tf)
    except ValueError as exc:
        c.fail("market.timeframe", str(exc))
        ok = False
    return Market(symbol, tf) if ok else None


def _params(c: _Collector, raw: Any) -> dict[str, ParamDef]:
    out: dict[str, ParamDef] = {}
    for name, body in c.obj(raw, "params").items():
        path = f"params.{name}"
        if not NAME_RE.match(name):
            c.fail(path, "parameter names must be identifiers (letters, digits, _)")
            continue
        doc = c.obj(body, path)
        c.unknown_keys(doc, ("default", "range", "type", "doc"), path)
        default, rng = doc.get("default"), doc.get("range")
        if not _is_num(default):
            c.fail(f"{path}.default", f"required: a number, got {default!r}")
            continue
        values = [default]
        if rng is not None:
            if not (isinstance(rng, list) and len(rng) == 3 and all(_is_num(v) for v in rng)):
                c.fail(f"{path}.range", f"expected [low, high, step] numbers, got {rng!r}")
                continue
            values += rng
        declared = doc.get("type")
        if declared not in (None, "int", "float"):
            c.fail(f"{path}.type", f"expected 'int' or 'float', got {declared!r}")
            continue
        all_int = all(isinstance(v, int) or float(v).is_integer() for v in values)
        ptype = int if declared == "int" or (declared is None and all_int) else float
        if ptype is int and not all_int:
            c.fail(path, "an integer parameter needs integer default and range")
            continue
        low = high = step = None
        if rng is not None:
            low, high, step = (ptype(v) for v in rng)
            if step <= 0:
                c.fail(f"{path}.range", f"step must be > 0, got {step}")
            if low > high:
                c.fail(f"{path}.range", f"low {low} is above high {high}")
            if not low <= ptype(default) <= high:
                c.fail(f"{path}.default", f"default {default} is outside range [{low}, {high}]")
        out[name] = ParamDef(name, ptype, ptype(default), low, high, step, str(doc.get("doc", "")))
    return out


def _indicators(
    c: _Collector, raw: Any, params: dict[str, ParamDef], market: Market | None
) -> dict[str, IndicatorDef]:
    found: dict[str, IndicatorDef] = {}
    doc = c.obj(raw, "indicators")
    names = set(doc)
    for name, body in doc.items():
        ind = _indicator(c, name, body, params, market, doc)
        if ind is not None:
            found[name] = ind
    for name in names & set(PRICE_FIELDS):
        c.fail(f"indicators.{name}", f"{name!r} is a price field; choose another name")
    return _ordered(c, found)


def _indicator(
    c: _Collector,
    name: str,
    body: Any,
    params: dict[str, ParamDef],
    market: Market | None,
    all_raw: dict[str, Any],
) -> IndicatorDef | None:
    path = f"indicators.{name}"
    if not NAME_RE.match(name):
        c.fail(path, "indicator names must be identifiers (letters, digits, _)")
        return None
    doc = c.obj(body, path)
    kind_name = doc.get("kind")
    if kind_name not in KINDS:
        close = difflib.get_close_matches(str(kind_name), list(KINDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(KINDS)}"
        c.fail(f"{path}.kind", f"unknown indicator kind {kind_name!r}{hint}")
        return None
    kind = KINDS[kind_name]
    allowed = ("kind", "timeframe", *kind.arg_names)
    allowed += (SOURCE,) if SOURCE in kind.inputs else ()
    n_before = len(c.problems)
    c.unknown_keys(doc, allowed, path)
    args: dict[str, int | float | str] = {}
    for arg in kind.args:
        value = doc.get(arg.name, arg.default)
        apath = f"{path}.{arg.name}"
        if isinstance(value, str) and value.startswith("$"):
            p = params.get(value[1:])
            if p is None:
                c.fail(apath, f"unknown parameter {value!r}; define it under 'params'")
            elif arg.type is int and p.type is not int:
                c.fail(apath, f"{arg.name} needs an integer; parameter {value!r} is a float")
            elif min(p.default, p.low if p.low is not None else p.default) < arg.minimum:
                c.fail(apath, f"{arg.name} must be >= {arg.minimum}; {value!r} can go below")
            else:
                args[arg.name] = value[1:]
        elif not _is_num(value) or (arg.type is int and not float(value).is_integer()):
            c.fail(apath, f"expected {arg.type.__name__} or '$param', got {value!r}")
        elif value < arg.minimum:
            c.fail(apath, f"{arg.name} must be >= {arg.minimum}, got {value}")
        else:
            args[arg.name] = arg.type(value)
    source = None
    if SOURCE in kind.inputs:
        source = _source(c, doc.get(SOURCE, kind.default_source), f"{path}.source", all_raw)
    tf = doc.get("timeframe")
    if tf is not None and market is not None:
        try:
            sec, base = timeframe_seconds(tf), market.timeframe_seconds
            if sec < base or sec % base:
                c.fail(f"{path}.timeframe", f"must be a multiple of {market.timeframe}, got {tf}")
            elif sec == base:
                tf = None
        except ValueError as exc:
            c.fail(f"{path}.timeframe", str(exc))
    if kind.name == "volatility" and source is not None and source not in PRICE_FIELDS:
        c.fail(f"{path}.source", "volatility needs a price field (log returns need prices > 0)")
    if len(c.problems) > n_before:
        return None
    return IndicatorDef(name, kind.name, args, source, tf)


def _source(c: _Collector, raw: Any, path: str, all_raw: dict[str, Any]) -> str | None:
    if not isinstance(raw, str):
        c.fail(path, f"expected a price field or indicator output, got {raw!r}")
        return None
    if raw in PRICE_FIELDS:
        return raw
    base, _, out = raw.partition(".")
    other = all_raw.get(base)
    kind = KINDS.get(other.get("kind")) if isinstance(other, dict) else None
    if other is None:
        options = list(PRICE_FIELDS) + list(all_raw)
        close = difflib.get_close_matches(raw, options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        c.fail(path, f"unknown source {raw!r}: not a price field or an indicator{hint}")
        return None
    if kind is None:
        return None  # the other indicator's own problem is reported there
    if not out and len(kind.outputs) > 1:
        c.fail(path, f"{base!r} has outputs {', '.join(kind.outputs)}; name one like {base}.X")
        return None
    if out and out not in kind.outputs:
        c.fail(path, f"{base!r} has no output {out!r}; outputs: {', '.join(kind.outputs)}")
        return None
    return f"{base}.{out or kind.outputs[0]}"


def _ordered(c: _Collector, found: dict[str, IndicatorDef]) -> dict[str, IndicatorDef]:
    """Give the indicators in dependency order; report cycles and cross-timeframe sources."""
    order: dict[str, IndicatorDef] = {}
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2 or name not in found:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name) :], name]
            c.fail(f"indicators.{name}.source", f"cycle between indicators: {' -> '.join(cycle)}")
            return
        state[name] = 1
        ind = found[name]
        dep = ind.source.split(".")[0] if ind.source else None
        if dep in found:
            if found[dep].timeframe != ind.timeframe:
                c.fail(f"indicators.{name}.source", f"{dep!r} is on another timeframe")
            visit(dep, [*trail, name])
        state[name] = 2
        order[name] = ind

    for name in found:
        visit(name, [])
    return order


def _risk(c: _Collector, raw: Any) -> Risk:
    doc = c.obj(raw, "risk")
    c.unknown_keys(doc, ("sizing", *RISK_FRACTIONS), "risk")
    fractions: dict[str, float | None] = {}
    for key, high in (("stop_loss", 1.0), ("take_profit", None), ("trailing_stop", 1.0)):
        value = doc.get(key)
        if value is not None and (not _is_num(value) or value <= 0 or (high and value >= high)):
            bound = f"0 < {key} < {high}" if high else f"{key} > 0"
            c.fail(f"risk.{key}", f"a fraction of the entry price with {bound}, got {value!r}")
        fractions[key] = None if value is None else float(value)
    # The strategy's own limits in live trading: fractions of its equity, 0 < x <= 1.
    for key in ("max_position", "daily_loss", "max_drawdown"):
        value = doc.get(key)
        if value is not None and (not _is_num(value) or not 0 < value <= 1):
            c.fail(
                f"risk.{key}", f"a fraction of the strategy's equity, 0 < {key} <= 1, got {value!r}"
            )
        fractions[key] = None if value is None or not _is_num(value) else float(value)
    sizing = FixedFraction(1.0)
    if "sizing" in doc:
        body = c.obj(doc["sizing"], "risk.sizing")
        method = body.get("method")
        if method not in SIZING_METHODS:
            c.fail("risk.sizing.method", f"expected one of {', '.join(SIZING_METHODS)}")
        else:
            cls, fields = SIZING_METHODS[method]
            c.unknown_keys(body, ("method", *fields), "risk.sizing")
            kwargs: dict[str, Any] = {}
            for key, (ftype, required, low, high) in fields.items():
                value = body.get(key)
                path = f"risk.sizing.{key}"
                if value is None:
                    if required:
                        c.fail(path, f"required by sizing method {method!r}")
                    continue
                ok = _is_num(value) and value > low and (high is None or value <= high)
                if not ok or (ftype is int and not float(value).is_integer()):
                    rng = f"> {low}" + (f" and <= {high}" if high is not None else "")
                    c.fail(path, f"expected {ftype.__name__} {rng}, got {value!r}")
                    continue
                kwargs[key] = ftype(value)
            if not any(p.path.startswith("risk.sizing") for p in c.problems):
                sizing = cls(**kwargs)
    return Risk(**fractions, sizing=sizing)

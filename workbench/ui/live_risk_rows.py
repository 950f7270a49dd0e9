"""What the Risk tab shows, and the account limits typed into its form. Pure: no IO, no widgets.

The rows are built from the engine's `Usage` and `Halt` values and from the store's frames
(`RiskStore.halts`, `TradingStore.refusals`); the form's texts become the keyword values of
`AccountLimits`, the inputs named as the settings' `[risk]` table names them (what
`workbench config show` lists), each error naming its input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import pandas as pd

from workbench.auth.acting import BadInput
from workbench.risk.account import AccountLimits, Halt, Usage
from workbench.risk.limits import RiskLimits
from workbench.risk.settings import RiskSettings
from workbench.ui.formats import money, percent

ROWS = 200  # newest halts and refusals shown
HOUR_MS = 3_600_000
#: Limits whose use is a fraction of equity, and those that count.
FRACTIONS = frozenset({"daily loss", "drawdown"})
COUNTS = frozenset({"open positions", "orders per minute"})


def _amount(value: float) -> str:
    return f"{value:.6g}"


def usage_rows(usages: Sequence[Usage]) -> pd.DataFrame:
    """Give one row per limit in force: what is used, what is allowed (fractions in percent,
    amounts in the quote currency), and the use in % (the bar; over 100 when a limit was
    lowered below what is already held)."""
    rows = []
    for u in usages:
        if u.limit in FRACTIONS:
            used, allowed = percent(u.used), percent(u.allowed)
        elif u.limit in COUNTS:
            used, allowed = f"{u.used:.0f}", f"{u.allowed:.0f}"
        else:
            used, allowed = money(u.used, u.quote), money(u.allowed, u.quote)
        rows.append(
            {
                "limit": u.limit,
                "quote": u.quote or "all",
                "used": used,
                "allowed": allowed,
                "use_pct": round(100.0 * u.fraction, 1),
            }
        )
    return pd.DataFrame(rows, columns=["limit", "quote", "used", "allowed", "use_pct"])


def _when(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def halt_text(halt: Halt | None) -> str:
    """Give the kill switch's state as Markdown."""
    if halt is None:
        return "**Trading**: no halt in force."
    flattened = " Every position was closed at market." if halt.flatten else ""
    return (
        f"**Halted** since {_when(halt.at_ms)} by **{halt.by}**: {halt.reason}.  \n"
        f"No new entry on any strategy until a resume; protection stays in place.{flattened}"
    )


def history_rows(halts: pd.DataFrame) -> pd.DataFrame:
    """Give each stored halt and resume, newest first (from `RiskStore.halts`)."""
    columns = ["when", "action", "by", "reason"]
    if halts.empty:
        return pd.DataFrame(columns=columns)
    action = [
        ("halt and flatten" if flatten else "halt") if halted else "resume"
        for halted, flatten in zip(halts["halted"], halts["flatten"], strict=True)
    ]
    return pd.DataFrame(
        {
            "when": pd.to_datetime(halts["halted_at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "action": action,
            "by": halts["by_user"],
            "reason": halts["reason"],
        },
        columns=columns,
    ).head(ROWS)


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return _amount(value)


def numbers_text(detail: Mapping[str, Any]) -> str:
    """Give a refusal's numbers on one line (times as UTC); the other strategies' share last."""
    parts = [
        f"{k} {_when(v) if k.endswith('_ms') and isinstance(v, int) else _number_text(v)}"
        for k, v in detail.items()
        if k != "others"
    ]
    others = detail.get("others")
    if isinstance(others, Mapping) and others:
        shares = ", ".join(f"{sid} {_number_text(v)}" for sid, v in others.items())
        parts.append(f"others: {shares}")
    return " · ".join(parts)


def refusal_rows(refused: pd.DataFrame) -> pd.DataFrame:
    """Give the refused orders (from `TradingStore.refusals`) as rule, numbers, strategy; `bar`
    is the market time of the bar the order was for (the replay's, on the local exchange)."""
    columns = ["bar", "strategy", "symbol", "side", "amount", "rule", "numbers"]
    if refused.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "bar": pd.to_datetime(refused["ts"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "strategy": refused["strategy_id"],
            "symbol": refused["symbol"],
            "side": refused["side"],
            "amount": [float(_amount(a)) for a in refused["amount"]],
            "rule": refused["rule"],
            "numbers": [numbers_text(json.loads(d)) for d in refused["detail"]],
        },
        columns=columns,
    ).head(ROWS)


def limits_text(limits: RiskLimits | None) -> str:
    """Give a strategy's limits set on one line, or "none"."""
    if limits is None:
        return "none"
    values = {f.name: getattr(limits, f.name) for f in fields(limits)}
    drawdown = values.get("max_drawdown_fraction") is not None
    shown = []
    for name, value in values.items():
        if name == "drawdown_cooldown_ms":
            if drawdown:
                shown.append(f"drawdown cool-down {value / HOUR_MS:g} h")
        elif name == "flatten_on_drawdown":
            if drawdown and value:
                shown.append("flatten on drawdown")
        elif value is not None:
            shown.append(f"{name} {_number_text(value)}")
    return ", ".join(shown) or "none"


def strategy_limit_rows(strategies: Mapping[str, Any]) -> pd.DataFrame:
    """Give each strategy's own limits in force (its risk manager's)."""
    return pd.DataFrame(
        [
            {"strategy": sid, "symbol": live.runner.symbol, "limits": limits_text(live.risk.limits)}
            for sid, live in strategies.items()
        ],
        columns=["strategy", "symbol", "limits"],
    )


# -- the limits form ------------------------------------------------------------------------
class Kind(StrEnum):
    """What a limit's input holds, and so how it is read and checked."""

    AMOUNT = "amount"  # > 0, in each market's quote currency
    RATIO = "ratio"  # > 0, may pass 1 (exposure over equity, annualized volatility)
    FRACTION = "fraction"  # in (0, 1]
    COUNT = "count"  # a whole number > 0
    BARS = "bars"  # a whole number >= 2
    HOURS = "hours"  # > 0, kept in ms


@dataclass(frozen=True)
class LimitField:
    """One input of the limits form, named as the settings' `[risk]` table names it."""

    name: str
    limit: str  # its `AccountLimits` field
    kind: Kind

    @property
    def description(self) -> str:
        return str(RiskSettings.model_fields[self.name].description)


LIMIT_FIELDS = (
    LimitField("max_exposure", "max_exposure", Kind.AMOUNT),
    LimitField("max_exposure_fraction", "max_exposure_fraction", Kind.RATIO),
    LimitField("max_open_positions", "max_open_positions", Kind.COUNT),
    LimitField("max_symbol_position", "max_symbol_position", Kind.AMOUNT),
    LimitField("daily_loss", "daily_loss_fraction", Kind.FRACTION),
    LimitField("max_drawdown", "max_drawdown_fraction", Kind.FRACTION),
    LimitField("drawdown_cooldown_h", "drawdown_cooldown_ms", Kind.HOURS),
    LimitField("max_orders_per_minute", "max_orders_per_minute", Kind.COUNT),
    LimitField("max_order_notional", "max_order_notional", Kind.AMOUNT),
    LimitField("price_band", "price_band_fraction", Kind.FRACTION),
    LimitField("volatility_target", "volatility_target", Kind.RATIO),
    LimitField("volatility_lookback", "volatility_lookback", Kind.BARS),
    LimitField("rebalance_every_h", "rebalance_every_ms", Kind.HOURS),
)
#: Inputs that always hold a value (empty: the default); the others' empty is no limit.
DEFAULTED = frozenset({"drawdown_cooldown_h", "volatility_lookback"})


def _parse(field: LimitField, text: str) -> int | float:
    raw = text.strip()  # "0,5" is refused, not read as 5
    percent = field.kind in (Kind.FRACTION, Kind.RATIO) and raw.endswith("%")
    try:
        number = float(raw[:-1]) / 100.0 if percent else float(raw)
    except ValueError:
        raise BadInput(f"{field.name}: a number is needed, got {text!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{field.name}: a finite number is needed, got {text!r}")
    if field.kind in (Kind.COUNT, Kind.BARS):
        least = 2 if field.kind is Kind.BARS else 1
        if not number.is_integer() or number < least:
            raise BadInput(f"{field.name}: a whole number >= {least} is needed, got {text!r}")
        return int(number)
    if number <= 0:
        raise BadInput(f"{field.name}: must be > 0, got {text!r}")
    if field.kind is Kind.FRACTION and number > 1:
        raise BadInput(f"{field.name}: a fraction of at most 1 (100%) is needed, got {text!r}")
    return round(number * HOUR_MS) if field.kind is Kind.HOURS else number


def parse_limits(texts: Mapping[str, str], flatten_on_drawdown: bool = False) -> dict[str, Any]:
    """Give the account limits typed in the form, keyed as `AccountLimits` names them (empty:
    no limit, or the default; a fraction may be typed as "5%"); raise BadInput naming the
    field as the form (and the settings) name it."""
    values: dict[str, Any] = {"flatten_on_drawdown": bool(flatten_on_drawdown)}
    for field in LIMIT_FIELDS:
        text = texts.get(field.name, "")
        if text.strip():
            values[field.limit] = _parse(field, text)
    return values


def _short(value: float) -> str:
    """Give a number as short a text as reads back exactly."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def form_texts(limits: AccountLimits) -> dict[str, str]:
    """Give the form's texts for limits in force (`parse_limits` gives them back exactly)."""
    texts = {}
    for field in LIMIT_FIELDS:
        value = getattr(limits, field.limit)
        if value is None:
            texts[field.name] = ""
        elif field.kind in (Kind.COUNT, Kind.BARS):
            texts[field.name] = str(value)
        elif field.kind is Kind.HOURS:
            text = f"{value / HOUR_MS:g}"
            exact = round(float(text) * HOUR_MS) == value
            texts[field.name] = text if exact else repr(value / HOUR_MS)
        else:
            texts[field.name] = _short(value)
    return texts


def form_summary(limits: AccountLimits) -> str:
    """Give the limits set, named as the form names them, on one line (or "none")."""
    texts = form_texts(limits)
    shown = [f"{name} {text}" for name, text in texts.items() if text and name not in DEFAULTED]
    if limits.max_drawdown_fraction is not None:
        shown.append(f"drawdown_cooldown_h {texts['drawdown_cooldown_h']}")
        if limits.flatten_on_drawdown:
            shown.append("flatten_on_drawdown")
    if limits.volatility_target is not None:
        shown.append(f"volatility_lookback {texts['volatility_lookback']}")
    return ", ".join(shown) or "none"

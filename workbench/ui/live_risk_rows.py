"""What the Risk tab shows, and the account limits typed into its form. Pure: no IO, no widgets.

The rows are built from the engine's `Usage` and `Halt` values and from the store's frames
(`RiskStore.halts`, `TradingStore.refusals`); the form's texts become the keyword values of
`AccountLimits` (named as it names them), with the field named in every error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from workbench.auth.acting import BadInput
from workbench.risk.account import AccountLimits, Halt, Usage

ROWS = 200  # newest halts and refusals shown
HOUR_MS = 3_600_000
#: Limits whose use is a fraction of equity, and those that count.
FRACTIONS = frozenset({"daily loss", "drawdown"})
COUNTS = frozenset({"open positions", "orders per minute"})


def _amount(value: float) -> str:
    return f"{value:.6g}"


def usage_rows(usages: Sequence[Usage]) -> pd.DataFrame:
    """Give one row per limit in force: what is used, what is allowed, and the use in % (the
    bar; over 100 when a limit was lowered below what is already held)."""
    rows = []
    for u in usages:
        if u.limit in FRACTIONS:
            used, allowed = f"{u.used:.2%}", f"{u.allowed:.2%}"
        elif u.limit in COUNTS:
            used, allowed = f"{u.used:.0f}", f"{u.allowed:.0f}"
        else:
            used, allowed = f"{_amount(u.used)} {u.quote}", f"{_amount(u.allowed)} {u.quote}"
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
            "amount": refused["amount"],
            "rule": refused["rule"],
            "numbers": [numbers_text(json.loads(d)) for d in refused["detail"]],
        },
        columns=columns,
    ).head(ROWS)


def limits_text(limits: Any) -> str:
    """Give the limits set in a limits dataclass (a strategy's or the account's) on one line,
    or "none"."""
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
@dataclass(frozen=True)
class LimitField:
    """One input of the limits form: the limit's name, what it holds, what it means."""

    name: str
    kind: str  # "amount", "fraction", "count" or "hours"
    description: str


LIMIT_FIELDS = (
    LimitField("max_exposure", "amount", "total position value, in each quote currency"),
    LimitField("max_exposure_fraction", "fraction", "total position value / account equity"),
    LimitField("max_open_positions", "count", "open positions at once"),
    LimitField("max_symbol_position", "amount", "position value per symbol over strategies"),
    LimitField("daily_loss_fraction", "fraction", "loss since the UTC day's start"),
    LimitField("max_drawdown_fraction", "fraction", "account drawdown that halts entries"),
    LimitField("drawdown_cooldown_h", "hours", "hours the drawdown halt lasts (default 24)"),
    LimitField("max_orders_per_minute", "count", "orders sent per minute"),
    LimitField("max_order_notional", "amount", "largest single order (a fat-finger stop)"),
    LimitField("price_band_fraction", "fraction", "furthest a manual limit price may be"),
)


def _parse(field: LimitField, text: str) -> int | float:
    raw = text.strip()  # "0,5" is refused, not read as 5
    percent = field.kind == "fraction" and raw.endswith("%")
    try:
        number = float(raw[:-1]) / 100.0 if percent else float(raw)
    except ValueError:
        raise BadInput(f"{field.name}: a number is needed, got {text!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{field.name}: a finite number is needed, got {text!r}")
    if field.kind == "count":
        if not number.is_integer():
            raise BadInput(f"{field.name}: a whole number is needed, got {text!r}")
        return int(number)
    if field.kind == "hours":
        if number <= 0:
            raise BadInput(f"{field.name}: must be > 0 hours, got {text!r}")
        return round(number * HOUR_MS)
    return number


def parse_limits(texts: Mapping[str, str], flatten_on_drawdown: bool = False) -> dict[str, Any]:
    """Give the account limits typed in the form (empty: no limit; a fraction may be typed
    as "5%"), keyed as `AccountLimits` names them; raise BadInput naming the field. The
    limits' own rules (> 0, a fraction at most 1) are checked by `AccountLimits`."""
    values: dict[str, Any] = {"flatten_on_drawdown": bool(flatten_on_drawdown)}
    for field in LIMIT_FIELDS:
        text = texts.get(field.name, "")
        if not text.strip():
            continue
        name = "drawdown_cooldown_ms" if field.kind == "hours" else field.name
        values[name] = _parse(field, text)
    return values


def _short(value: float) -> str:
    """Give a number as short a text as reads back exactly."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def form_texts(limits: AccountLimits) -> dict[str, str]:
    """Give the form's texts for limits in force (`parse_limits` gives them back exactly)."""
    texts = {}
    for field in LIMIT_FIELDS:
        if field.kind == "hours":
            ms = limits.drawdown_cooldown_ms
            text = f"{ms / HOUR_MS:g}"
            exact = round(float(text) * HOUR_MS) == ms
            texts[field.name] = text if exact else repr(ms / HOUR_MS)
            continue
        value = getattr(limits, field.name)
        if value is None:
            texts[field.name] = ""
        else:
            texts[field.name] = str(value) if field.kind == "count" else _short(value)
    return texts

"""Numbers as traders read them: returns and drawdowns in percent, ratios to two decimals,
durations in days and hours, amounts in the quote currency (P&L with its sign and colour).

Pure functions of plain numbers, giving display text; the research app, the runs tables, the
live page, the Risk tab and the CLI's text output all format through here. `--json` output
never does: it keeps the raw numbers. Text is plain ASCII where a sorter reads it back
(`-1.50%`, `+0.00120000 BTC`): a table column of such strings sorts by number with
Tabulator's `number` sorter, which reads the leading number and ignores the unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

MISSING = "–"  # no value (NaN, None): an en dash, never "nan"

#: Statistics that are fractions, shown in percent; those with a meaningful sign get one.
PERCENT = frozenset(
    {
        "total_return",
        "cagr",
        "return",
        "max_drawdown",
        "drawdown",
        "win_rate",
        "exposure",
        "share",
        "p_loss",
        "fee_rate",
        "slippage",
        "loss",
        "probability_of_loss",
        "never_recovered",
    }
)
SIGNED_PERCENT = frozenset({"total_return", "cagr", "return"})
#: Statistics that are ratios (of returns to risk, of gains to losses), to two decimals.
RATIOS = frozenset(
    {"sharpe", "sortino", "calmar", "profit_factor", "deflated_sharpe", "efficiency"}
)
#: Walk-forward's in-sample and out-of-sample versions of a statistic read as the statistic.
PREFIXES = ("is_mean_", "is_", "oos_")
#: Statistics that are lengths of time, by the unit they are given in.
DAYS = frozenset({"max_drawdown_days"})
#: Amounts in the quote currency; P&L-like ones carry their sign (and a colour in tables).
AMOUNTS = frozenset({"final_equity", "equity", "cash", "fees", "allocation", "allocated"})
PNL = frozenset({"pnl", "realized_pnl", "unrealized_pnl", "expectancy"})
#: Prices and base-currency sizes: to 8 significant digits (no unit: a price is quote per base).
PRECISE = frozenset({"price", "entry_price", "exit_price", "average_price", "position", "amount"})
PRECISE |= {"size", "filled"}
#: Stablecoins and fiat, shown to the cent; every other quote to 8 decimals (the satoshi).
CENTS = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "EUR", "GBP", "TRY"})


class Tone(StrEnum):
    """How a signed amount reads: a gain, a loss, or neither."""

    GAIN = "gain"
    LOSS = "loss"
    FLAT = "flat"


#: The colour of each tone (green and red readable on white).
COLOURS = {Tone.GAIN: "#1b7f3b", Tone.LOSS: "#c62828", Tone.FLAT: "#555555"}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _infinite(value: float, signed: bool = False) -> str | None:
    if math.isinf(value):
        return ("+∞" if signed else "∞") if value > 0 else "-∞"
    return None


def percent(value: float | None, *, digits: int = 2, signed: bool = False) -> str:
    """Give a fraction in percent: 0.1234 → `12.34%` (`+12.34%` when signed)."""
    if _missing(value):
        return MISSING
    value = float(value)  # type: ignore[arg-type]
    if (inf := _infinite(value, signed)) is not None:
        return inf
    return f"{100.0 * value:{'+' if signed else ''},.{digits}f}%"


def ratio(value: float | None) -> str:
    """Give a ratio to two decimals: 1.2345 → `1.23`; an unbounded one (no losses) → `∞`."""
    if _missing(value):
        return MISSING
    value = float(value)  # type: ignore[arg-type]
    if (inf := _infinite(value)) is not None:
        return inf
    return f"{value:,.2f}"


def duration(seconds: float | None) -> str:
    """Give a length of time in days and hours (`3 d 4 h`), or hours and minutes under a day
    (`5 h 20 min`), or minutes under an hour (`45 min`); rounded to the last unit shown."""
    if _missing(seconds):
        return MISSING
    seconds = float(seconds)  # type: ignore[arg-type]
    if seconds < 0:
        return "-" + duration(-seconds)
    if (inf := _infinite(seconds)) is not None:
        return inf
    hours = round(seconds / 3600.0)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days:,d} d {hours} h" if hours else f"{days:,d} d"
    minutes = round(seconds / 60.0)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def decimals(quote: str | None) -> int:
    """Give the decimals an amount in this quote currency is shown with."""
    if quote is None:
        return 8
    return 2 if quote.upper() in CENTS else 8


def money(value: float | None, quote: str | None = None, *, signed: bool = False) -> str:
    """Give an amount in its quote currency: `1,234.56 USDT`, `+0.00120000 BTC` when signed
    (without a quote, the number alone at 8 decimals)."""
    if _missing(value):
        return MISSING
    value = float(value)  # type: ignore[arg-type]
    unit = f" {quote}" if quote else ""
    if (inf := _infinite(value, signed)) is not None:
        return inf + unit
    places = decimals(quote)
    if round(value, places) == 0:
        value = 0.0  # no `-0.00`: a loss too small to show is no loss
    return f"{value:{'+' if signed else ''},.{places}f}{unit}"


def pnl(value: float | None, quote: str | None = None) -> str:
    """Give a profit or loss with its sign, in its quote currency: `-0.00050000 BTC`."""
    return money(value, quote, signed=True)


def tone(value: float | None) -> Tone:
    """Give whether a signed number is a gain, a loss or neither."""
    if _missing(value) or value == 0:
        return Tone.FLAT
    return Tone.GAIN if value > 0 else Tone.LOSS  # type: ignore[operator]


def tone_of_text(text: Any) -> Tone:
    """Give the tone of signed display text (`+1.2%` a gain, `-3 BTC` a loss, `+0.00%`
    neither)."""
    text = str(text)
    if not any(c in "123456789∞" for c in text.split(" ")[0]):
        return Tone.FLAT  # rounds to zero
    return Tone.GAIN if text[:1] == "+" else Tone.LOSS if text[:1] == "-" else Tone.FLAT


def colour_css(text: Any) -> str:
    """Give the CSS that colours signed display text by its tone (for table styling)."""
    return f"color: {COLOURS[tone_of_text(text)]}"


def quote_of(symbol: str | None) -> str | None:
    """Give a market's quote currency: `ETH/BTC` → `BTC` (None when there is no market)."""
    if not symbol:
        return None
    return str(symbol).split("/")[-1].split(":")[0] or None


def run_quote(symbols: Sequence[str]) -> str | None:
    """Give the one quote currency of a run's markets, None when they have none or several."""
    quotes = {quote_of(s) for s in symbols if s}
    return quotes.pop() if len(quotes) == 1 else None


def base_name(name: str) -> str:
    """Give the statistic a name reads as (walk-forward's `oos_sharpe` reads as `sharpe`)."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


def is_signed(name: str) -> bool:
    """Give whether a statistic is shown with its sign (and coloured by it in tables)."""
    return base_name(name) in SIGNED_PERCENT | PNL


def format_stat(name: str, value: Any, quote: str | None = None) -> str:
    """Give a statistic as display text, by what its name says it is (percent, ratio,
    duration, amount, P&L or count); anything else as a plain number to 6 significant digits."""
    if _missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # a numpy scalar
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    name = base_name(name)
    if name in PERCENT:
        return percent(value, signed=name in SIGNED_PERCENT)
    if name in RATIOS:
        return ratio(value)
    if name in DAYS:
        return duration(value * 86_400.0)
    if name in PNL:
        return pnl(value, quote)
    if name in AMOUNTS:
        return money(value, quote)
    if name in PRECISE:
        return f"{value:.8g}"
    if isinstance(value, int):
        return f"{value:,d}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,d}"
    return f"{value:.6g}"


def format_stats(stats: dict[str, Any], quote: str | None = None) -> dict[str, str]:
    """Give every statistic of a mapping as display text (see `format_stat`)."""
    return {name: format_stat(name, value, quote) for name, value in stats.items()}

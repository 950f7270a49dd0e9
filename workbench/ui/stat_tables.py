"""Tables of statistics as display text that still sort by number, signed columns coloured.

Every number goes through `workbench.ui.formats` (so a table reads like the rest of the app);
Tabulator's `number` sorter reads the leading number of each text back (`-1.50%`, `+0.25 BTC`),
so a click on a header sorts by value, not alphabetically.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import panel as pn

from workbench.ui.formats import colour_css, format_stat, is_signed

#: Tabulator's column settings for a column of formatted numbers.
NUMBER_SORT = {"sorter": "number", "sorterParams": {"thousandSeparator": ","}, "hozAlign": "right"}


def display_frame(
    frame: pd.DataFrame, quote: str | None = None, quotes: Iterable[str | None] | None = None
) -> pd.DataFrame:
    """Give a frame with each numeric column as display text, read by its column name
    (`format_stat`); amounts in ``quote``, or per row in ``quotes`` (one per row)."""
    out = frame.copy()
    per_row = list(quotes) if quotes is not None else None
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].dtype == bool:
            continue
        values = frame[column].tolist()
        if per_row is None:
            out[column] = [format_stat(str(column), v, quote) for v in values]
        else:
            out[column] = [
                format_stat(str(column), v, q) for v, q in zip(values, per_row, strict=True)
            ]
    return out


def number_columns(frame: pd.DataFrame) -> list[str]:
    """Give the columns of a frame that hold numbers (the ones shown as formatted text)."""
    return [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
    ]


def sort_config(columns: Iterable[str]) -> dict[str, Any]:
    """Give the Tabulator configuration that sorts these text columns by their number."""
    return {"columns": [{"field": c, **NUMBER_SORT} for c in columns]}


def signed_colours(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the CSS of each cell: signed statistics coloured by their sign, the rest none (in
    a (stat, value) table, the values of signed stats)."""
    css = pd.DataFrame("", index=frame.index, columns=frame.columns)
    if {"stat", "value"} <= set(frame.columns):
        signed = [is_signed(str(s)) for s in frame["stat"]]
        css["value"] = [
            colour_css(v) if s else "" for v, s in zip(frame["value"], signed, strict=True)
        ]
        return css
    for column in frame.columns:
        if is_signed(str(column)):
            css[column] = [colour_css(v) for v in frame[column]]
    return css


def colour_signed(table: pn.widgets.Tabulator) -> pn.widgets.Tabulator:
    """Colour the table's signed columns (returns, P&L) by their sign, whatever its value."""
    table.style.apply(signed_colours, axis=None)
    return table


def stat_table(
    frame: pd.DataFrame,
    quote: str | None = None,
    *,
    numbers: Iterable[str] = (),
    **params: Any,
) -> pn.widgets.Tabulator:
    """Give a read-only Tabulator of a frame's statistics as display text, numeric columns
    sorting by number (also those named in ``numbers``, for values set later), signed ones
    coloured."""
    sortable = dict.fromkeys([*number_columns(frame), *numbers])
    table = pn.widgets.Tabulator(
        display_frame(frame, quote),
        show_index=False,
        disabled=True,
        configuration=sort_config(sortable),
        **params,
    )
    return colour_signed(table)


def refill(table: pn.widgets.Tabulator, frame: pd.DataFrame) -> None:
    """Show ``frame`` in ``table`` unless it shows that already: a replaced value is drawn
    again in the browser, which detaches the rows (and their buttons) under the pointer."""
    old = table.value
    same = (
        isinstance(old, pd.DataFrame)
        and list(old.columns) == list(frame.columns)
        and old.reset_index(drop=True).equals(frame.reset_index(drop=True))
    )
    if not same:
        table.value = frame

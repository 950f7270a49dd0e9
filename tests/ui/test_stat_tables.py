"""A live table is sent to the browser again only when what it shows changed."""

from __future__ import annotations

import pandas as pd
import panel as pn

from workbench.ui.stat_tables import refill


def _watched() -> tuple[pn.widgets.Tabulator, list[object]]:
    table = pn.widgets.Tabulator(pd.DataFrame({"id": ["a"], "amount": ["1.0"]}))
    sent: list[object] = []
    table.param.watch(lambda event: sent.append(event.new), "value")
    return table, sent


def test_an_equal_frame_is_not_sent_again() -> None:
    table, sent = _watched()
    refill(table, pd.DataFrame({"id": ["a"], "amount": ["1.0"]}))
    assert sent == []


def test_a_changed_cell_row_or_column_is_sent() -> None:
    table, sent = _watched()
    refill(table, pd.DataFrame({"id": ["a"], "amount": ["2.0"]}))
    refill(table, pd.DataFrame({"id": ["a", "b"], "amount": ["2.0", "1.0"]}))
    refill(table, pd.DataFrame({"id": ["a", "b"], "price": ["2.0", "1.0"]}))
    assert [list(frame["id"]) for frame in sent] == [["a"], ["a", "b"], ["a", "b"]]  # type: ignore[index]
    assert list(table.value.columns) == ["id", "price"]


def test_an_empty_table_takes_its_first_rows() -> None:
    table = pn.widgets.Tabulator(pd.DataFrame())
    refill(table, pd.DataFrame({"id": ["a"]}))
    assert list(table.value["id"]) == ["a"]

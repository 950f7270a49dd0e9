"""Fills replay in the order they were booked, never by id (paper ids are hashes)."""

from __future__ import annotations

from pathlib import Path

from workbench.broker.models import Fill, OrderPurpose
from workbench.fills import Side
from workbench.store import Store


def test_an_entry_and_a_same_bar_stop_replay_entry_first(tmp_path: Path) -> None:
    # Both fills carry the bar's time; the stop's id sorts before the entry's.
    entry = Fill("wb-f-1", "wb-f", "s", "ETH/BTC", Side.BUY, 1.0, 0.05, 0.0, 1000)
    stop = Fill(
        "wb-a-1", "wb-a", "s", "ETH/BTC", Side.SELL, 1.0, 0.049, 0.0, 1000, OrderPurpose.STOP_LOSS
    )
    assert stop.fill_id < entry.fill_id
    with Store.open(tmp_path / "f.duckdb") as store:
        store.trading.save_fill(entry)
        store.trading.save_fill(stop)
        store.trading.save_fill(entry)  # a replayed update stores nothing twice
        other = Fill("wb-0-1", "wb-0", "t", "ETH/BTC", Side.BUY, 2.0, 0.05, 0.0, 999)
        store.trading.save_fill(other)
        assert [f.fill_id for f in store.trading.fills("s")] == ["wb-f-1", "wb-a-1"]
        assert [f.purpose for f in store.trading.fills("s")] == ["entry", "stop_loss"]
    # Reopened: the journal's lines were applied once, in order.
    with Store.open(tmp_path / "f.duckdb", read_only=True) as store:
        assert [f.fill_id for f in store.trading.fills("s")] == ["wb-f-1", "wb-a-1"]


def test_fees_keep_their_asset_and_value(tmp_path: Path) -> None:
    fill = Fill(
        "x-1",
        "x",
        "s",
        "ETH/BTC",
        Side.BUY,
        1.0,
        0.05,
        0.001,
        1000,
        fee_currency="ETH",
        fee_quote=0.00005,
    )
    with Store.open(tmp_path / "f.duckdb") as store:
        store.trading.save_fill(fill)
        [back] = store.trading.fills("s")
    assert (back.fee, back.fee_currency, back.fee_quote) == (0.001, "ETH", 0.00005)
    assert back.base_delta == 0.999

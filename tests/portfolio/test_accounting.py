"""Portfolio accounting: cash, average price, realized and unrealized P&L, round trips."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.broker.models import Fill
from workbench.fills import Side
from workbench.portfolio.accounting import Portfolio

_ids = itertools.count()


def fill(side: str, amount: float, price: float, fee: float = 0.0, ts: int = 0) -> Fill:
    n = next(_ids)
    return Fill(f"f{n}", f"o{n}", "s", "ETH/BTC", Side(side), amount, price, fee, ts)


def test_buy_then_sell_realizes_the_price_difference_less_fees() -> None:
    book = Portfolio(cash=1000.0)
    book.apply(fill("buy", 2, 100, fee=0.2, ts=1))
    assert book.cash == pytest.approx(1000 - 200 - 0.2)
    assert book.unrealized({"ETH/BTC": 110}) == pytest.approx(20)
    trip = book.apply(fill("sell", 2, 110, fee=0.22, ts=2))
    assert trip is not None
    assert (trip.entry_ms, trip.exit_ms, trip.amount) == (1, 2, 2)
    assert trip.pnl == pytest.approx(20 - 0.42)
    assert book.cash == pytest.approx(1000 + 20 - 0.42)
    assert book.realized == pytest.approx(20) and book.fees == pytest.approx(0.42)
    assert book.position("ETH/BTC").amount == 0


def test_adding_averages_the_entry_and_partial_exits_keep_it() -> None:
    book = Portfolio(cash=0.0)
    book.apply(fill("buy", 1, 100))
    book.apply(fill("buy", 3, 120))
    pos = book.position("ETH/BTC")
    assert pos.average_price == pytest.approx(115)
    assert book.apply(fill("sell", 2, 130)) is None
    assert pos.average_price == pytest.approx(115)
    assert pos.realized_pnl == pytest.approx(30)
    trip = book.apply(fill("sell", 2, 100))
    assert trip is not None and trip.amount == 4
    assert trip.exit_price == pytest.approx(115)
    assert trip.pnl == pytest.approx(30 - 30)


def test_a_flip_closes_one_trip_and_opens_the_other_side() -> None:
    book = Portfolio(cash=0.0)
    book.apply(fill("buy", 1, 100, fee=1.0))
    trip = book.apply(fill("sell", 3, 90, fee=3.0))
    assert trip is not None and trip.direction == "long"
    assert trip.pnl == pytest.approx(-10 - 1 - 1)
    pos = book.position("ETH/BTC")
    assert (pos.amount, pos.average_price) == (-2, 90)
    short = book.apply(fill("buy", 2, 80, fee=0.0))
    assert short is not None and short.direction == "short"
    assert short.pnl == pytest.approx(20 - 2)


trades = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.floats(0.01, 10),
        st.floats(1, 1000),
        st.floats(0, 0.5),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(trades=trades, mark=st.floats(1, 1000))
def test_equity_is_cash_plus_realized_plus_unrealized_less_fees(
    trades: list[tuple[str, float, float, float]], mark: float
) -> None:
    book = Portfolio(cash=10_000.0)
    for side, amount, price, fee in trades:
        book.apply(fill(side, amount, price, fee))
    marks = {"ETH/BTC": mark}
    expected = 10_000.0 + book.realized + book.unrealized(marks) - book.fees
    assert book.equity(marks) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # Independent check: the position is the signed sum of the fills.
    net = sum(a if s == "buy" else -a for s, a, _, _ in trades)
    assert book.position("ETH/BTC").amount == pytest.approx(net, abs=1e-9)
    closed_pnl = sum(t.pnl for t in book.round_trips)
    if book.position("ETH/BTC").amount == 0:
        assert closed_pnl == pytest.approx(book.realized - book.fees, rel=1e-9, abs=1e-6)


def test_a_fee_in_base_comes_out_of_the_position_and_pnl_counts_its_worth() -> None:
    book = Portfolio(cash=100.0)
    # Binance's default: a buy pays its fee in the asset received.
    buy = Fill("b", "b", "s", "ETH/BTC", Side.BUY, 10.0, 2.0, 0.01, 1, fee_currency="ETH")
    book.apply(buy)
    pos = book.position("ETH/BTC")
    assert pos.amount == pytest.approx(9.99) and book.cash == pytest.approx(80.0)
    assert book.fees == pytest.approx(0.02)  # 0.01 ETH at 2.0
    # Selling what is held pays in quote; the round trip's P&L is the change in cash.
    sell = Fill("x", "x", "s", "ETH/BTC", Side.SELL, 9.99, 2.2, 0.02198, 2, fee_currency="BTC")
    trip = book.apply(sell)
    assert trip is not None and trip.amount == pytest.approx(9.99)
    assert trip.pnl == pytest.approx(book.cash - 100.0)
    assert trip.fees == pytest.approx(0.02 + 0.02198)


def test_fees_paid_in_bnb_are_kept_apart_and_counted_against_equity() -> None:
    book = Portfolio(cash=100.0)
    fill = Fill(
        "b", "b", "s", "ETH/BTC", Side.BUY, 10.0, 2.0, 0.5, 1, fee_currency="BNB", fee_quote=0.015
    )
    book.apply(fill)
    assert book.position("ETH/BTC").amount == 10.0 and book.cash == 80.0
    assert book.fees_apart == {"BNB": 0.5} and book.fees == pytest.approx(0.015)
    assert book.equity({"ETH/BTC": 2.0}) == pytest.approx(100.0 - 0.015)


def test_what_a_lot_rounded_exit_leaves_is_dust_and_the_trade_is_closed() -> None:
    book = Portfolio(cash=100.0, dust=0.001)
    book.apply(
        Fill("b", "b", "s", "ETH/BTC", Side.BUY, 1.234, 2.0, 0.001234, 1, fee_currency="ETH")
    )
    held = book.position("ETH/BTC").amount
    sold = 1.232  # floored to the lot step of 0.001
    trip = book.apply(Fill("x", "x", "s", "ETH/BTC", Side.SELL, sold, 2.0, 0.0, 2))
    assert trip is not None and book.is_flat("ETH/BTC")
    assert book.position("ETH/BTC").amount == pytest.approx(held - sold)

"""Protective legs and balance write-offs: the pure rules behind exchange-side stops."""

from __future__ import annotations

import pytest

from workbench.broker.base import ExchangeStops
from workbench.broker.models import OrderType
from workbench.fills import Protection, Side
from workbench.live.protection import balance_write_offs, protective_legs

LEVELS = Protection(stop_loss=0.095, take_profit=0.105, trail=None, peak=0.1)


def test_an_oco_exchange_gets_both_levels_as_market_stops_of_the_exit_side() -> None:
    legs = protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.OCO, {}, 1001)
    assert [(o.type, o.purpose, o.stop_price) for o in legs] == [
        (OrderType.STOP_LOSS, "stop_loss", 0.095),
        (OrderType.TAKE_PROFIT, "take_profit", 0.105),
    ]
    assert {o.side for o in legs} == {Side.SELL} and {o.amount for o in legs} == {2.0}
    short = protective_legs("s", "ETH/BTC", -2.0, LEVELS, 1000, ExchangeStops.OCO, {}, 1001)
    assert {o.side for o in short} == {Side.BUY} and {o.amount for o in short} == {2.0}


def test_plain_stops_rest_only_the_stop_loss_and_watched_stops_rest_nothing() -> None:
    legs = protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.STOP, {}, 1001)
    assert [o.purpose for o in legs] == ["stop_loss"]
    assert protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.NONE, {}, 1) == []
    assert protective_legs("s", "ETH/BTC", 0.0, LEVELS, 1000, ExchangeStops.OCO, {}, 1) == []
    assert protective_legs("s", "ETH/BTC", 2.0, Protection(), 1000, ExchangeStops.OCO, {}, 1) == []


def test_leg_ids_repeat_for_the_same_attempt_and_change_with_the_next() -> None:
    first = protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.OCO, {}, 1001)
    again = protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.OCO, {}, 1002)
    placed = {"stop_loss": 1, "take_profit": 1}
    redo = protective_legs("s", "ETH/BTC", 2.0, LEVELS, 1000, ExchangeStops.OCO, placed, 1003)
    ids = [o.client_order_id for o in first]
    assert ids == [o.client_order_id for o in again]
    assert not set(ids) & {o.client_order_id for o in redo}
    assert all(len(i) <= 36 for i in ids)


def test_a_shortfall_is_taken_off_the_long_positions_pro_rata() -> None:
    held = {"a": ("ETH/BTC", 3.0), "b": ("ETH/USDT", 1.0), "c": ("ETH/BTC", -1.0)}
    offs = balance_write_offs("ETH", held, 2.0, 5000, 1e-8)
    cuts = {o.order.strategy_id: o.fill.amount for o in offs}
    assert cuts == {"a": pytest.approx(1.5), "b": pytest.approx(0.5)}
    for off in offs:
        assert off.fill.price == 0.0 and off.fill.fee == 0.0 and off.fill.side is Side.SELL
        assert off.fill.client_order_id == off.order.client_order_id
        assert off.order.exchange_order_id is None and off.order.state.is_final
    assert sum(held[s][1] - c for s, c in cuts.items()) == pytest.approx(2.0)


def test_more_on_the_exchange_than_the_strategies_hold_is_left_alone() -> None:
    assert balance_write_offs("ETH", {"a": ("ETH/BTC", 3.0)}, 10.0, 5000, 1e-8) == []
    assert balance_write_offs("ETH", {"a": ("ETH/BTC", 3.0)}, 3.0 - 1e-9, 5000, 1e-8) == []
    [gone] = balance_write_offs("ETH", {"a": ("ETH/BTC", 3.0)}, 0.0, 5000, 1e-8)
    assert gone.fill.amount == pytest.approx(3.0)

"""The shared fill model: prices, fees, limit and stop semantics, the intrabar path."""

from __future__ import annotations

import pytest

from workbench.fills import (
    Exit,
    FeeAsset,
    FillModel,
    Protection,
    Side,
    StopKind,
    bar_path,
    first_exit,
    limit_fill_price,
    path_price,
    stop_trigger_price,
    would_trigger_now,
)


def test_market_orders_pay_slippage_against_the_taker() -> None:
    model = FillModel(fee_rate=0.001, slippage=0.01)
    assert model.market_price(Side.BUY, 100.0) == pytest.approx(101.0)
    assert model.market_price(Side.SELL, 100.0) == pytest.approx(99.0)


def test_fees_are_charged_in_quote_on_both_sides() -> None:
    model = FillModel(fee_rate=0.001, fee_asset=FeeAsset.QUOTE)
    assert model.quote_delta(Side.BUY, 10.0, 2.0) == pytest.approx(-(20.0 + 0.02))
    assert model.quote_delta(Side.SELL, 10.0, 2.0) == pytest.approx(20.0 - 0.02)
    assert model.max_buy_quantity(20.02, 10.0) == pytest.approx(2.0)


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        FillModel(fee_rate=-0.1)
    with pytest.raises(ValueError):
        FillModel(slippage=1.5)


def test_up_bars_visit_the_low_first_and_down_bars_the_high() -> None:
    assert bar_path(10, 12, 9, 11) == (10, 9, 12, 11)
    assert bar_path(10, 12, 9, 9.5) == (10, 12, 9, 9.5)


def test_path_price_interpolates_each_leg_over_a_third_of_the_bar() -> None:
    path = (10.0, 9.0, 12.0, 11.0)
    assert path_price(path, 0.0) == 10.0
    assert path_price(path, 1 / 6) == pytest.approx(9.5)
    assert path_price(path, 1 / 3) == pytest.approx(9.0)
    assert path_price(path, 0.5) == pytest.approx(10.5)
    assert path_price(path, 1.0) == 11.0


@pytest.mark.parametrize(
    ("side", "limit", "bar", "expected"),
    [
        (Side.BUY, 9.5, (10, 12, 9, 11), 9.5),  # crossed inside the bar: at the limit
        (Side.BUY, 10.5, (10, 12, 9, 11), 10),  # opens through the limit: at the open
        (Side.BUY, 8.0, (10, 12, 9, 11), None),  # never reached
        (Side.SELL, 11.5, (10, 12, 9, 11), 11.5),
        (Side.SELL, 9.5, (10, 12, 9, 11), 10),
        (Side.SELL, 12.5, (10, 12, 9, 11), None),
    ],
)
def test_limit_orders_fill_at_the_limit_or_a_better_open(
    side: Side, limit: float, bar: tuple[float, ...], expected: float | None
) -> None:
    open_, high, low, _ = bar
    assert limit_fill_price(side, limit, open_, high, low) == expected


@pytest.mark.parametrize(
    ("kind", "side", "stop", "expected"),
    [
        (StopKind.STOP_LOSS, Side.SELL, 9.5, 9.5),  # long's stop: fires on a fall
        (StopKind.STOP_LOSS, Side.SELL, 10.5, 10),  # gapped: at the open
        (StopKind.TAKE_PROFIT, Side.SELL, 11.5, 11.5),  # long's target: fires on a rise
        (StopKind.STOP_LOSS, Side.BUY, 11.5, 11.5),  # short's stop: fires on a rise
        (StopKind.TAKE_PROFIT, Side.BUY, 9.5, 9.5),  # short's target: fires on a fall
        (StopKind.TAKE_PROFIT, Side.BUY, 8.0, None),
    ],
)
def test_stops_fire_in_binance_directions(
    kind: StopKind, side: Side, stop: float, expected: float | None
) -> None:
    assert stop_trigger_price(kind, side, stop, 10, 12, 9) == expected


def test_a_stop_already_through_would_trigger_now() -> None:
    assert would_trigger_now(StopKind.STOP_LOSS, Side.SELL, 10.0, 9.9)
    assert not would_trigger_now(StopKind.STOP_LOSS, Side.SELL, 10.0, 10.1)
    assert would_trigger_now(StopKind.TAKE_PROFIT, Side.SELL, 10.0, 10.1)


def test_first_exit_follows_the_path_order() -> None:
    # An up bar goes to its low first: the stop-loss wins over the take-profit.
    up_bar = bar_path(10, 12, 9, 11)
    hit, _ = first_exit(Side.BUY, Protection(stop_loss=9.5, take_profit=11.5), up_bar)
    assert hit == Exit(StopKind.STOP_LOSS, 9.5)
    # A down bar goes to its high first: the take-profit wins.
    down_bar = bar_path(10, 12, 9, 9.5)
    hit, _ = first_exit(Side.BUY, Protection(stop_loss=9.5, take_profit=11.5), down_bar)
    assert hit == Exit(StopKind.TAKE_PROFIT, 11.5)


def test_first_exit_fills_gaps_at_the_open() -> None:
    hit, _ = first_exit(Side.BUY, Protection(stop_loss=10.0), (9.0, 8.0, 9.5, 9.2))
    assert hit == Exit(StopKind.STOP_LOSS, 9.0)


def test_trailing_stop_trails_the_peak_along_the_path() -> None:
    # Down bar: up to 12 first (peak 12, level 10.8), then down to 9: stopped at 10.8.
    hit, state = first_exit(Side.BUY, Protection(trail=0.1, peak=10.0), bar_path(10, 12, 9, 9.5))
    assert hit is not None and hit.kind is StopKind.TRAILING_STOP
    assert hit.price == pytest.approx(10.8)
    assert state.peak == 12
    # No exit: the peak is carried to the next bar.
    none, state = first_exit(Side.BUY, Protection(trail=0.5, peak=10.0), bar_path(10, 12, 9, 11))
    assert none is None and state.peak == 12


def test_short_positions_exit_the_other_way() -> None:
    hit, _ = first_exit(Side.SELL, Protection(stop_loss=11.5, take_profit=8.0), (10, 12, 9, 11))
    assert hit == Exit(StopKind.STOP_LOSS, 11.5)

"""Account limits over three strategies on two symbols: just below a limit passes, just past
it is refused with the numbers, the other strategies' share named."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from workbench.broker.models import OrderIntent, OrderPurpose, OrderType
from workbench.fills import Side
from workbench.risk.account import DAY_MS, AccountLimits, AccountRisk, Halt, Holding
from workbench.risk.volatility import RealizedVolatility, entry_scale

NOW = 1_700_000_000_000
ETH, BTC = 2_000.0, 40_000.0
# a: 1 ETH long, b: 0.05 BTC long, c: flat (it places the orders below), d: BTC/ETH (other quote)
BOOKS = [
    Holding("a", "ETH/USDT", 1.0, ETH, 5_000.0, 5_100.0, False),
    Holding("b", "BTC/USDT", 0.05, BTC, 5_000.0, 4_900.0, False),
    Holding("c", "ETH/USDT", 0.0, ETH, 5_000.0, 5_000.0, True),
    Holding("d", "BTC/ETH", 1.0, 20.0, 30.0, 30.0, False),
]
EXPOSURE = 1.0 * ETH + 0.05 * BTC  # USDT: a and b
EQUITY = 15_000.0  # USDT: capital 15 000, P&L +100 - 100


def buy(
    notional: float, *, sid: str = "c", symbol: str = "ETH/USDT", price: float = ETH
) -> OrderIntent:
    return OrderIntent(
        sid, symbol, Side.BUY, notional / price, OrderType.MARKET, purpose=OrderPurpose.ENTRY,
        bar_ts_ms=NOW,
    )  # fmt: skip


def check(
    risk: AccountRisk, intent: OrderIntent, price: float = ETH, books: list[Holding] = BOOKS
) -> object:
    return risk.check(intent, price=price, holdings=lambda: books, now_ms=NOW)


EPS = 1e-6
# rule -> (limits, notional accepted, notional refused, numbers the refusal must carry)
BY_SIZE = {
    "account_exposure": (
        AccountLimits(max_exposure=6_000.0),
        6_000.0 - EXPOSURE - 1.0,
        6_000.0 - EXPOSURE + 1.0,
        {"exposure": EXPOSURE, "allowed": 6_000.0, "equity": EQUITY},
    ),
    "account_exposure_fraction": (
        AccountLimits(max_exposure_fraction=0.5),
        0.5 * EQUITY - EXPOSURE - 1.0,
        0.5 * EQUITY - EXPOSURE + 1.0,
        {"exposure": EXPOSURE, "allowed": 0.5 * EQUITY},
    ),
    "max_symbol_position": (
        AccountLimits(max_symbol_position=3_000.0),
        3_000.0 - ETH - 1.0,
        3_000.0 - ETH + 1.0,
        {"symbol_position": ETH, "limit": 3_000.0, "symbol": "ETH/USDT"},
    ),
    "max_order_notional": (
        AccountLimits(max_order_notional=500.0),
        500.0 - 1.0,
        500.0 + 1.0,
        {"limit": 500.0},
    ),
}


@pytest.mark.parametrize("rule", sorted(BY_SIZE))
def test_a_size_limit_refuses_just_past_it_and_names_the_others(rule: str) -> None:
    limits, below, past, numbers = BY_SIZE[rule]
    risk = AccountRisk(limits)
    assert check(risk, buy(below)) is None
    refusal = check(risk, buy(past))
    assert refusal is not None
    assert refusal.rule == rule.removesuffix("_fraction")
    for key, value in numbers.items():
        assert refusal.detail[key] == pytest.approx(value) if isinstance(value, float) else value
    assert refusal.detail["order_notional"] == pytest.approx(past)
    assert refusal.detail["scope"] == "account" and refusal.detail["quote"] == "USDT"
    # The other strategies' share, in the order's quote only (d trades BTC/ETH).
    assert refusal.detail["others"] == {"a": pytest.approx(ETH), "b": pytest.approx(0.05 * BTC)}


def test_exits_always_pass_even_halted_and_past_every_limit() -> None:
    tight = AccountLimits(max_exposure=1.0, max_order_notional=1.0, max_open_positions=1)
    risk = AccountRisk(tight, halt=Halt("drill", "ops", NOW))
    sell = replace(buy(ETH, sid="a"), side=Side.SELL, purpose=OrderPurpose.EXIT)
    assert check(risk, sell) is None
    assert check(risk, replace(sell, purpose=OrderPurpose.FLATTEN)) is None
    assert check(risk, replace(sell, purpose=OrderPurpose.MANUAL_EXIT)) is None


def test_open_positions_count_refuses_a_new_position_but_not_adding_to_one() -> None:
    risk = AccountRisk(AccountLimits(max_open_positions=2))  # a and b are open in USDT
    refusal = check(risk, buy(100.0))
    assert refusal is not None and refusal.rule == "max_open_positions"
    assert refusal.detail["open_positions"] == 2 and refusal.detail["limit"] == 2
    assert check(risk, buy(100.0, sid="a")) is None  # a adds to its open position
    assert check(AccountRisk(AccountLimits(max_open_positions=3)), buy(100.0)) is None


def test_the_order_rate_counts_the_last_minute_of_wall_time() -> None:
    risk = AccountRisk(AccountLimits(max_orders_per_minute=3))
    for k in range(3):
        assert risk.check(buy(10.0), price=ETH, holdings=lambda: BOOKS, now_ms=NOW + k) is None
        risk.sent(NOW + k)
    refusal = risk.check(buy(10.0), price=ETH, holdings=lambda: BOOKS, now_ms=NOW + 10)
    assert refusal is not None and refusal.rule == "order_rate"
    assert refusal.detail["orders_last_minute"] == 3
    # A minute after the first, it has left the window.
    assert risk.check(buy(10.0), price=ETH, holdings=lambda: BOOKS, now_ms=NOW + 60_000) is None


def test_a_manual_limit_priced_outside_the_band_is_refused() -> None:
    risk = AccountRisk(AccountLimits(price_band_fraction=0.05))
    near = replace(buy(100.0), type=OrderType.LIMIT, price=ETH * 1.049, purpose=OrderPurpose.MANUAL)
    far = replace(near, price=ETH * 1.051)
    assert check(risk, near) is None
    refusal = check(risk, far)
    assert refusal is not None and refusal.rule == "price_band"
    assert refusal.detail["distance"] == pytest.approx(0.051)
    assert refusal.detail["last_price"] == ETH


def test_the_kill_switch_refuses_every_entry_with_who_and_why() -> None:
    risk = AccountRisk(halt=Halt("exchange incident", "ada", NOW - 5))
    for intent in (buy(10.0), replace(buy(10.0), purpose=OrderPurpose.MANUAL)):
        refusal = check(risk, intent)
        assert refusal is not None and refusal.rule == "halted"
        assert refusal.detail == {"reason": "exchange incident", "by": "ada", "since_ms": NOW - 5}


def _books(pnl_a: float, pnl_b: float) -> list[Holding]:
    return [
        BOOKS[0]._replace(equity=5_000.0 + pnl_a),
        BOOKS[1]._replace(equity=5_000.0 + pnl_b),
        BOOKS[2],
    ]


def test_daily_loss_sums_every_strategy_since_the_day_started() -> None:
    risk = AccountRisk(AccountLimits(daily_loss_fraction=0.02))
    day = NOW - NOW % DAY_MS
    risk.mark(day + 1_000, _books(100.0, 0.0))  # the day starts at +100 on 15 000
    start = 15_100.0
    # Together just under 2 % down since the day's start: allowed; one more unit: refused.
    books = _books(100.0 - 0.02 * start + 1.0, 0.0)
    risk.mark(day + 2_000, books)
    assert check(risk, buy(10.0), books=books) is None
    books = _books(100.0 - 0.01 * start, -0.01 * start - 1.0)
    risk.mark(day + 3_000, books)
    refusal = check(risk, buy(10.0), books=books)
    assert refusal is not None and refusal.rule == "account_daily_loss"
    assert refusal.detail["day_start_equity"] == pytest.approx(start)
    assert refusal.detail["loss_fraction"] == pytest.approx((0.02 * start + 1.0) / start)
    # The next UTC day starts again from where the account is.
    risk.mark(day + DAY_MS + 1, books)
    assert check(risk, replace(buy(10.0), bar_ts_ms=day + DAY_MS + 2), books=books) is None


def test_the_drawdown_guard_halts_for_its_cool_down_on_account_equity() -> None:
    limits = AccountLimits(max_drawdown_fraction=0.1, drawdown_cooldown_ms=3_600_000)
    risk = AccountRisk(limits)
    assert risk.mark(NOW, _books(500.0, 500.0)) == []  # peak: 16 000
    assert risk.mark(NOW + 1, _books(0.0, 1_000.0 - 0.1 * 16_000 + 1.0)) == []
    books = _books(0.0, 1_000.0 - 0.1 * 16_000)
    assert risk.mark(NOW + 2, books) == ["USDT"]
    refusal = check(risk, replace(buy(10.0), bar_ts_ms=NOW + 3), books=books)
    assert refusal is not None and refusal.rule == "account_drawdown_guard"
    assert refusal.detail["halted_until_ms"] == NOW + 2 + 3_600_000
    assert check(risk, replace(buy(10.0), bar_ts_ms=NOW + 2 + 3_600_000), books=books) is None


def test_adding_a_strategy_adds_capital_not_profit() -> None:
    risk = AccountRisk(AccountLimits(max_drawdown_fraction=0.05))
    risk.mark(NOW, BOOKS[:2])
    grown = [*BOOKS[:2], Holding("new", "ETH/USDT", 0.0, ETH, 50_000.0, 50_000.0, True)]
    assert risk.mark(NOW + 1, grown) == []
    assert risk.states["USDT"].peak_pnl == pytest.approx(0.0)
    # And taking it away is no loss either.
    assert risk.mark(NOW + 2, BOOKS[:2]) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_exposure": -1.0}, "max_exposure must be > 0"),
        ({"max_open_positions": 2.5}, "max_open_positions is a whole number"),
        ({"daily_loss_fraction": 1.5}, "daily_loss_fraction is a fraction"),
        ({"max_exposure": "lots"}, "max_exposure is a number"),
        ({"max_exposur": 1.0}, "unknown account limits: max_exposur"),
    ],
)
def test_a_wrong_limit_names_the_field_and_the_reason(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccountLimits.from_dict(values)


def test_realized_volatility_is_the_annualized_std_of_the_past_returns() -> None:
    rng = np.random.default_rng(7)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 400)))
    tracked = RealizedVolatility(lookback=50, timeframe_seconds=300)
    for close in closes[:50]:
        tracked.update(close)
    assert tracked.value is None  # 49 returns: not enough yet
    for close in closes[50:]:
        tracked.update(close)
    # The oracle: a plain std of the last 50 log returns, annualized for 5-minute bars.
    returns = [math.log(b / a) for a, b in zip(closes[-51:-1], closes[-50:], strict=True)]
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    assert tracked.value == pytest.approx(std * math.sqrt(365 * 24 * 12), rel=1e-9)


def test_an_entry_is_scaled_down_to_the_target_never_up() -> None:
    assert entry_scale(0.5, 1.0) == 0.5
    assert entry_scale(0.5, 0.25) == 1.0
    assert entry_scale(0.5, None) == 1.0  # not measured yet: unchanged


def test_the_books_are_taken_only_when_a_limit_in_force_reads_them() -> None:
    # Every opening order is checked; building 50 strategies' books for it when no limit
    # reads them cost half a millisecond between a close and its order.
    def untouchable() -> list[Holding]:
        raise AssertionError("the books were taken though no limit reads them")

    blind = AccountLimits(max_order_notional=1e9, price_band_fraction=0.5, max_orders_per_minute=99)
    for limits in (AccountLimits(), blind):
        assert (
            AccountRisk(limits).check(buy(10.0), price=ETH, holdings=untouchable, now_ms=NOW)
            is None
        )
    asked: list[int] = []

    def counted() -> list[Holding]:
        asked.append(1)
        return BOOKS

    reading = AccountLimits(max_exposure=1e9, max_open_positions=99, daily_loss_fraction=0.5)
    assert AccountRisk(reading).check(buy(10.0), price=ETH, holdings=counted, now_ms=NOW) is None
    assert asked == [1]  # once per check, however many limits read them


def test_an_entry_still_working_counts_as_the_position_it_is_about_to_be() -> None:
    # c is flat but has 1 000 USDT of a buy working (sent, not filled): it holds a place
    # among the open positions and adds to the exposure and to its symbol's position.
    working = [*BOOKS[:2], BOOKS[2]._replace(working=1_000.0), BOOKS[3]]
    other = Holding("e", "ETH/USDT", 0.0, ETH, 5_000.0, 5_000.0, True)
    positions = AccountRisk(AccountLimits(max_open_positions=3))
    assert check(positions, buy(100.0, sid="e"), books=[*BOOKS, other]) is None
    refused = check(positions, buy(100.0, sid="e"), books=[*working, other])
    assert refused is not None and refused.rule == "max_open_positions"
    assert refused.detail["open_positions"] == 3 and set(refused.detail["others"]) == {
        "a",
        "b",
        "c",
    }
    exposure = AccountRisk(AccountLimits(max_exposure=EXPOSURE + 1_500.0))
    assert check(exposure, buy(1_000.0, sid="e"), books=[*BOOKS, other]) is None
    refused = check(exposure, buy(1_000.0, sid="e"), books=[*working, other])
    assert refused is not None and refused.detail["exposure"] == pytest.approx(EXPOSURE + 1_000.0)
    symbol = AccountRisk(AccountLimits(max_symbol_position=1.0 * ETH + 1_500.0))
    assert check(symbol, buy(1_000.0, sid="e"), books=[*BOOKS, other]) is None
    refused = check(symbol, buy(1_000.0, sid="e"), books=[*working, other])
    assert refused is not None and refused.rule == "max_symbol_position"

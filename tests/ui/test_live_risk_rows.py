"""The Risk tab's rows and its limits form without a browser: what each limit's bar says,
the halts and refusals as stored, and the form's texts to `AccountLimits` and back."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.auth.acting import BadInput
from workbench.live.events import HaltChanged, LimitsChanged
from workbench.risk.account import AccountLimits, AccountRisk, Halt, Holding, Usage
from workbench.risk.limits import RiskLimits
from workbench.settings import load_settings
from workbench.store import Store
from workbench.ui.live_risk_rows import (
    LIMIT_FIELDS,
    form_summary,
    form_texts,
    halt_text,
    history_rows,
    limits_text,
    numbers_text,
    parse_limits,
    refusal_rows,
    usage_rows,
)
from workbench.ui.shared import LiveService


def test_each_limit_shows_its_use_as_a_share_of_what_it_allows() -> None:
    # Two strategies in BTC holding 0.5 and 0.25 BTC of ETH, one flat in USDT.
    holdings = [
        Holding("a", "ETH/BTC", 10.0, 0.05, 1.0, 1.0, False),
        Holding("b", "ETH/BTC", -5.0, 0.05, 1.0, 1.0, False),
        Holding("c", "BTC/USDT", 0.0, 30_000.0, 1000.0, 1000.0, True),
    ]
    limits = AccountLimits(max_exposure=2.0, max_open_positions=4, max_orders_per_minute=10)
    rows = usage_rows(AccountRisk(limits).usage(holdings, now_ms=0)).to_dict("records")
    exposure = {r["quote"]: r for r in rows if r["limit"] == "exposure"}
    assert exposure["BTC"]["used"] == "0.75000000 BTC"
    assert exposure["BTC"]["allowed"] == "2.00000000 BTC"
    assert exposure["BTC"]["use_pct"] == pytest.approx(100 * 0.75 / 2.0, abs=0.05)
    assert exposure["USDT"]["use_pct"] == 0.0
    positions = next(r for r in rows if r["limit"] == "open positions" and r["quote"] == "BTC")
    assert (positions["used"], positions["allowed"], positions["use_pct"]) == ("2", "4", 50.0)
    rate = next(r for r in rows if r["limit"] == "orders per minute")
    assert rate["quote"] == "all"  # one rate over every market


def test_fractions_show_as_percent_and_a_lowered_limit_past_its_use_shows_over_100() -> None:
    rows = usage_rows(
        [Usage("daily loss", "BTC", 0.012, 0.03), Usage("exposure", "BTC", 1.5, 1.0)]
    ).to_dict("records")
    assert (rows[0]["used"], rows[0]["allowed"], rows[0]["use_pct"]) == ("1.20%", "3.00%", 40.0)
    assert rows[1]["use_pct"] == 150.0


def test_no_limit_in_force_gives_no_rows() -> None:
    assert usage_rows([]).empty


def test_the_halt_state_says_who_halted_why_and_since_when() -> None:
    assert halt_text(None).startswith("**Trading**")
    at = dt.datetime(2024, 3, 5, 14, 30, 7, tzinfo=dt.UTC)
    text = halt_text(Halt("news", "tess", int(at.timestamp() * 1000), flatten=True))
    assert "since 2024-03-05 14:30:07 UTC by **tess**: news" in text
    assert "closed at market" in text


def test_the_history_lists_halts_and_resumes_as_stored_newest_first(store: Store) -> None:
    store.risk.record_halt("local", halted=True, reason="news", by="tess")
    store.risk.record_halt("local", halted=False, reason="resumed", by="ada")
    store.risk.record_halt("local", halted=True, reason="runaway", by="ada", flatten=True)
    store.risk.record_halt("other", halted=True, reason="elsewhere", by="x")
    rows = history_rows(store.risk.halts("local"))
    assert rows[["action", "by", "reason"]].values.tolist() == [
        ["halt and flatten", "ada", "runaway"],
        ["resume", "ada", "resumed"],
        ["halt", "tess", "news"],
    ]
    assert history_rows(store.risk.halts("nowhere")).empty


def test_refusals_show_rule_numbers_and_strategy_with_the_others_share_last(
    store: Store,
) -> None:
    bar_ms = int(dt.datetime(2018, 1, 11, 16, 5, tzinfo=dt.UTC).timestamp() * 1000)
    detail = {"scope": "account", "exposure": 1.25, "allowed": 1.0, "others": {"b": 0.5}}
    save = store.trading.save_refusal
    save("a", bar_ms, "ETH/BTC", "buy", 1.1347266160551235, "entry", "account_exposure", detail)
    save("b", bar_ms + 300_000, "LTC/BTC", "buy", 1.0, "manual", "halted",
         {"by": "tess", "since_ms": bar_ms})  # fmt: skip
    rows = refusal_rows(store.trading.refusals(latest=10)).to_dict("records")
    assert [(r["strategy"], r["rule"]) for r in rows] == [
        ("b", "halted"),
        ("a", "account_exposure"),
    ]
    assert rows[1]["bar"] == "2018-01-11 16:05:00"
    assert rows[1]["amount"] == 1.13473  # six significant digits, as the numbers are shown
    assert rows[1]["numbers"] == "allowed 1 · exposure 1.25 · scope account · others: b 0.5"
    assert rows[0]["numbers"] == "by tess · since_ms 2018-01-11 16:05:00 UTC"


def test_numbers_keep_text_and_counts_as_they_are() -> None:
    assert numbers_text(json.loads('{"orders_last_minute": 12, "limit": 10}')) == (
        "orders_last_minute 12 · limit 10"
    )


def test_limits_text_lists_what_is_set_or_says_none() -> None:
    assert limits_text(None) == "none"
    assert limits_text(RiskLimits()) == "none"
    assert limits_text(RiskLimits(max_position_fraction=0.5)) == "max_position_fraction 0.5"
    guarded = RiskLimits(max_drawdown_fraction=0.1, flatten_on_drawdown=True)
    assert limits_text(guarded) == (
        "max_drawdown_fraction 0.1, drawdown cool-down 24 h, flatten on drawdown"
    )


def test_empty_fields_are_no_limit_and_typed_ones_become_the_limits() -> None:
    values = parse_limits(
        {
            "max_open_positions": " 5 ",
            "daily_loss": "3%",
            "max_exposure_fraction": "120%",  # past 1: more exposure than equity
            "max_exposure": "20000",
            "drawdown_cooldown_h": "1.5",
            "max_order_notional": "",
        },
        flatten_on_drawdown=True,
    )
    assert values == {
        "flatten_on_drawdown": True,
        "max_open_positions": 5,
        "daily_loss_fraction": 0.03,
        "max_exposure_fraction": 1.2,
        "max_exposure": 20000.0,
        "drawdown_cooldown_ms": 5_400_000,
    }
    assert AccountLimits.from_dict(values).max_open_positions == 5
    assert AccountLimits.from_dict(parse_limits({})) == AccountLimits()  # defaults, no limit


@pytest.mark.parametrize(
    ("field", "text", "why"),
    [
        ("max_open_positions", "2.5", "a whole number >= 1 is needed"),
        ("max_open_positions", "0", "a whole number >= 1 is needed"),
        ("volatility_lookback", "1", "a whole number >= 2 is needed"),
        ("max_exposure", "lots", "a number is needed"),
        ("max_exposure", "0,5", "a number is needed"),  # not read as 5
        ("max_exposure", "-1", "must be > 0"),
        ("max_order_notional", "inf", "a finite number is needed"),
        ("drawdown_cooldown_h", "0", "must be > 0"),
        ("daily_loss", "2", "a fraction of at most 1 (100%) is needed"),
        ("price_band", "150%", "a fraction of at most 1 (100%) is needed"),
        ("max_symbol_position", "80%", "a number is needed"),  # % only for the fractions
    ],
)
def test_bad_input_names_the_field_and_what_it_needs(field: str, text: str, why: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_limits({field: text})
    assert str(refused.value) == f"{field}: {why}, got {text!r}"


def test_the_form_has_an_input_for_every_account_limit() -> None:
    # A limit left out of the form would be reset to its default by every change made there.
    limits = {f.name for f in fields(AccountLimits)} - {"flatten_on_drawdown"}
    assert {f.limit for f in LIMIT_FIELDS} == limits
    assert all(f.description and f.description != "None" for f in LIMIT_FIELDS)


def test_the_summary_names_limits_as_the_form_does() -> None:
    assert form_summary(AccountLimits()) == "none"
    limits = AccountLimits(daily_loss_fraction=0.03, max_drawdown_fraction=0.1)
    assert form_summary(limits) == "daily_loss 0.03, max_drawdown 0.1, drawdown_cooldown_h 24"


positive = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)
fraction = st.floats(min_value=1e-9, max_value=1.0)
count = st.integers(min_value=1, max_value=10_000)


@given(
    st.builds(
        AccountLimits,
        max_exposure=st.none() | positive,
        max_exposure_fraction=st.none() | positive,
        max_open_positions=st.none() | count,
        max_symbol_position=st.none() | positive,
        daily_loss_fraction=st.none() | fraction,
        max_drawdown_fraction=st.none() | fraction,
        drawdown_cooldown_ms=st.integers(min_value=1, max_value=10**11),
        flatten_on_drawdown=st.booleans(),
        max_orders_per_minute=st.none() | count,
        max_order_notional=st.none() | positive,
        price_band_fraction=st.none() | fraction,
        volatility_target=st.none() | positive,
        volatility_lookback=st.integers(min_value=2, max_value=100_000),
        rebalance_every_ms=st.none() | st.integers(min_value=1, max_value=10**11),
    )
)
def test_the_form_shows_the_limits_in_force_and_gives_them_back_exactly(
    limits: AccountLimits,
) -> None:
    values = parse_limits(form_texts(limits), limits.flatten_on_drawdown)
    assert AccountLimits.from_dict(values) == limits


def test_halts_and_limit_changes_mark_every_open_page_for_a_redraw() -> None:
    service = LiveService(load_settings())
    page = service.subscribe()
    service._on_event(HaltChanged("local", Halt("news", "tess", 0), "tess", "news"))
    service._on_event(LimitsChanged("local", AccountLimits(max_open_positions=3), "ada"))
    assert page.drain()[3] == {"halt", "limits"}

"""Alert rules delivered through apprise (json://) to a local HTTP receiver: each rule fires
once for its condition and not for the healthy case; duplicates are held back; a sink that
fails is retried, one that hangs never holds up the caller; every alert is stored."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alert_receiver import Receiver

from workbench.auth.accounts import Accounts, LoginRefused
from workbench.auth.throttle import LockoutPolicy
from workbench.broker.models import Order, OrderPurpose, OrderState, OrderType
from workbench.fills import Side
from workbench.live.events import (
    HaltChanged,
    LimitsChanged,
    Notice,
    NoticeKind,
    OrderChanged,
    StateChanged,
    StrategyState,
)
from workbench.ops.alerting import Alerting, AuditWatch
from workbench.ops.alerts import AlertRule, restarted_alert
from workbench.ops.snapshot import EngineView, FeedView
from workbench.ops.summary import daily_summary, next_summary_at
from workbench.risk.account import AccountLimits, Halt
from workbench.settings import Settings
from workbench.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    alerting: Alerting
    store: Store
    receiver: Receiver
    clock: Clock

    def delivered(self, count: int) -> list[dict[str, object]]:
        """Wait until the sender is idle; give what reached the receiver."""
        assert self.alerting.sender.wait_idle(15)
        assert self.receiver.wait_for(count, 2) or count == 0
        return self.receiver.posts


@pytest.fixture
def setup(tmp_path: Path, receiver: Receiver) -> Iterator[Setup]:
    settings = Settings(
        db=str(tmp_path / "a.duckdb"), alert_urls=[receiver.url], alert_dedupe_s=600,
        alert_error_rate=5, alert_error_window_s=300, alert_stale_bars=3,
    )  # fmt: skip
    clock = Clock()
    with Store.open(settings.db) as store:
        alerting = Alerting(store, settings, where="test", clock=clock, backoff_s=0.05).start()
        yield Setup(alerting, store, receiver, clock)
        alerting.stop()


def order(state: OrderState, reason: str | None = None, sid: str = "s1") -> Order:
    return Order(
        "wb-" + "0" * 28, sid, "ETH/BTC", Side.BUY, OrderType.MARKET, 1.0,
        purpose=OrderPurpose.ENTRY, state=state, reason=reason,
    )  # fmt: skip


def test_healthy_events_raise_nothing(setup: Setup) -> None:
    for event in (
        StateChanged("s1", StrategyState.RUNNING),
        StateChanged("s1", StrategyState.PAUSED),
        OrderChanged(order(OrderState.PENDING)),
        OrderChanged(order(OrderState.FILLED)),
        Notice("s1", NoticeKind.RECOVERED, "settled: order:x"),
        Notice("s1", NoticeKind.LATE_EXIT, "exit of bar 123 taken late"),
        LimitsChanged("local", AccountLimits(max_open_positions=3), "ada",
                      AccountLimits(max_open_positions=3)),  # set to what was in force
    ):  # fmt: skip
        setup.alerting.on_event(event)
    for _ in range(2):  # two errors: below the rate
        setup.alerting.on_event(Notice("s1", NoticeKind.DEGRADED, "outcome of x unknown"))
    view = EngineView("local", 0, (FeedView("ETH/BTC", "5m", 300_000, 0, 2.0, True, 0, None),), ())
    assert setup.alerting.rules.on_view(view) == []  # two bars behind: not yet stale
    assert setup.delivered(0) == []
    assert setup.store.ops.alerts().empty


@pytest.mark.parametrize(
    ("events", "rule", "level"),
    [
        (
            [StateChanged("s1", StrategyState.DEGRADED, "feed ETH/BTC 5m down"),
             StateChanged("s1", StrategyState.DEGRADED, "feed ETH/BTC 5m down: again")],
            AlertRule.STRATEGY_DEGRADED, "warning",
        ),
        (
            [StateChanged("s1", StrategyState.ERROR, "Traceback...\nZeroDivisionError: x")],
            AlertRule.STRATEGY_ERROR, "failure",
        ),
        (
            [Notice("s1", NoticeKind.RISK, "drawdown guard tripped at 0.82")],
            AlertRule.DRAWDOWN_GUARD, "failure",
        ),
        (
            [OrderChanged(order(OrderState.REJECTED, 'binance {"code":-2010,"msg":"Account '
                                'has insufficient balance for requested action."}'))],
            AlertRule.ORDER_REJECTED, "warning",
        ),
        (
            [Notice("s1", NoticeKind.RECONCILE, "order wb-1 found filled on the exchange")],
            AlertRule.RECONCILE, "warning",
        ),
        (
            [Notice("s1", NoticeKind.DEGRADED, f"outcome of wb-{i} unknown") for i in range(7)],
            AlertRule.EXCHANGE_ERRORS, "warning",
        ),
        (
            [LimitsChanged("local", AccountLimits(max_open_positions=5), "ada",
                           AccountLimits(max_open_positions=3))],
            AlertRule.LIMITS_CHANGED, "warning",
        ),
    ],
    ids=["degraded", "error", "guard", "rejected", "reconcile", "error_rate", "limits"],
)  # fmt: skip
def test_each_rule_fires_once_for_its_condition(
    setup: Setup, events: list[object], rule: AlertRule, level: str
) -> None:
    for event in events:
        setup.alerting.on_event(event)  # type: ignore[arg-type]
    posts = setup.delivered(1)
    assert len(posts) == 1, [p["title"] for p in posts]
    assert posts[0]["type"] == level
    stored = setup.store.ops.alerts()
    assert list(stored["rule"]) == [str(rule)]
    assert list(stored["status"]) == ["sent"] and list(stored["attempts"]) == [1]
    assert stored["title"].iloc[0] == posts[0]["title"]


def test_kill_switch_halts_and_releases_alert(setup: Setup) -> None:
    halt = Halt("daily loss limit", "alice", 1_700_000_000_000, flatten=True)
    setup.alerting.on_event(HaltChanged("binance", halt, "alice", "daily loss limit"))
    setup.alerting.on_event(HaltChanged("binance", None, "bob", "all clear"))
    posts = setup.delivered(2)
    assert [p["type"] for p in posts] == ["failure", "warning"]
    assert "halted, flattening" in str(posts[0]["title"])
    assert "alice" in str(posts[0]["message"]) and "bob" in str(posts[1]["message"])
    assert list(setup.store.ops.alerts()["rule"]) == ["kill_switch", "kill_switch"]


def test_a_stale_feed_alerts_once_per_episode(setup: Setup) -> None:
    def view(lag: float) -> EngineView:
        feed = FeedView("ETH/BTC", "5m", 300_000, 0, lag, lag < 3, 1, None)
        return EngineView("local", 0, (feed,), ())

    for lag in (0, 3, 4, 5, 0, 0):  # stale, staying stale, then caught up
        for alert in setup.alerting.rules.on_view(view(lag)):
            setup.alerting.raise_alert(alert)
    assert len(setup.delivered(1)) == 1
    setup.clock.now += 601  # past the dedupe window: a new episode alerts again
    for alert in setup.alerting.rules.on_view(view(6)):
        setup.alerting.raise_alert(alert)
    assert len(setup.delivered(2)) == 2


def test_duplicates_are_held_back_and_counted_in_the_next(setup: Setup) -> None:
    for i in range(4):
        setup.alerting.on_event(StateChanged("s1", StrategyState.ERROR, f"boom {i}"))
        setup.alerting.on_event(StateChanged("s1", StrategyState.RUNNING))
    assert len(setup.delivered(1)) == 1
    setup.clock.now += 601
    setup.alerting.on_event(StateChanged("s1", StrategyState.ERROR, "boom again"))
    posts = setup.delivered(2)
    assert len(posts) == 2
    assert "3 more like it held back" in str(posts[1]["message"])


def test_failed_logins_and_a_lockout_from_the_audit_log(setup: Setup) -> None:
    accounts = Accounts(setup.store, policy=LockoutPolicy(3, 30, 60))
    watch = AuditWatch(setup.store, setup.alerting)
    assert watch.poll() == 0
    for _ in range(3):
        with pytest.raises(LoginRefused):
            accounts.login("mallory", "guess", "198.51.100.7")
    watch.poll()
    posts = setup.delivered(2)
    rules = list(setup.store.ops.alerts()["rule"])
    # Three failures from one name and address: one failed-login alert (the others held as
    # duplicates), and the lockout the third one caused.
    assert sorted(rules) == ["lockout", "login_failed"]
    assert any("mallory" in str(p["title"]) and "198.51.100.7" in str(p["title"]) for p in posts)


def test_a_start_after_an_unclean_stop_alerts(setup: Setup) -> None:
    ops = setup.store.ops
    assert ops.start_run("run1", "live", "host", 11) is None  # the first ever
    ops.stop_run("run1")
    assert ops.start_run("run2", "live", "host", 12) is None  # after a clean stop: quiet
    previous = ops.start_run("run3", "live", "host", 13)  # run2 never stopped
    assert previous is not None and previous.pid == 12
    setup.alerting.raise_alert(restarted_alert(previous, "live on host"))
    posts = setup.delivered(1)
    assert "unclean stop" in str(posts[0]["title"]) and "pid 12" in str(posts[0]["message"])


def test_a_failing_sink_is_retried_until_it_takes_the_alert(setup: Setup) -> None:
    setup.receiver.fail_next = 2
    setup.alerting.on_event(Notice("s1", NoticeKind.RISK, "drawdown guard tripped at 0.7"))
    assert len(setup.delivered(1)) == 1
    stored = setup.store.ops.alerts()
    assert list(stored["status"]) == ["sent"] and list(stored["attempts"]) == [3]


def test_the_history_hears_each_row_when_it_is_stored_raised_then_delivered(
    setup: Setup,
) -> None:
    """The dashboard reads the alert history when told a row was written: once when the
    alert is raised (queued), again when a slow sink finally took it (sent). A fixed delay
    after the raise missed the row on a busy machine and kept showing "queued"."""
    seen: list[list[str]] = []
    setup.alerting.sender.stored.append(
        lambda alert: seen.append(list(setup.store.ops.alerts()["status"]))
    )
    setup.receiver.hold = threading.Event()
    setup.alerting.on_event(StateChanged("s1", StrategyState.ERROR, "boom"))
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [["queued"]]  # stored and told before the sink answered
    setup.receiver.hold.set()
    assert len(setup.delivered(1)) == 1
    assert seen == [["queued"], ["sent"]]


def test_a_hanging_sink_never_holds_up_the_caller(setup: Setup) -> None:
    setup.receiver.hold = threading.Event()
    for i in range(20):  # would never return if it waited on the sink
        setup.alerting.on_event(StateChanged(f"s{i}", StrategyState.ERROR, "boom"))
    assert setup.receiver.posts == []  # nothing delivered yet: the sink holds every answer
    setup.receiver.hold.set()
    assert len(setup.delivered(20)) == 20


def test_a_dead_sink_is_logged_and_stored_as_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(db=str(tmp_path / "d.duckdb"), alert_urls=["json://127.0.0.1:9/x"])
    with Store.open(settings.db) as store:
        alerting = Alerting(store, settings, clock=Clock(), backoff_s=0.01).start()
        alerting.on_event(StateChanged("s1", StrategyState.ERROR, "boom"))
        assert alerting.sender.wait_idle(20)
        alerting.stop()
        stored = store.ops.alerts()
    assert list(stored["status"]) == ["failed"] and list(stored["attempts"]) == [4]
    assert "not delivered" in caplog.text


def test_the_daily_summary_gives_each_strategys_day(setup: Setup) -> None:
    db = setup.store.db
    day = dt.datetime(2024, 3, 2)
    for sid, allocation in (("a", 1.0), ("b", 2.0), ("idle", 1.0)):
        db.execute(
            "INSERT INTO strategies (strategy_id, spec_name, spec_json, params_json, exchange, "
            "symbol, timeframe, broker, allocation, state) "
            "VALUES (?, 'x', '{}', '{}', 'local', 'ETH/BTC', '5m', 'paper', ?, 'running')",
            [sid, allocation],
        )
    marks = [
        ("a", day - dt.timedelta(days=1, hours=2), 1.10),  # before the day: its opening
        ("a", day - dt.timedelta(hours=5), 1.25),
        ("a", day - dt.timedelta(minutes=5), 1.21),  # its close
        ("a", day + dt.timedelta(minutes=5), 9.99),  # the next day: not counted
        ("b", day - dt.timedelta(hours=3), 1.80),  # started that day: from its allocation
    ]
    for sid, ts, equity in marks:
        db.execute(
            "INSERT INTO equity (strategy_id, ts, equity, cash, position, price) "
            "VALUES (?, ?, ?, 0, 0, 1)",
            [sid, ts, equity],
        )
    db.execute(
        "INSERT INTO round_trips (strategy_id, trade_no, symbol, direction, entry_time, "
        "exit_time, amount, entry_price, exit_price, pnl, fees) "
        "VALUES ('a', 1, 'ETH/BTC', 'long', ?, ?, 1, 1, 1.1, 0.05, 0.001)",
        [day - dt.timedelta(hours=6), day - dt.timedelta(hours=4)],
    )
    alert = daily_summary(setup.store, day, "test")
    setup.alerting.raise_alert(alert)
    (post,) = setup.delivered(1)  # through apprise, as the service's daily tick sends it
    assert post["title"] == alert.title and post["message"] == alert.body
    assert list(setup.store.ops.alerts()["rule"]) == ["daily_summary"]
    lines = alert.body.splitlines()
    assert lines[0] == (
        f"a: P&L {1.21 - 1.10:+.8g} ({(1.21 - 1.10) / 1.10 * 100:+.2f} %), 1 trades "
        f"(closed P&L {0.05:+.8g}), equity 1.21"
    )
    assert lines[1].startswith(f"b: P&L {1.80 - 2.0:+.8g}")
    assert len(lines) == 2  # "idle" was never marked
    assert alert.title.startswith(f"daily summary 2024-03-01: P&L {1.21 - 1.10 + 1.80 - 2.0:+.8g}")
    assert next_summary_at(dt.datetime(2024, 3, 2, 0, 0, 1), 0) == dt.datetime(2024, 3, 3)
    assert next_summary_at(dt.datetime(2024, 3, 2, 5), 8) == dt.datetime(2024, 3, 2, 8)


BOT_TOKEN = "123456789:canaryBOTtoken0a1b2c3d"
HOOK_TOKEN, HEADER_TOKEN = "canaryHOOK5e6f7a8b", "canaryHDR9c0d1e2f"
SINK_PASSWORD = "canaryPW3a4b5c"
DEAD_SINK = f"json://alerts:{SINK_PASSWORD}@127.0.0.1:9/hooks/{HOOK_TOKEN}?+X-Token={HEADER_TOKEN}"


def test_alert_url_tokens_are_hidden_from_logs_config_show_and_doctor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from typer.testing import CliRunner

    from workbench.auth import redact
    from workbench.cli import app

    canaries = (HOOK_TOKEN, HEADER_TOKEN, SINK_PASSWORD)
    # Telegram's token is the URL's "host": apprise logs it inside the API address it posts
    # to (never contacted here: no network in tests).
    redact.install(redact.settings_secrets(Settings(alert_urls=[f"tgram://{BOT_TOKEN}/55555"])))
    line = f"Telegram POST URL: https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"
    assert "canaryBOT" not in redact.redact(line) and "api.telegram.org" in redact.redact(line)

    settings = Settings(db=str(tmp_path / "t.duckdb"), alert_urls=[DEAD_SINK])
    with Store.open(settings.db) as store, caplog.at_level(logging.DEBUG):
        alerting = Alerting(store, settings, clock=Clock(), backoff_s=0.01).start()
        alerting.on_event(StateChanged("s1", StrategyState.ERROR, "boom"))
        assert alerting.sender.wait_idle(20)
        alerting.stop()
    assert "hooks/" in caplog.text or "127.0.0.1" in caplog.text  # apprise said where it went
    env = {"WORKBENCH_ALERT_URLS": DEAD_SINK, "WORKBENCH_DB": str(tmp_path / "d.duckdb")}
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show", "--json"], env=env)
    checked = runner.invoke(app, ["doctor", "--json"], env=env)  # sends a test message
    assert shown.exit_code == 0 and "alert_urls" in shown.output
    assert "alert sink json://" in checked.output
    for text, where in (
        (caplog.text, "log lines"),
        (shown.output, "config show"),
        (checked.output, "doctor"),
    ):
        for canary in canaries:
            assert canary not in text, f"{canary} in {where}"

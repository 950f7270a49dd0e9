"""Structured logs: JSON lines off a terminal with the live path's ids as fields, readable
lines on one, a rotated file, and keys that never appear."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from workbench.auth import redact
from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.fills import Side
from workbench.live.events import FillBooked, OrderChanged, StateChanged, StrategyState
from workbench.ops.eventlog import EventLog
from workbench.ops.logs import setup_logging, stop_logging
from workbench.settings import Settings

CID = "wb-" + "ab12" * 7


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def written(stream: io.StringIO) -> str:
    """Give what reached the stream once the writer thread wrote every queued record."""
    stop_logging()
    return stream.getvalue()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in written(stream).splitlines() if line.strip()]


def test_json_lines_carry_the_strategy_the_order_and_the_exchange(restore_root: None) -> None:
    stream = io.StringIO()  # not a terminal: JSON under `auto`
    setup_logging(Settings(log_format="auto"), stream, exchange="binance")
    events = EventLog()
    order = Order(CID, "sma-ETHBTC", "ETH/BTC", Side.BUY, OrderType.MARKET, 0.5)
    events(StateChanged("sma-ETHBTC", StrategyState.RUNNING))
    events(OrderChanged(order.update(state=OrderState.REJECTED, reason="insufficient")))
    events(FillBooked(Fill("f1", CID, "sma-ETHBTC", "ETH/BTC", Side.BUY, 0.5, 0.07, 0.0, 1)))
    # The engine's own records name ids in the message: they become fields too.
    logging.getLogger("workbench.live.engine").warning(
        "sma-ETHBTC: entry held back: outcome of %s unknown", CID
    )
    logging.getLogger("ccxt").warning("not ours: sma-ETHBTC")
    records = lines(stream)
    assert [r["event"] for r in records[:3]] == ["state", "order", "fill"]
    for record in records[:4]:
        assert record["strategy_id"] == "sma-ETHBTC"
        assert record["exchange"] == "binance"
        assert {"time", "level", "logger", "message"} <= set(record)
    assert records[1]["client_order_id"] == CID and records[1]["level"] == "WARNING"
    assert records[2]["client_order_id"] == CID
    assert records[3]["client_order_id"] == CID and records[3]["logger"] == "workbench.live.engine"
    assert "strategy_id" not in records[4]  # other libraries' records are left as they are


def test_a_terminal_gets_readable_lines(restore_root: None) -> None:
    stream = Tty()
    setup_logging(Settings(log_format="auto"), stream)
    EventLog()(StateChanged("s1", StrategyState.DEGRADED, "feed down"))
    text = written(stream)
    assert "WARNING" in text and "state degraded: feed down" in text and "strategy_id=s1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])
    forced = io.StringIO()
    setup_logging(Settings(log_format="text"), forced)  # text even off a terminal
    logging.getLogger("workbench.x").info("hello")
    assert written(forced).rstrip().endswith("workbench.x: hello")


def test_the_log_file_rotates_and_keeps_its_backups(tmp_path: Path, restore_root: None) -> None:
    path = tmp_path / "logs" / "workbench.jsonl"
    settings = Settings(log_file=path, log_max_bytes=2048, log_backups=2, log_format="text")
    setup_logging(settings, io.StringIO())
    log = logging.getLogger("workbench.test")
    for i in range(200):
        log.info("line %d of the rotation test", i)
    stop_logging()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["workbench.jsonl", "workbench.jsonl.1", "workbench.jsonl.2"]
    for file in path.parent.iterdir():
        assert file.stat().st_size <= 2048 + 200
        for line in file.read_text().splitlines():
            assert json.loads(line)["logger"] == "workbench.test"
    newest = json.loads(path.read_text().splitlines()[-1])
    assert newest["message"] == "line 199 of the rotation test"


def test_keys_never_reach_a_log_line(restore_root: None) -> None:
    key, secret = "K3yPlantedForTheLogTest", "S3cretPlantedForTheLogTest"
    redact.install([key, secret])
    stream = io.StringIO()
    setup_logging(Settings(log_format="json"), stream)
    log = logging.getLogger("workbench.live.engine")
    log.warning("signed with %s", secret, extra={"strategy_id": f"leak-{key}"})
    try:
        raise RuntimeError(f"exchange said: bad key {key}")
    except RuntimeError:
        log.exception("order failed")
    text = written(stream)
    assert key not in text and secret not in text
    assert text.count("[redacted]") >= 3
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 2 and "RuntimeError" in str(records[1]["message"])


def test_the_json_console_and_the_file_get_the_same_lines(
    tmp_path: Path, restore_root: None
) -> None:
    # A record is rendered once for both (the writer thread keeps the last line): each line
    # must still be its own record's, in order, in both.
    path = tmp_path / "workbench.jsonl"
    stream = io.StringIO()
    setup_logging(Settings(log_file=path, log_format="json"), stream, exchange="local")
    events = EventLog()
    for i in range(50):
        events(StateChanged(f"s{i}", StrategyState.RUNNING))
        logging.getLogger("workbench.live.engine").info("s%d: looked at", i)
    console = lines(stream)
    assert [r["strategy_id"] for r in console] == [f"s{i // 2}" for i in range(100)]
    assert [r["logger"] for r in console[:2]] == ["workbench.live.events", "workbench.live.engine"]
    assert [json.loads(line) for line in path.read_text().splitlines()] == console

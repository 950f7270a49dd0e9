"""`workbench db copy`: a DuckDB database moved to PostgreSQL and back comes back equal, table
by table; `db status` and `db migrate` on both."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from shipped import CANDLE_FILES, shipped
from typer.testing import CliRunner

from workbench.broker.models import Fill, Order, OrderState, OrderType
from workbench.cli import app
from workbench.fills import Side
from workbench.portfolio.accounting import RoundTrip
from workbench.risk.limits import DAY_MS, RiskState
from workbench.store import Store
from workbench.store.migrations import latest_version
from workbench.store.runs import RunRecord

T0 = 1_600_000_000_000


def fill_every_table(store: Store) -> None:
    """Put rows with NULLs, arrays, text and times in every table."""
    for path in CANDLE_FILES[:2]:
        symbol, candles = shipped(path)
        store.candles.write("local", symbol, "5m", candles)
    t = store.trading
    t.save_strategy("s1", spec_name="sma", spec_json="{}", params={"fast": 5}, exchange="local",
                    symbol="ETH/BTC", timeframe="5m", broker="paper", allocation=1.5,
                    state="running")  # fmt: skip
    t.set_state("s1", "error", "Traceback: boom")
    order = Order("c1", "s1", "ETH/BTC", Side.BUY, OrderType.LIMIT, 0.5, 0.031, created_ms=T0,
                  updated_ms=T0 + 1)  # fmt: skip
    t.save_order(order, "local")
    t.save_order(Order("c2", "s1", "ETH/BTC", Side.SELL, OrderType.MARKET, 0.5,
                       state=OrderState.FILLED, created_ms=T0, updated_ms=T0), "local")  # fmt: skip
    t.save_fill(Fill("f1", "c2", "s1", "ETH/BTC", Side.SELL, 0.5, 0.0312, 1e-5, T0 + 5, "exit"))
    t.save_round_trip("s1", 1, RoundTrip("ETH/BTC", "long", T0, T0 + 300_000, 0.5, 0.03, 0.0312,
                                          0.0001, 2e-5))  # fmt: skip
    t.save_equity_rows([("s1", T0 + i * 300_000, 1.5 + i / 7, 1.0, 0.1, 0.03) for i in range(50)])
    t.save_refusal("s1", T0, "ETH/BTC", "buy", 1.0, "entry", "position_limit", {"n": 1})
    t.save_risk_state("s1", RiskState(peak_equity=2.0, day_start_ms=DAY_MS, day_start_equity=1.9,
                                      halted_until_ms=-1, halts=[DAY_MS, 2 * DAY_MS],
                                      marked_ms=DAY_MS))  # fmt: skip
    t.save_risk_state("s2", RiskState(peak_equity=1.0, day_start_ms=0, marked_ms=0))
    index = pd.date_range("2024-01-01", periods=20, freq="5min", tz="UTC")
    trades = pd.DataFrame({"symbol": ["ETH/BTC"] * 2, "side": ["long", "short"],
                           "entry_time": index[:2], "entry_price": [1.0, 2.0], "size": [1.0, 2.0],
                           "exit_time": [index[5], pd.NaT], "exit_price": [1.1, float("nan")],
                           "exit_reason": ["signal", "open"], "fees": [0.1, 0.2],
                           "pnl": [0.1, 0.0], "return": [0.1, 0.0]})  # fmt: skip
    equity = pd.Series(range(20), index=index, dtype=float)
    record = RunRecord("backtest", "sma", {"a": 1}, {"fast": 5}, "local", ["ETH/BTC"], "5m",
                       index[0], index[-1], 1.0, 0.001, 0.0, False, {"sharpe": 1.0})  # fmt: skip
    store.runs.save(record, trades=trades, equity=equity)
    sweep = pd.DataFrame({"fast": [3, 5], "sharpe": [1.0, float("nan")], "trades": [3, 4]})
    sweep_record = RunRecord("sweep", "sma", {"a": 1}, {}, "local", ["ETH/BTC"], "5m",
                             index[0], index[-1], 1.0, 0.001, 0.0, False, {})  # fmt: skip
    store.runs.save(sweep_record, sweep=sweep, param_names=["fast"])


def snapshot(target: str) -> dict[str, pd.DataFrame]:
    """Give every table, rows sorted, as plain comparable values (the oracle: pandas)."""
    out = {}
    with Store.open(target, read_only=True) as store:
        for table in store.db.tables():
            if table == "schema_migrations":
                continue
            frame = store.sql(f"SELECT * FROM {table}")
            frame = frame.astype(object).where(frame.notna(), None)
            frame = frame.map(lambda v: tuple(int(x) for x in v) if hasattr(v, "__len__")
                              and not isinstance(v, str) else v)  # fmt: skip
            out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_duckdb_database_moves_to_postgres_and_back_unchanged(
    tmp_path: Path, pg_url: str
) -> None:
    source = str(tmp_path / "source.duckdb")
    with Store.open(source) as store:
        fill_every_table(store)
    there = json.loads(cli("db", "copy", "--from", source, "--to", pg_url, "--json"))
    back_path = str(tmp_path / "back.duckdb")
    back = json.loads(cli("db", "copy", "--from", pg_url, "--to", back_path, "--json"))
    assert there == back, "both hops agree on every table's rows and checksum"
    assert {c["table"]: c["rows"] for c in there}["candles"] > 1000
    original, moved, returned = snapshot(source), snapshot(pg_url), snapshot(back_path)
    assert set(original) == set(moved) == set(returned)
    for table, frame in original.items():
        assert len(frame) == {c["table"]: c["rows"] for c in there}[table]
        pd.testing.assert_frame_equal(moved[table], frame, check_dtype=False, obj=table)
        pd.testing.assert_frame_equal(returned[table], frame, check_dtype=False, obj=table)


def test_a_copy_refuses_a_target_that_has_rows(tmp_path: Path, pg_url: str) -> None:
    source = str(tmp_path / "source.duckdb")
    with Store.open(source) as store:
        store.trading.save_risk_state("s", RiskState(peak_equity=1.0, day_start_ms=0, marked_ms=0))
    with Store.open(pg_url) as store:
        store.trading.save_risk_state("other", RiskState(peak_equity=2.0, day_start_ms=0))
    result = CliRunner().invoke(app, ["db", "copy", "--from", source, "--to", pg_url])
    assert result.exit_code == 1
    assert "already has rows in risk_state" in result.output
    with Store.open(pg_url, read_only=True) as store:
        assert store.trading.risk_state("s") is None


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_db_status_and_migrate_tell_and_bring_the_version(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = request.getfixturevalue("pg_url") if backend == "postgres" else str(tmp_path / "s.db")
    assert "applied 0002_runs" in cli("db", "migrate", "--db", target, "--to", "2")
    status = json.loads(cli("db", "status", "--db", target, "--json"))
    assert (status["backend"], status["version"]) == (backend, 2)
    assert status["pending"][0] == "0003_live" and len(status["pending"]) == latest_version() - 2
    cli("db", "migrate", "--db", target)
    status = json.loads(cli("db", "status", "--db", target, "--json"))
    assert (status["version"], status["pending"]) == (latest_version(), [])
    assert status["tables"]["candles"] == 0

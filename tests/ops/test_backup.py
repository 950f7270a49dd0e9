"""Backups while trading: a real `workbench live run` owns the DuckDB file, `workbench status`
reads its /ready, `workbench backup` gets a consistent copy through it, and `workbench
restore` puts the copy back once it stopped. PostgreSQL: pg_dump and pg_restore round trip."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shipped import live_run
from typer.testing import CliRunner

from workbench.cli import app
from workbench.ops.backup import pg_connection
from workbench.store import Store
from workbench.store.copy import columns_of, frame_hash
from workbench.store.local_postgres import free_port
from workbench.store.sharing import query
from workbench.store.target import PostgresTarget

TABLES = ("orders", "fills", "candles", "equity", "strategies", "process_runs")
CANARY_KEY, CANARY_SECRET = "canaryKEY-b4ck7p0a1b2c", "canarySECRET-b4ck7p9d8c"


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout + (result.stderr if result.stderr_bytes else "")


def counts(db: Path) -> dict[str, int]:
    with Store.open(db, read_only=True) as store:
        return {t: int(store.db.fetchone(f"SELECT count(*) FROM {t}")[0]) for t in TABLES}


@pytest.fixture
def trading(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[str]]]:
    """`workbench live run` at 3000x on a DuckDB file, with its /ready on a port."""
    db, port = tmp_path / "live.duckdb", free_port()
    env = {
        **os.environ,
        "WORKBENCH_DB": str(db),
        "WORKBENCH_LOG_FORMAT": "json",
        "WORKBENCH_API_KEY": CANARY_KEY,
        "WORKBENCH_API_SECRET": CANARY_SECRET,
    }
    log = (tmp_path / "live.log").open("w")
    run = subprocess.Popen(
        live_run("--http-port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        yield db, port, run
    finally:
        if run.poll() is None:
            run.kill()
        run.wait(30)
        log.close()


def wait_ready(port: int, run: subprocess.Popen[str]) -> dict[str, object]:
    for _ in range(600):
        if run.poll() is not None:
            raise AssertionError("live run ended early (its output is live.log)")
        code, out = cli("status", "--json", "--url", f"http://127.0.0.1:{port}")
        if code == 0:
            return dict(json.loads(out))
        time.sleep(0.1)
    raise AssertionError(f"never ready: {out}")


def test_backup_while_trading_then_restore(
    trading: tuple[Path, int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    db, port, run = trading
    ready = wait_ready(port, run)
    assert ready["strategies"] == {"running": 1}
    code, text = cli("status", "--url", f"http://127.0.0.1:{port}")
    assert code == 0 and "ready" in text and "feed ETH/BTC 5m: up" in text
    for _ in range(300):  # until something traded
        if query("SELECT count(*) AS n FROM fills", db=db)["n"].iloc[0] >= 2:
            break
        time.sleep(0.1)
    first, second = tmp_path / "b1.duckdb", tmp_path / "b2.duckdb"
    code, out = cli("backup", "--db", str(db), "--to", str(first), "--json")
    assert code == 0, out
    reported = {t["table"]: t for t in json.loads(out)["tables"]}
    time.sleep(1.0)  # trading goes on meanwhile
    assert cli("backup", "--db", str(db), "--to", str(second))[0] == 0
    code, out = cli("backup", "--db", str(db), "--to", str(second))
    assert code == 1 and "never overwrites" in out
    for made in (first, second):  # readable by this user only, and no key in them
        assert stat.S_IMODE(made.stat().st_mode) == 0o600
        assert CANARY_KEY.encode() not in made.read_bytes()
        assert CANARY_SECRET.encode() not in made.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".b")) == []
    got = counts(first)
    assert got["fills"] >= 2 and got["candles"] > 0 and got["equity"] > 0
    assert counts(second)["equity"] > got["equity"]  # a later moment, taken through the owner
    with Store.open(first, read_only=True) as copy:
        # One snapshot: every fill's order is there, every order's strategy too.
        orphans = copy.db.fetchone(
            "SELECT count(*) FROM fills f LEFT JOIN orders o USING (client_order_id) "
            "WHERE o.client_order_id IS NULL"
        )
        assert orphans == (0,)
        for table, copied in reported.items():  # what it reported is what the file holds
            columns = columns_of(copy.db, table)
            frame = copy.db.frame(f"SELECT {', '.join(c for c, _ in columns)} FROM {table}")
            assert len(frame) == copied["rows"]
            assert f"{frame_hash(frame, [k for _, k in columns]):016x}" == copied["checksum"]
    # Restoring needs the engine stopped.
    code, out = cli("restore", str(first), "--db", str(db), "--yes")
    assert code == 1 and "stop it" in out
    run.send_signal(signal.SIGTERM)
    assert run.wait(60) == 0
    before = counts(db)
    assert before["equity"] > got["equity"]
    code, out = cli("restore", str(first), "--db", str(db), "--yes")
    assert code == 0, out
    assert counts(db) == got
    kept = next(tmp_path.glob("live.duckdb.before-restore-*"))
    assert counts(kept) == before  # the replaced database is kept, whole


def test_postgres_backup_and_restore_round_trip(
    pg_url: str, pg_server: object, tmp_path: Path
) -> None:
    with Store.open(pg_url) as store:
        store.db.execute(
            "INSERT INTO strategies (strategy_id, spec_name, spec_json, params_json, exchange, "
            "symbol, timeframe, broker, allocation, state) VALUES "
            "('s1', 'x', '{}', '{}', 'local', 'ETH/BTC', '5m', 'paper', 1.0, 'running')"
        )
        store.ops.start_run("r1", "live", "host", 1)
    dump = tmp_path / "pg.pgdump"
    code, out = cli("backup", "--db", pg_url, "--to", str(dump))
    assert code == 0, out
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    with Store.open(pg_url) as store:
        store.db.execute("DELETE FROM strategies")
    code, out = cli("restore", str(dump), "--db", pg_url, "--yes")
    assert code == 0, out
    with Store.open(pg_url) as store:
        assert store.db.fetchall("SELECT strategy_id, allocation FROM strategies") == [("s1", 1.0)]
        assert store.db.fetchone("SELECT count(*) FROM process_runs") == (1,)


def test_pg_tools_get_the_password_by_environment_not_on_their_command_line() -> None:
    url, env = pg_connection(
        PostgresTarget("postgresql://wb:s3cr%40t-pw@db.example:5432/workbench?sslmode=require")
    )
    assert url == "postgresql://wb@db.example:5432/workbench?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t-pw"
    url, env = pg_connection(PostgresTarget("postgresql://db.example/wb?password=qp-secret-1"))
    assert "qp-secret-1" not in url and env["PGPASSWORD"] == "qp-secret-1"

"""The command line end to end on a fresh database: backtest, sweep, runs, Monte Carlo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shipped import CANDLE_DIR
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data import import_file
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "data" / "strategies" / "ema_cross_rsi.json")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "wb.duckdb"
    with Store.open(path) as store:
        import_file(store, CANDLE_DIR / "ETH_BTC-5m.csv.gz", exchange="local")
        import_file(store, CANDLE_DIR / "LTC_BTC-5m.csv.gz", exchange="local")
    return path


@pytest.fixture(scope="module")
def run(db: Path):
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(app, [*args, "--db", str(db)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


@pytest.mark.slow
def test_backtest_json_is_stored_and_reloads_identically(run, db: Path) -> None:
    out = json.loads(run("backtest", SPEC, "--param", "fast=10", "--fees", "0.001", "--json"))
    closed = [t for t in out["trades"] if t["exit_reason"] != "open"]
    assert out["params"]["fast"] == 10 and out["stats"]["trades"] == len(closed)
    with Store.open(db, read_only=True) as store:
        runs = store.runs
        stored = runs.get(out["run_id"])
        assert stored["stats"]["final_equity"] == pytest.approx(out["stats"]["final_equity"])
        assert len(runs.trades(out["run_id"])) == len(out["trades"])
        assert runs.equity(out["run_id"]).iloc[-1] == pytest.approx(out["stats"]["final_equity"])
        assert len(stored["spec_hash"]) == 64 and stored["package_version"]


def test_many_symbols_with_separate_cash_add_up(run) -> None:
    both = json.loads(
        run(
            "backtest",
            SPEC,
            "--symbol",
            "ETH/BTC",
            "--symbol",
            "LTC/BTC",
            "--separate-cash",
            "--json",
        )
    )
    alone = [
        json.loads(run("backtest", SPEC, "--symbol", s, "--cash", "5000", "--json"))
        for s in ("ETH/BTC", "LTC/BTC")
    ]
    # Separate cash = two independent halves (on the bars both symbols have).
    total = sum(a["stats"]["final_equity"] for a in alone)
    assert both["stats"]["final_equity"] == pytest.approx(total, rel=1e-6)
    shared = json.loads(
        run("backtest", SPEC, "--symbol", "ETH/BTC", "--symbol", "LTC/BTC", "--json")
    )
    assert {t["symbol"] for t in shared["trades"]} == {"ETH/BTC", "LTC/BTC"}


def test_sweep_stores_one_row_per_combination_and_runs_commands_read_it(run, db: Path) -> None:
    out = json.loads(
        run(
            "sweep",
            SPEC,
            "--grid",
            "fast=5:15:5",
            "--grid",
            "slow=20,40",
            "--constraint",
            "fast<slow",
            "--top",
            "3",
            "--json",
        )
    )
    assert out["combinations"] == 6 and len(out["top"]) == 3
    assert 0.0 <= out["overfitting"]["deflated_sharpe"] <= 1.0
    with Store.open(db, read_only=True) as store:
        assert len(store.runs.sweep(out["run_id"])) == 6
    listed = json.loads(run("runs", "list", "--json"))
    assert out["run_id"] in {r["run_id"] for r in listed}
    assert "top" not in run("runs", "show", out["run_id"])
    first = listed[-1]["run_id"]
    compared = json.loads(run("runs", "compare", first, out["run_id"], "--json"))
    assert set(compared) == {first, out["run_id"]}


def test_montecarlo_of_a_stored_run_is_reproducible(run) -> None:
    bt = json.loads(run("backtest", SPEC, "--json"))
    one = json.loads(
        run("montecarlo", bt["run_id"], "--paths", "200", "--method", "bootstrap", "--json")
    )
    two = json.loads(
        run("montecarlo", bt["run_id"], "--paths", "200", "--method", "bootstrap", "--json")
    )
    assert one == two and one["paths"] == 200


def test_walkforward_and_optuna_commands_store_runs(run) -> None:
    wf = json.loads(
        run("walkforward", SPEC, "--grid", "fast=8,12", "--train", "7d", "--test", "3d", "--json")
    )
    assert wf["summary"]["windows"] >= 3
    opt = json.loads(
        run("sweep", SPEC, "--search", "optuna", "--trials", "6", "--grid", "fast=5:30:5", "--json")
    )
    assert opt["combinations"] == 6


def test_fee_asset_reaches_the_backtest_and_the_sweep(run, db: Path) -> None:
    quote = json.loads(run("backtest", SPEC, "--fee-asset", "quote", "--json"))
    received = json.loads(run("backtest", SPEC, "--fee-asset", "received", "--json"))
    default = json.loads(run("backtest", SPEC, "--json"))
    assert default["stats"] == received["stats"], "Binance's way is the default"
    swept = json.loads(run("sweep", SPEC, "--grid", "fast=12", "--fee-asset", "received", "--json"))
    assert received["stats"]["final_equity"] != quote["stats"]["final_equity"]
    best = swept["top"][0]
    assert best["final_equity"] == pytest.approx(received["stats"]["final_equity"], rel=1e-9)
    with Store.open(db, read_only=True) as store:
        runs = store.runs
        assert runs.get(received["run_id"])["extra"]["fee_asset"] == "received"
        assert runs.get(swept["run_id"])["extra"]["fee_asset"] == "received"


def test_backtests_size_orders_by_the_stored_market_rules(run, db: Path) -> None:
    with Store.open(db, read_only=True) as store:
        rules = store.markets.get("local", "ETH/BTC")
    assert rules is not None and rules.amount_step > 0, "importing shipped data stores rules"
    # Fees in quote: a position is the order's whole steps (no fee taken out of it).
    quote = ("--fee-asset", "quote")
    ruled = json.loads(run("backtest", SPEC, "--cash", "1", *quote, "--json"))
    ideal = json.loads(run("backtest", SPEC, "--cash", "1", "--ideal-sizes", *quote, "--json"))
    steps = np.array([t["size"] for t in ruled["trades"]]) / rules.amount_step
    assert np.abs(steps - np.round(steps)).max() < 1e-6
    free = np.array([t["size"] for t in ideal["trades"]]) / rules.amount_step
    assert np.abs(free - np.round(free)).max() > 1e-3
    assert ruled["stats"]["refused_orders"] == 0 == ideal["stats"]["refused_orders"]


def test_text_output_reads_as_traders_read_it_and_json_keeps_the_numbers(run) -> None:
    out = json.loads(run("backtest", SPEC, "--param", "fast=11", "--json"))
    stats = out["stats"]
    assert isinstance(stats["total_return"], float)  # --json: the raw number
    text = run("runs", "show", out["run_id"])
    shown = json.loads(next(line for line in text.splitlines() if line.startswith("stats"))[16:])
    assert shown["total_return"] == f"{100 * stats['total_return']:+.2f}%"
    assert shown["max_drawdown"] == f"{100 * stats['max_drawdown']:.2f}%"
    assert shown["sharpe"] == f"{stats['sharpe']:.2f}"
    assert shown["final_equity"] == f"{stats['final_equity']:,.8f} BTC"

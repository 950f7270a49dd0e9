"""Stored backtest runs: save a run with its trades, equity and sweep rows; list, load, compare.

Tables come from migration 0002_runs. A run records everything needed to reproduce it: the
spec (JSON and its SHA-256), the parameters, the data range and symbols, costs, cash mode and
the workbench version that produced it.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from workbench.portfolio.stats import STAT_COLUMNS
from workbench.store.database import Database, Session
from workbench.store.errors import StoreError

SWEEP_STAT_COLUMNS = STAT_COLUMNS
TRADE_COLUMNS = [
    "trade_no",
    "symbol",
    "side",
    "entry_time",
    "entry_price",
    "size",
    "exit_time",
    "exit_price",
    "exit_reason",
    "fees",
    "pnl",
    "return_frac",
]


def spec_hash(raw_spec: dict[str, Any]) -> str:
    """Give the SHA-256 of a spec's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(raw_spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def package_version() -> str:
    """Give the installed workbench version."""
    try:
        return metadata.version("workbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA:
        return None
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """Give JSON-safe numbers: NaN becomes None, infinities stay strings."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def dumps(value: Any) -> str:
    """Give compact JSON for a stored column."""
    return json.dumps(_clean(value), default=_json_default, sort_keys=True)


def _plain(value: Any) -> Any:
    """Give a cell of a one-row frame as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


def _naive_utc(ts: Any) -> datetime:
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return stamp.to_pydatetime()


@dataclass
class RunRecord:
    """What describes a run (one row of ``runs``)."""

    kind: str
    spec_name: str
    spec_raw: dict[str, Any]
    params: dict[str, Any]
    exchange: str
    symbols: list[str]
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp
    cash: float
    fee_rate: float
    slippage: float
    shared_cash: bool
    stats: dict[str, Any]
    combinations: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class RunStore:
    """Runs in a database (the store's `runs`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(
        self,
        record: RunRecord,
        trades: pd.DataFrame | None = None,
        equity: pd.Series | None = None,
        sweep: pd.DataFrame | None = None,
        param_names: list[str] | None = None,
    ) -> str:
        """Write a run and its details in one transaction; give its id."""
        with self.db.transaction() as con:
            con.execute(
                "INSERT INTO runs (run_id, kind, spec_name, spec_json, spec_hash, params_json,"
                " exchange, symbols_json, timeframe, start_ts, end_ts, cash, fee_rate, slippage,"
                " shared_cash, package_version, combinations, stats_json, extra_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.run_id,
                    record.kind,
                    record.spec_name,
                    dumps(record.spec_raw),
                    spec_hash(record.spec_raw),
                    dumps(record.params),
                    record.exchange,
                    dumps(record.symbols),
                    record.timeframe,
                    _naive_utc(record.start),
                    _naive_utc(record.end),
                    record.cash,
                    record.fee_rate,
                    record.slippage,
                    record.shared_cash,
                    package_version(),
                    record.combinations,
                    dumps(record.stats),
                    dumps(record.extra),
                ],
            )
            if trades is not None and len(trades):
                self._write_trades(con, record.run_id, trades)
            if equity is not None and len(equity):
                frame = pd.DataFrame(
                    {
                        "run_id": record.run_id,
                        "ts": equity.index.tz_convert("UTC").tz_localize(None),
                        "equity": equity.to_numpy(dtype=float),
                    }
                )
                con.insert_frame("run_equity", frame)
            if sweep is not None and len(sweep):
                self._write_sweep(con, record.run_id, sweep, param_names or [])
        return record.run_id

    def _write_trades(self, con: Session, run_id: str, trades: pd.DataFrame) -> None:
        def naive(col: pd.Series) -> pd.Series:
            col = pd.to_datetime(col, utc=True)
            return col.dt.tz_localize(None)

        frame = pd.DataFrame(
            {
                "run_id": run_id,
                "trade_no": np.arange(len(trades), dtype=np.int32),
                "symbol": trades["symbol"].astype(str).to_numpy(),
                "side": trades["side"].astype(str).to_numpy(),
                "entry_time": naive(trades["entry_time"]).to_numpy(),
                "entry_price": trades["entry_price"].to_numpy(dtype=float),
                "size": trades["size"].to_numpy(dtype=float),
                "exit_time": naive(trades["exit_time"]).to_numpy(),
                "exit_price": trades["exit_price"].to_numpy(dtype=float),
                "exit_reason": trades["exit_reason"].astype(str).to_numpy(),
                "fees": trades["fees"].to_numpy(dtype=float),
                "pnl": trades["pnl"].to_numpy(dtype=float),
                "return_frac": trades["return"].to_numpy(dtype=float),
            }
        )
        con.insert_frame("run_trades", frame)

    def _write_sweep(
        self, con: Session, run_id: str, sweep: pd.DataFrame, names: list[str]
    ) -> None:
        params = sweep[names].to_dict(orient="records") if names else [{}] * len(sweep)
        frame = pd.DataFrame(
            {
                "run_id": run_id,
                "combination": np.arange(len(sweep), dtype=np.int64),
                "params_json": [dumps(p) for p in params],
            }
        )
        for col in SWEEP_STAT_COLUMNS:
            # As a Series: a nullable column (a pruned trial's trades) stays NULL-able.
            frame[col] = sweep[col].reset_index(drop=True) if col in sweep else np.nan
        con.insert_frame("sweep_results", frame)

    def list_runs(self, limit: int = 50) -> pd.DataFrame:
        """Give the latest runs, newest first, with their headline numbers."""
        frame = self.db.frame(
            "SELECT run_id, kind, created_at, spec_name, symbols_json, timeframe, start_ts,"
            " end_ts, combinations, stats_json FROM runs ORDER BY created_at DESC LIMIT ?",
            [limit],
        )
        stats = [json.loads(s) for s in frame.pop("stats_json")]
        for key in ("total_return", "sharpe", "max_drawdown", "trades"):
            frame[key] = [s.get(key) for s in stats]
        frame["symbols"] = [", ".join(json.loads(s)) for s in frame.pop("symbols_json")]
        return frame

    def get(self, run_id: str) -> dict[str, Any]:
        """Give one run's description and stats, decoded; StoreError if unknown."""
        found = self.db.frame("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if found.empty:
            raise StoreError(f"no run {run_id!r}: see `workbench runs list`")
        out = {k: _plain(v) for k, v in found.iloc[0].to_dict().items()}
        for key in ("spec_json", "params_json", "symbols_json", "stats_json", "extra_json"):
            out[key.removesuffix("_json")] = json.loads(out.pop(key))
        return out

    def trades(self, run_id: str) -> pd.DataFrame:
        """Give a run's trades in order."""
        return self.db.frame(
            f"SELECT {', '.join(TRADE_COLUMNS)} FROM run_trades WHERE run_id = ? ORDER BY trade_no",
            [run_id],
        )

    def equity(self, run_id: str) -> pd.Series:
        """Give a run's equity curve (UTC index)."""
        frame = self.db.frame(
            "SELECT ts, equity FROM run_equity WHERE run_id = ? ORDER BY ts", [run_id]
        )
        index = pd.DatetimeIndex(frame["ts"]).tz_localize("UTC")
        return pd.Series(frame["equity"].to_numpy(), index=index, name="equity")

    def sweep(
        self, run_id: str, order_by: str = "sharpe", limit: int | None = None
    ) -> pd.DataFrame:
        """Give a sweep's rows, best first by ``order_by``, parameters as columns."""
        if order_by not in SWEEP_STAT_COLUMNS:
            raise StoreError(f"cannot order by {order_by!r}; choose from {SWEEP_STAT_COLUMNS}")
        sql = (
            f"SELECT combination, params_json, {', '.join(SWEEP_STAT_COLUMNS)} "
            "FROM sweep_results WHERE run_id = ?"
            f" ORDER BY {order_by} DESC NULLS LAST, combination"
        )
        frame = self.db.frame(sql + (f" LIMIT {int(limit)}" if limit else ""), [run_id])
        params = pd.DataFrame([json.loads(p) for p in frame.pop("params_json")], index=frame.index)
        return pd.concat([params, frame], axis=1)

    def compare(self, run_ids: list[str]) -> pd.DataFrame:
        """Give runs side by side: one column per run, one row per field or statistic."""
        columns = {}
        for run_id in run_ids:
            run = self.get(run_id)
            entry = {
                "spec": run["spec_name"],
                "spec_hash": run["spec_hash"][:12],
                "params": dumps(run["params"]),
                "symbols": ", ".join(run["symbols"]),
                "range": f"{run['start_ts']} .. {run['end_ts']}",
                "fee_rate": run["fee_rate"],
                "slippage": run["slippage"],
            }
            entry.update(run["stats"])
            columns[run_id] = entry
        return pd.DataFrame(columns)

"""Candle storage: idempotent writes, range reads, SQL resampling and coverage with gaps.

Times are stored as UTC `TIMESTAMP`s without a zone and come back as a UTC DatetimeIndex.
Ranges are half-open: `start <= ts < end`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.candles import COLUMNS, TimeLike, empty_frame, normalize, to_utc
from workbench.store.database import Database
from workbench.store.errors import StoreError
from workbench.timeframes import timeframe_seconds

_DAY_S = 86_400
_WEEK_S = 7 * _DAY_S


@dataclass(frozen=True)
class WriteResult:
    """What a write did: rows added, rows whose values changed, rows already there."""

    new: int
    changed: int
    unchanged: int

    @property
    def written(self) -> int:
        return self.new + self.changed


def _naive_utc(value: TimeLike) -> pd.Timestamp:
    return to_utc(value).tz_localize(None)


def _range_sql(start: TimeLike | None, end: TimeLike | None) -> tuple[str, list[object]]:
    sql, args = "", []
    if start is not None:
        sql += " AND ts >= ?"
        args.append(_naive_utc(start).to_pydatetime())
    if end is not None:
        sql += " AND ts < ?"
        args.append(_naive_utc(end).to_pydatetime())
    return sql, args


def _to_frame(raw: pd.DataFrame) -> pd.DataFrame:
    if raw.empty:
        return empty_frame()
    return normalize(raw.set_index("ts"))


class CandleStore:
    """Candles in one database (DuckDB or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(
        self, exchange: str, symbol: str, timeframe: str, candles: pd.DataFrame
    ) -> WriteResult:
        """Upsert candles of one series; rows already stored with equal values are untouched."""
        timeframe_seconds(timeframe)
        frame = normalize(candles)
        if frame.index.has_duplicates:
            raise StoreError(f"candles for {symbol} {timeframe} repeat a timestamp")
        if frame.empty:
            return WriteResult(0, 0, 0)
        incoming = frame.reset_index()
        incoming["ts"] = incoming["ts"].dt.tz_localize(None).astype("datetime64[us]")
        key = [exchange, symbol, timeframe]
        columns = ", ".join(COLUMNS)
        with self.db.transaction() as tx, tx.staged("incoming", incoming):
            tx.execute(
                "CREATE TEMP TABLE pending AS "
                "SELECT i.*, c.ts IS NULL AS is_new FROM incoming i LEFT JOIN candles c "
                "ON c.exchange = ? AND c.symbol = ? AND c.timeframe = ? AND c.ts = i.ts "
                "WHERE c.ts IS NULL OR "
                + " OR ".join(f"c.{col} IS DISTINCT FROM i.{col}" for col in COLUMNS),
                key,
            )
            row = tx.fetchone("SELECT count(*) FILTER (WHERE is_new), count(*) FROM pending")
            new, pending = (int(row[0]), int(row[1])) if row else (0, 0)
            tx.execute(
                f"INSERT INTO candles SELECT ?, ?, ?, ts, {columns} FROM pending "
                "ON CONFLICT (exchange, symbol, timeframe, ts) DO UPDATE SET "
                + ", ".join(f"{col} = excluded.{col}" for col in COLUMNS),
                key,
            )
            tx.execute("DROP TABLE pending")
        return WriteResult(new, pending - new, len(frame) - pending)

    def read(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Give the stored candles of one series in [start, end)."""
        where, args = _range_sql(start, end)
        raw = self.db.numbers_frame(
            f"SELECT ts, {', '.join(COLUMNS)} FROM candles "
            f"WHERE exchange = ? AND symbol = ? AND timeframe = ?{where} ORDER BY ts",
            [exchange, symbol, timeframe, *args],
        )
        return _to_frame(raw)

    def resample(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        target: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Give a series resampled in SQL to a longer timeframe.

        Buckets are aligned on UTC midnight (weeks on Monday, as exchanges do); a bucket holds
        the stored bars whose open time falls in it; buckets without bars are left out. The
        result equals pandas `resample(...).agg(first/max/min/last/sum).dropna()`.
        """
        source_s, target_s = timeframe_seconds(timeframe), timeframe_seconds(target)
        if target_s <= source_s or target_s % source_s:
            raise StoreError(f"cannot resample {timeframe} to {target}: not a whole multiple")
        if _DAY_S % target_s and target_s != _WEEK_S:
            raise StoreError(f"cannot resample to {target}: the target must divide a day, or be 1w")
        where, args = _range_sql(start, end)
        # Buckets start at 2000-01-03, a Monday at midnight, on both backends.
        sql = self.db.dialect
        raw = self.db.numbers_frame(
            f"SELECT {sql.time_bucket(target_s, 'ts')} AS ts, "
            f"{sql.first_by('open', 'ts')} AS open, max(high) AS high, min(low) AS low, "
            f"{sql.last_by('close', 'ts')} AS close, sum(volume) AS volume FROM candles "
            f"WHERE exchange = ? AND symbol = ? AND timeframe = ?{where} "
            "GROUP BY 1 ORDER BY 1",
            [exchange, symbol, timeframe, *args],
        )
        return _to_frame(raw)

    def last_ts(self, exchange: str, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Give the open time of the newest stored bar of a series, or None."""
        row = self.db.fetchone(
            "SELECT max(ts) FROM candles WHERE exchange = ? AND symbol = ? AND timeframe = ?",
            [exchange, symbol, timeframe],
        )
        return None if row is None or row[0] is None else to_utc(row[0])

    def gaps(self, exchange: str, symbol: str, timeframe: str) -> pd.DataFrame:
        """Give the holes in a series: first and last missing bar open times, bars missing."""
        step_ms = timeframe_seconds(timeframe) * 1000
        ms = self.db.dialect.epoch_ms
        raw = self.db.frame(
            f"SELECT prev, ts, {ms('ts')} - {ms('prev')} AS gap_ms "
            "FROM (SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev FROM candles "
            "WHERE exchange = ? AND symbol = ? AND timeframe = ?) AS bars "
            f"WHERE {ms('ts')} - {ms('prev')} > ? ORDER BY ts",
            [exchange, symbol, timeframe, step_ms],
        )
        step = pd.Timedelta(milliseconds=step_ms)
        return pd.DataFrame(
            {
                "first_missing": pd.to_datetime(raw["prev"]).dt.tz_localize("UTC") + step,
                "last_missing": pd.to_datetime(raw["ts"]).dt.tz_localize("UTC") - step,
                "missing": (raw["gap_ms"].astype("int64") // step_ms - 1).astype("int64"),
            }
        )

    def coverage(
        self, exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None
    ) -> pd.DataFrame:
        """Give one row per stored series: first, last, count, missing bars and gaps."""
        filters, args = [], []
        for column, value in (("exchange", exchange), ("symbol", symbol), ("timeframe", timeframe)):
            if value is not None:
                filters.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        timeframes = [row[0] for row in self.db.fetchall("SELECT DISTINCT timeframe FROM candles")]
        columns = ["exchange", "symbol", "timeframe", "first", "last", "count", "missing", "gaps"]
        if not timeframes:
            return pd.DataFrame(columns=columns)
        steps = ", ".join(f"('{tf}', {timeframe_seconds(tf) * 1000})" for tf in timeframes)
        ms, div = self.db.dialect.epoch_ms, self.db.dialect.intdiv
        prev = "lag(ts) OVER (PARTITION BY exchange, symbol, timeframe ORDER BY ts)"
        out = self.db.frame(
            f"WITH tf(timeframe, step_ms) AS (VALUES {steps}), "
            "bars AS (SELECT exchange, symbol, timeframe, ts, step_ms, "
            f"{ms('ts')} - {ms(prev)} AS gap_ms FROM candles JOIN tf USING (timeframe) {where}) "
            "SELECT exchange, symbol, timeframe, min(ts) AS first, max(ts) AS last, "
            "count(*) AS count, "
            f"CAST(coalesce(sum({div('gap_ms', 'step_ms')} - 1) FILTER (WHERE gap_ms > step_ms), 0)"
            " AS BIGINT) AS missing, count(*) FILTER (WHERE gap_ms > step_ms) AS gaps "
            "FROM bars GROUP BY exchange, symbol, timeframe ORDER BY exchange, symbol, timeframe",
            args,
        )
        for column in ("first", "last"):
            out[column] = pd.to_datetime(out[column]).dt.tz_localize("UTC")
        return out[columns]

    def series(self) -> list[tuple[str, str, str]]:
        """Give every stored (exchange, symbol, timeframe)."""
        rows = self.db.fetchall(
            "SELECT DISTINCT exchange, symbol, timeframe FROM candles ORDER BY 1, 2, 3"
        )
        return [(str(e), str(s), str(t)) for e, s, t in rows]

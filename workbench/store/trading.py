"""Live trading records: strategies, orders, fills, closed trades, equity, refusals, and the
drawdown guard's state.

The engine writes each row before it acts on it or reports it anywhere else, so a process
killed at any point restarts from what is here (orders by client order id, positions from
fills). Times are epoch milliseconds in, UTC timestamps in the tables.

Every write goes through the store's `Writes` (`workbench.store.journal`): on the DuckDB file
of the process that owns it, journaled before the call returns and applied by a writer
thread; on PostgreSQL in a live engine, queued and committed by a task on its event loop
(`workbench.store.pg_writes`; the engine awaits `writes.durable()` where it needs the commit);
elsewhere, committed before it returns. Reads here first wait for the writes made before
them, so the caller always reads its own writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd

from workbench.broker.models import Fill, Order, OrderPurpose, OrderState, OrderType
from workbench.fills import Side
from workbench.portfolio.accounting import RoundTrip
from workbench.risk.limits import RiskState
from workbench.store.database import Database, Session
from workbench.store.dialect import ms_of, ts_param, upsert
from workbench.store.errors import StoreError
from workbench.store.journal import DirectWrites, Write, Writes

_ORDER_COLUMNS = [
    "client_order_id",
    "strategy_id",
    "exchange",
    "symbol",
    "side",
    "type",
    "amount",
    "price",
    "stop_price",
    "purpose",
    "state",
    "filled",
    "average_price",
    "exchange_order_id",
    "reason",
    "created_at",
    "updated_at",
]
_FILL_COLUMNS = [
    "fill_id",
    "client_order_id",
    "strategy_id",
    "symbol",
    "side",
    "amount",
    "price",
    "fee",
    "purpose",
    "ts",
]
_ROUND_TRIP_COLUMNS = [
    "strategy_id",
    "trade_no",
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "amount",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
]
_EQUITY_COLUMNS = ["strategy_id", "ts", "equity", "cash", "position", "price"]
_RISK_COLUMNS = [
    "strategy_id",
    "marked_at",
    "peak_equity",
    "day_start",
    "day_start_equity",
    "halted_until",
    "halts",
]
_SAVE_ORDER = upsert("orders", _ORDER_COLUMNS, ["client_order_id"])
_SAVE_ROUND_TRIP = upsert("round_trips", _ROUND_TRIP_COLUMNS, ["strategy_id", "trade_no"])
_SAVE_RISK_STATE = upsert("risk_state", _RISK_COLUMNS, ["strategy_id"])
_FILL_INSERT = (
    f"INSERT INTO fills ({', '.join(_FILL_COLUMNS)}, seq, fee_currency, fee_quote) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM fills WHERE strategy_id = ?), ?, ?) "
    "ON CONFLICT (fill_id) DO NOTHING"
)
_FILL_ARGS = [*_FILL_COLUMNS, "fee_currency", "fee_quote"]
# Many fills at once, each after its strategy's others in the order given (`n`).
_FILLS_INSERT = (
    f"INSERT INTO fills ({', '.join(_FILL_COLUMNS)}, seq, fee_currency, fee_quote) "
    f"SELECT {', '.join('r.' + c for c in _FILL_COLUMNS)}, "
    "(SELECT coalesce(max(f.seq), 0) FROM fills f WHERE f.strategy_id = r.strategy_id) "
    "+ row_number() OVER (PARTITION BY r.strategy_id ORDER BY r.n), "
    "r.fee_currency, r.fee_quote FROM _fills_in r "
    "WHERE NOT EXISTS (SELECT 1 FROM fills f WHERE f.fill_id = r.fill_id) "
    "ON CONFLICT (fill_id) DO NOTHING"
)
_EVENT_COLUMNS = ["strategy_id", "kind", "detail", "ts"]
_REFUSAL_COLUMNS = [
    "strategy_id",
    "ts",
    "symbol",
    "side",
    "amount",
    "purpose",
    "rule",
    "detail",
]


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


# The writes this store makes, by name (a journal line names one; it never holds SQL).
_STATEMENTS = {
    "save_strategy": (
        "INSERT INTO strategies (strategy_id, spec_name, spec_json, params_json, exchange, "
        "symbol, timeframe, broker, allocation, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (strategy_id) DO NOTHING"
    ),
    "set_state": (
        "UPDATE strategies SET state = ?, error = ?, updated_at = ? WHERE strategy_id = ?"
    ),
    "move_capital": (
        "UPDATE strategies SET allocation = allocation + ?, updated_at = ? WHERE strategy_id = ?"
    ),
    "set_health": "UPDATE strategies SET health = ?, updated_at = ? WHERE strategy_id = ?",
    "set_seed_from": "UPDATE strategies SET seed_from = ? WHERE strategy_id = ?",
    "save_round_trip": _SAVE_ROUND_TRIP,
    "save_risk_state": _SAVE_RISK_STATE,
    # The account guard's memory of one quote currency (`workbench.store.risk`).
    "save_account_state": (
        "INSERT INTO account_risk (exchange, quote, state, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (exchange, quote) DO UPDATE SET state = excluded.state, "
        "updated_at = excluded.updated_at"
    ),
}


@dataclass(frozen=True)
class _Rows:
    """A write of one row that many of can be made as one statement over a staged frame:
    an upsert on `key` (the last row of a key wins), or an insert when `key` is empty."""

    table: str
    columns: Sequence[str]
    key: Sequence[str] = ()

    @cached_property
    def one(self) -> str:
        """The statement of one row (built once)."""
        return (
            upsert(self.table, self.columns, self.key)
            if self.key
            else _insert(self.table, self.columns)
        )

    def many(self, session: Session, rows: list[Sequence[Any]]) -> None:
        frame = pd.DataFrame(rows, columns=list(self.columns), dtype=object)
        if self.key:
            frame = frame.drop_duplicates(list(self.key), keep="last")
            session.upsert_frame(self.table, frame, list(self.key))
        else:
            session.insert_frame(self.table, frame)


_ROWS = {
    "save_order": _Rows("orders", _ORDER_COLUMNS, ["client_order_id"]),
    "add_event": _Rows("strategy_events", _EVENT_COLUMNS),
    "save_refusal": _Rows("refused_orders", _REFUSAL_COLUMNS),
}


def apply_writes(session: Session, writes: Sequence[Write]) -> None:
    """Carry out this store's writes on a session, as if one after the other.

    The frequent row writes (orders, fills, events, refusals, equity) are gathered per name
    and made in one statement each: with DuckDB one statement of many rows costs about what
    one row does. They touch tables no other write here touches, so only their order among
    themselves counts, and it is kept. Every other write runs in its place."""
    gathered: dict[str, list[Sequence[Any]]] = {}
    for write in writes:
        if write.name in _ROWS or write.name in ("save_fill", "save_equity_rows"):
            gathered.setdefault(write.name, []).append(write.args)
            continue
        sql = _STATEMENTS.get(write.name)
        if sql is None:
            raise StoreError(f"unknown trading write {write.name!r}")
        session.execute(sql, write.args)
    for name, rows in gathered.items():
        if name == "save_equity_rows":
            session.upsert_frame(
                "equity", _equity_frame([r for unit in rows for r in unit]), ["strategy_id", "ts"]
            )
        elif name == "save_fill":
            _save_fills(session, rows)
        elif len(rows) == 1:
            session.execute(_ROWS[name].one, rows[0])
        else:
            _ROWS[name].many(session, rows)


_SAVE_EQUITY = upsert("equity", _EQUITY_COLUMNS, ["strategy_id", "ts"])


def write_statements(writes: Sequence[Write]) -> Iterator[tuple[str, list[Any]]]:
    """Give the statements (`?` placeholders) and arguments that carry out writes one row at
    a time, in their order: `apply_writes`'s outcome, for a backend that sends many
    statements in one go (`workbench.store.pg_writes`)."""
    for write in writes:
        args = list(write.args)
        if write.name == "save_fill":
            yield _FILL_INSERT, [*args[:10], args[2], *args[10:]]
        elif write.name == "save_equity_rows":
            for sid, ts_ms, *rest in args:
                yield _SAVE_EQUITY, [sid, ts_param(int(ts_ms)), *rest]
        elif write.name in _ROWS:
            yield _ROWS[write.name].one, args
        elif write.name in _STATEMENTS:
            yield _STATEMENTS[write.name], args
        else:
            raise StoreError(f"unknown trading write {write.name!r}")


def _save_fills(session: Session, rows: list[Sequence[Any]]) -> None:
    if len(rows) == 1:
        row = list(rows[0])
        session.execute(_FILL_INSERT, [*row[:10], row[2], *row[10:]])
        return
    frame = pd.DataFrame(rows, columns=_FILL_ARGS, dtype=object)
    frame = frame.drop_duplicates(["fill_id"], keep="first")
    frame["n"] = range(len(frame))
    with session.staged("_fills_in", frame):
        session.execute(_FILLS_INSERT)


def _equity_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=["strategy_id", "ts_ms", *_EQUITY_COLUMNS[2:]])
    frame.insert(1, "ts", pd.to_datetime(frame.pop("ts_ms"), unit="ms").astype("datetime64[us]"))
    # The last mark of a bar wins, as a replace would (one statement may not hit a key twice).
    return frame.drop_duplicates(["strategy_id", "ts"], keep="last")


def _now() -> datetime:
    """The time a row is written at (naive UTC, as the tables keep it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _risk_row(strategy_id: str, state: RiskState) -> list[Any]:
    """Give the `risk_state` row of a strategy's guard state."""
    halted = None if state.halted_until_ms < 0 else state.halted_until_ms
    return [
        strategy_id,
        ts_param(state.marked_ms),
        state.peak_equity,
        ts_param(state.day_start_ms),
        state.day_start_equity,
        ts_param(halted),
        [int(h) for h in state.halts],
    ]


class TradingStore:
    """The live trading tables of one database (DuckDB or PostgreSQL)."""

    def __init__(self, db: Database, writes: Writes | None = None) -> None:
        self.db = db
        self.writes = writes or DirectWrites(db, apply_writes)

    def _write(self, name: str, args: Sequence[Any]) -> None:
        self.writes.submit([Write(name, args)])

    def _frame(self, sql: str, args: Iterable[Any] = ()) -> pd.DataFrame:
        self.writes.drain()
        return self.db.frame(sql, list(args))

    def _fetchone(self, sql: str, args: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        self.writes.drain()
        return self.db.fetchone(sql, list(args))

    def _fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        self.writes.drain()
        return self.db.fetchall(sql, list(args))

    def _ms(self, column: str) -> str:
        return f"{self.db.dialect.epoch_ms(column)} AS {column}_ms"

    # -- strategies -----------------------------------------------------------------------
    def save_strategy(
        self,
        strategy_id: str,
        *,
        spec_name: str,
        spec_json: str,
        params: dict[str, Any],
        exchange: str,
        symbol: str,
        timeframe: str,
        broker: str,
        allocation: float,
        state: str,
    ) -> None:
        """Record a strategy (a known id keeps its state and history)."""
        self._write(
            "save_strategy",
            [
                strategy_id,
                spec_name,
                spec_json,
                json.dumps(params, sort_keys=True),
                exchange,
                symbol,
                timeframe,
                broker,
                allocation,
                state,
            ],
        )

    def set_state(self, strategy_id: str, state: str, error: str | None = None) -> None:
        """Record a strategy's new state, and the event."""
        self._write("set_state", [state, error, _now(), strategy_id])
        self.add_event(strategy_id, "error" if error else "state", error or state)

    def move_capital(
        self, moves: dict[str, float], reason: str, risk: dict[str, RiskState]
    ) -> None:
        """Add `moves[sid]` (quote, + or -) to each strategy's allocation, with an event, and
        store each one's guard state as moved: one transaction (a crash moves all or none)."""
        unit = []
        for sid, delta in moves.items():
            now = _now()
            unit += [
                Write("move_capital", [delta, now, sid]),
                Write("add_event", [sid, "capital", f"{delta:+.10g} ({reason})", now]),
                Write("save_risk_state", _risk_row(sid, risk[sid])),
            ]
        self.writes.submit(unit)

    def set_health(self, strategy_id: str, problem: str | None) -> None:
        """Record the problem a strategy is degraded by (None: settled)."""
        self._write("set_health", [problem, _now(), strategy_id])

    def set_seed_from(self, strategy_id: str, ts_ms: int) -> None:
        """Record where a strategy's first warm-up started (a restart replays from there)."""
        self._write("set_seed_from", [ts_param(ts_ms), strategy_id])

    def seed_from_ms(self, strategy_id: str) -> int | None:
        """Give where a strategy's first warm-up started, if it has run before."""
        row = self._fetchone(
            "SELECT seed_from FROM strategies WHERE strategy_id = ?", [strategy_id]
        )
        return None if row is None else ms_of(row[0])

    def last_marked_ms(self, strategy_id: str) -> int | None:
        """Give the last bar a strategy acted on (its newest equity mark), if any."""
        row = self._fetchone("SELECT max(ts) FROM equity WHERE strategy_id = ?", [strategy_id])
        return None if row is None else ms_of(row[0])

    def add_event(self, strategy_id: str, kind: str, detail: str) -> None:
        self._write("add_event", [strategy_id, kind, detail, _now()])

    def strategies(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM strategies ORDER BY created_at, strategy_id")

    def events(self, strategy_id: str | None = None) -> pd.DataFrame:
        where = "WHERE strategy_id = ?" if strategy_id else ""
        return self._frame(
            f"SELECT * FROM strategy_events {where} ORDER BY ts",
            [strategy_id] if strategy_id else [],
        )

    # -- orders and fills -----------------------------------------------------------------
    def save_order(self, order: Order, exchange: str) -> None:
        """Insert or update an order by its client order id."""
        self._write(
            "save_order",
            [
                order.client_order_id,
                order.strategy_id,
                exchange,
                order.symbol,
                str(order.side),
                str(order.type),
                order.amount,
                order.price,
                order.stop_price,
                str(order.purpose),
                str(order.state),
                order.filled,
                order.average_price,
                order.exchange_order_id,
                order.reason,
                ts_param(order.created_ms),
                ts_param(order.updated_ms),
            ],
        )

    def order(self, client_order_id: str) -> Order | None:
        """Give the stored order with this client order id, if any."""
        found = self.orders(client_order_id=client_order_id)
        return found[0] if found else None

    def orders(
        self,
        strategy_id: str | None = None,
        open_only: bool = False,
        client_order_id: str | None = None,
    ) -> list[Order]:
        """Give stored orders, oldest first."""
        where, args = [], []
        if client_order_id:
            where.append("client_order_id = ?")
            args.append(client_order_id)
        if strategy_id:
            where.append("strategy_id = ?")
            args.append(strategy_id)
        if open_only:
            finals = ", ".join(f"'{s}'" for s in OrderState if s.is_final)
            where.append(f"state NOT IN ({finals})")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        raw = self._frame(
            f"SELECT {', '.join(_ORDER_COLUMNS[:-2])}, {self._ms('created_at')}, "
            f"{self._ms('updated_at')} FROM orders {clause} ORDER BY created_at, client_order_id",
            args,
        )
        return [
            Order(
                client_order_id=r.client_order_id,
                strategy_id=r.strategy_id,
                symbol=r.symbol,
                side=Side(r.side),
                type=OrderType(r.type),
                amount=r.amount,
                price=_opt(r.price),
                stop_price=_opt(r.stop_price),
                purpose=OrderPurpose(r.purpose),
                state=OrderState(r.state),
                filled=r.filled,
                average_price=_opt(r.average_price),
                exchange_order_id=_opt_str(r.exchange_order_id),
                created_ms=int(r.created_at_ms),
                updated_ms=int(r.updated_at_ms),
                reason=_opt_str(r.reason),
            )
            for r in raw.itertuples()
        ]

    def save_fill(self, fill: Fill) -> None:
        """Insert a fill after the strategy's others (its booking sequence); one stored
        already (a replayed update) stays as it was. The caller knows which it booked."""
        self._write(
            "save_fill",
            [
                fill.fill_id,
                fill.client_order_id,
                fill.strategy_id,
                fill.symbol,
                str(fill.side),
                fill.amount,
                fill.price,
                fill.fee,
                str(fill.purpose),
                ts_param(fill.ts_ms),
                fill.fee_currency or None,
                fill.fee_quote,
            ],
        )

    def fills(self, strategy_id: str | None = None) -> list[Fill]:
        """Give stored fills in the order they were booked (never by id: paper ids are
        hashes, and an entry and a same-bar stop must replay entry first)."""
        where = "WHERE strategy_id = ?" if strategy_id else ""
        raw = self._frame(
            f"SELECT {', '.join(_FILL_COLUMNS[:-1])}, fee_currency, fee_quote, {self._ms('ts')} "
            f"FROM fills {where} ORDER BY strategy_id, seq, ts, fill_id",
            [strategy_id] if strategy_id else [],
        )
        return [
            Fill(
                r.fill_id,
                r.client_order_id,
                r.strategy_id,
                r.symbol,
                Side(r.side),
                r.amount,
                r.price,
                r.fee,
                int(r.ts_ms),
                r.purpose,
                fee_currency=_opt_str(r.fee_currency) or "",
                fee_quote=_opt(r.fee_quote),
            )
            for r in raw.itertuples()
        ]

    # -- results ----------------------------------------------------------------------------
    def save_round_trip(self, strategy_id: str, trade_no: int, trip: RoundTrip) -> None:
        self._write(
            "save_round_trip",
            [
                strategy_id,
                trade_no,
                trip.symbol,
                trip.direction,
                ts_param(trip.entry_ms),
                ts_param(trip.exit_ms),
                trip.amount,
                trip.entry_price,
                trip.exit_price,
                trip.pnl,
                trip.fees,
            ],
        )

    def trade_count(self, strategy_id: str) -> int:
        """Give the number of the strategy's last stored closed trade (0: none)."""
        row = self._fetchone(
            "SELECT coalesce(max(trade_no), 0) FROM round_trips WHERE strategy_id = ?",
            [strategy_id],
        )
        return int(row[0]) if row else 0

    def round_trips(
        self, strategy_id: str | None = None, latest: int | None = None
    ) -> pd.DataFrame:
        """Give closed trades by strategy and number; or the ``latest`` by exit, newest first."""
        where = "WHERE strategy_id = ?" if strategy_id else ""
        args: list[Any] = [strategy_id] if strategy_id else []
        if latest is None:
            return self._frame(
                f"SELECT * FROM round_trips {where} ORDER BY strategy_id, trade_no", args
            )
        return self._frame(
            f"SELECT * FROM round_trips {where} ORDER BY exit_time DESC, strategy_id LIMIT ?",
            [*args, latest],
        )

    def win_rates(self) -> pd.Series:
        """Give each strategy's share of closed trades with a positive P&L."""
        frame = self._frame(
            "SELECT strategy_id, avg(CASE WHEN pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate "
            "FROM round_trips GROUP BY strategy_id"
        )
        return frame.set_index("strategy_id")["win_rate"]

    def save_equity_rows(self, rows: list[tuple[str, int, float, float, float, float]]) -> None:
        """Store many (strategy_id, ts_ms, equity, cash, position, price) rows at once."""
        if rows:
            self._write("save_equity_rows", [list(row) for row in rows])

    def equity(self, strategy_id: str | None = None) -> pd.DataFrame:
        where = "WHERE strategy_id = ?" if strategy_id else ""
        return self._frame(
            f"SELECT * FROM equity {where} ORDER BY strategy_id, ts",
            [strategy_id] if strategy_id else [],
        )

    def equity_marks(self, strategy_id: str, after_ms: int = -1) -> list[tuple[int, float]]:
        """Give a strategy's (ts_ms, equity) marks after `after_ms`, oldest first."""
        rows = self._fetchall(
            f"SELECT {self.db.dialect.epoch_ms('ts')}, equity FROM equity "
            "WHERE strategy_id = ? AND ts > ? ORDER BY ts",
            [strategy_id, ts_param(after_ms)],
        )
        return [(int(ts_ms), float(equity)) for ts_ms, equity in rows]

    def last_mark_ms(self, strategy_ids: list[str]) -> int | None:
        """Give the newest equity mark's bar time (epoch ms) among these strategies, if any."""
        if not strategy_ids:
            return None
        row = self._fetchone(
            "SELECT max(ts) FROM equity WHERE strategy_id IN "
            f"({', '.join('?' for _ in strategy_ids)})",
            list(strategy_ids),
        )
        return None if row is None else ms_of(row[0])

    # -- risk -------------------------------------------------------------------------------
    def save_risk_state(self, strategy_id: str, state: RiskState) -> None:
        """Record the drawdown guard's state of a strategy (replacing the one before)."""
        self._write("save_risk_state", _risk_row(strategy_id, state))

    def risk_state(self, strategy_id: str) -> RiskState | None:
        """Give a strategy's stored drawdown guard state, if any."""
        row = self._fetchone(
            "SELECT marked_at, peak_equity, day_start, day_start_equity, halted_until, halts "
            "FROM risk_state WHERE strategy_id = ?",
            [strategy_id],
        )
        if row is None:
            return None
        marked_at, peak, day_start, day_start_equity, halted_until, halts = row
        halted_until_ms = ms_of(halted_until)
        return RiskState(
            peak_equity=float(peak),
            day_start_ms=int(ms_of(day_start) or 0),
            day_start_equity=float(day_start_equity),
            halted_until_ms=-1 if halted_until_ms is None else halted_until_ms,
            halts=[int(h) for h in halts],
            marked_ms=int(ms_of(marked_at) or 0),
        )

    def save_refusal(
        self,
        strategy_id: str,
        ts_ms: int,
        symbol: str,
        side: str,
        amount: float,
        purpose: str,
        rule: str,
        detail: dict[str, Any],
    ) -> None:
        self._write(
            "save_refusal",
            [
                strategy_id,
                ts_param(ts_ms),
                symbol,
                side,
                amount,
                purpose,
                rule,
                json.dumps(detail, sort_keys=True),
            ],
        )

    def refusals(self, strategy_id: str | None = None, latest: int | None = None) -> pd.DataFrame:
        """Give refused orders in time order; or the ``latest``, newest first."""
        where = "WHERE strategy_id = ?" if strategy_id else ""
        args: list[Any] = [strategy_id] if strategy_id else []
        if latest is None:
            return self._frame(f"SELECT * FROM refused_orders {where} ORDER BY ts", args)
        return self._frame(
            f"SELECT * FROM refused_orders {where} ORDER BY ts DESC LIMIT ?", [*args, latest]
        )


def _opt(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _opt_str(value: Any) -> str | None:
    # pandas gives NaN for a NULL text column whose values are all NULL
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)

"""Trade bookkeeping of the compiled simulation: vectorbt's exit trades, and their records.

An order either opens or adds to a symbol's trade, or closes (part of) it, as vectorbt's
``get_exit_trades_nb`` books them: the entry price is the size-weighted average of the entry
fills, each exit takes its share of the entry fees, and a partial exit (a short covered with
too little cash) leaves the rest open. The P&L of each closed trade is kept for the trade
statistics; a run that keeps records writes every trade as a row of `N_FIELDS` floats.
"""

from __future__ import annotations

import numpy as np

from workbench.backtest import ledger
from workbench.backtest.ledger import is_close_nb, trade_pnl_nb
from workbench.kernel_cache import drop_stale, njit

# A symbol's open trade: in a trade, short, size, gross (size x price), fees, entry row.
T_OPEN, T_SHORT, T_SIZE, T_GROSS, T_FEES, T_ROW = 0, 1, 2, 3, 4, 5
TRADE_STATE_SIZE = 6

# One trade record.
R_COMB, R_SYM, R_SHORT, R_ENTRY_ROW, R_ENTRY_PRICE, R_SIZE, R_ENTRY_FEES = 0, 1, 2, 3, 4, 5, 6
R_EXIT_ROW, R_EXIT_PRICE, R_EXIT_FEES, R_PNL, R_RETURN, R_CLOSED, R_REASON = 7, 8, 9, 10, 11, 12, 13
N_FIELDS = 14


@njit(cache=True, inline="always")
def _record(
    records: np.ndarray,
    n_records: np.ndarray,
    comb: int,
    s: int,
    trade: np.ndarray,
    size: float,
    entry_price: float,
    entry_fees: float,
    row: int,
    exit_price: float,
    exit_fees: float,
    pnl: float,
    closed: bool,
    reason: int,
) -> None:
    k = n_records[0]
    rec = records[k]
    rec[R_COMB] = comb
    rec[R_SYM] = s
    rec[R_SHORT] = trade[s, T_SHORT]
    rec[R_ENTRY_ROW] = trade[s, T_ROW]
    rec[R_ENTRY_PRICE] = entry_price
    rec[R_SIZE] = size
    rec[R_ENTRY_FEES] = entry_fees
    rec[R_EXIT_ROW] = row
    rec[R_EXIT_PRICE] = exit_price
    rec[R_EXIT_FEES] = exit_fees
    rec[R_PNL] = pnl
    rec[R_RETURN] = pnl / (size * entry_price)  # vectorbt's return: on the entry value
    rec[R_CLOSED] = 1.0 if closed else 0.0
    rec[R_REASON] = reason
    n_records[0] = k + 1


@njit(cache=True, inline="always")
def book_trade_nb(
    trade: np.ndarray,
    s: int,
    bought: bool,
    qty: float,
    fill: float,
    fee: float,
    pnl: np.ndarray,
    n_trades: np.ndarray,
    row: int,
    reason: int,
    keep: bool,
    records: np.ndarray,
    n_records: np.ndarray,
    comb: int,
) -> None:
    """Book an order of symbol s (filled ``qty`` at ``fill`` paying ``fee``) at ``row``."""
    if trade[s, T_OPEN] == 0.0:
        trade[s, T_OPEN] = 1.0
        trade[s, T_SHORT] = 0.0 if bought else 1.0
        trade[s, T_SIZE] = 0.0
        trade[s, T_GROSS] = 0.0
        trade[s, T_FEES] = 0.0
        trade[s, T_ROW] = row
    short = trade[s, T_SHORT] == 1.0
    if bought != short:
        trade[s, T_SIZE] += qty
        trade[s, T_GROSS] += qty * fill
        trade[s, T_FEES] += fee
        return
    size_sum = trade[s, T_SIZE]
    closes_all = is_close_nb(qty, size_sum)
    exit_size = size_sum if closes_all else qty
    entry_price = trade[s, T_GROSS] / size_sum
    entry_fees = exit_size / size_sum * trade[s, T_FEES]
    p = trade_pnl_nb(exit_size, entry_price, entry_fees, fill, fee, short)
    pnl[s, n_trades[s]] = p
    n_trades[s] += 1
    if keep:
        _record(
            records,
            n_records,
            comb,
            s,
            trade,
            exit_size,
            entry_price,
            entry_fees,
            row,
            fill,
            fee,
            p,
            True,
            reason,
        )
    if closes_all:
        trade[s, T_OPEN] = 0.0
    else:
        # A partial exit (a short covered with too little cash): the rest stays open.
        fraction = (size_sum - qty) / size_sum
        trade[s, T_SIZE] *= fraction
        trade[s, T_GROSS] *= fraction
        trade[s, T_FEES] *= fraction


@njit(cache=True)
def record_open_trades_nb(
    trade: np.ndarray,
    close: np.ndarray,
    last_row: int,
    records: np.ndarray,
    n_records: np.ndarray,
    comb: int,
) -> None:
    """Write the trades still open after the last bar, valued at its close (no exit fee)."""
    n_sym, n_bars = close.shape
    for s in range(n_sym):
        if trade[s, T_OPEN] == 0.0 or trade[s, T_SIZE] <= 0.0:
            continue
        size = trade[s, T_SIZE]
        entry_price = trade[s, T_GROSS] / size
        last = close[s, n_bars - 1]
        pnl = trade_pnl_nb(size, entry_price, trade[s, T_FEES], last, 0.0, trade[s, T_SHORT] == 1.0)
        _record(
            records,
            n_records,
            comb,
            s,
            trade,
            size,
            entry_price,
            trade[s, T_FEES],
            last_row,
            last,
            0.0,
            pnl,
            False,
            0,
        )


# Cached kernels older than the ledger they call are compiled anew (see kernel_cache).
drop_stale((_record, book_trade_nb, record_open_trades_nb), (ledger,))

"""The statistics of `workbench.portfolio.stats`, in numba, for one combination at a time.

The fused sweep computes each combination's row straight from its equity curve and closed-trade
P&Ls, without building ``(bars, combinations)`` arrays. The definitions (annualization,
Sharpe, Sortino, CAGR, drawdowns, trade statistics) are those documented in
`workbench.portfolio.stats`; the arithmetic follows numpy's, down to its pairwise summation,
so a row equals ``equity_stats``/``trade_stats`` of the same curve to the last bit or nearly
(tests/backtest/test_fused.py compares them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from workbench.portfolio.stats import STAT_COLUMNS

N_STATS = len(STAT_COLUMNS)
_AT = {name: i for i, name in enumerate(STAT_COLUMNS)}
TOTAL_RETURN = _AT["total_return"]
CAGR = _AT["cagr"]
SHARPE = _AT["sharpe"]
SORTINO = _AT["sortino"]
CALMAR = _AT["calmar"]
MAX_DRAWDOWN = _AT["max_drawdown"]
MAX_DRAWDOWN_BARS = _AT["max_drawdown_bars"]
MAX_DRAWDOWN_DAYS = _AT["max_drawdown_days"]
WIN_RATE = _AT["win_rate"]
PROFIT_FACTOR = _AT["profit_factor"]
EXPECTANCY = _AT["expectancy"]
TRADES = _AT["trades"]
EXPOSURE = _AT["exposure"]
FEES = _AT["fees"]
FINAL_EQUITY = _AT["final_equity"]
INT_STATS = ("max_drawdown_bars", "trades")


@njit(cache=True)
def _block_sum_nb(a: np.ndarray, lo: int, n: int) -> float:
    """Give numpy's sum of at most 128 contiguous values (8 interleaved accumulators)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    stop = lo + n - n % 8
    i = lo + 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += a[i]
        i += 1
    return res


@njit(cache=True)
def pairwise_sum_nb(a: np.ndarray, lo: int, n: int) -> float:
    """Give the sum of ``a[lo:lo+n]`` as numpy sums a contiguous float64 array (pairwise).

    numpy halves the range (at a multiple of 8) until blocks of at most 128 remain and adds
    the halves' sums; this walks the same tree with an explicit stack (numba's cache cannot
    reload a recursive function).
    """
    if n <= 128:
        return _block_sum_nb(a, lo, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    stage = np.empty(64, dtype=np.int64)
    sums = np.empty(64)
    top = 0
    done = 0
    starts[0], sizes[0], stage[0] = lo, n, 0
    while top >= 0:
        start, size = starts[top], sizes[top]
        if size <= 128:
            sums[done] = _block_sum_nb(a, start, size)
            done += 1
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        if stage[top] == 0:
            stage[top] = 1
            top += 1
            starts[top], sizes[top], stage[top] = start, half, 0
        elif stage[top] == 1:
            stage[top] = 2
            top += 1
            starts[top], sizes[top], stage[top] = start + half, size - half, 0
        else:
            done -= 1
            sums[done - 1] = sums[done - 1] + sums[done]
            top -= 1
    return sums[0]


@njit(cache=True)
def equity_stats_nb(
    equity: np.ndarray,
    scratch: np.ndarray,
    init_cash: float,
    periods_per_year: float,
    years: float,
    timeframe_seconds: int,
    out: np.ndarray,
) -> None:
    """Write the equity statistics of one curve into ``out`` (a row of N_STATS).

    ``scratch`` is a float64 buffer at least twice as long as ``equity``.
    """
    n = len(equity)
    final = equity[n - 1]
    growth = final / init_cash
    cagr = (max(growth, 0.0) ** (1.0 / years) - 1.0) if growth > 0 else -1.0
    rets = scratch[:n]
    work = scratch[n : 2 * n]
    prev = init_cash
    for t in range(n):
        e = equity[t]
        # x / x - 1 is exactly 0: flat bars need no division.
        rets[t] = 0.0 if (e == prev and prev != 0.0) else e / prev - 1.0
        prev = e
    mean = pairwise_sum_nb(rets, 0, n) / n
    sharpe = np.nan
    if n > 1:
        # numpy's var: deviations squared, then summed pairwise.
        for t in range(n):
            d = rets[t] - mean
            work[t] = d * d
        std = np.sqrt(pairwise_sum_nb(work, 0, n) / (n - 1))
        if std > 0:
            sharpe = mean / std * np.sqrt(periods_per_year)
    for t in range(n):
        m = min(rets[t], 0.0)
        work[t] = m * m
    downside = np.sqrt(pairwise_sum_nb(work, 0, n) / n)
    sortino = mean / downside * np.sqrt(periods_per_year) if downside > 0 else np.nan
    # Below one peak, 1 - e / peak is largest at the lowest e (division rounds monotonically):
    # one division per stretch below a peak gives numpy's maximum exactly.
    peak = init_cash
    low = np.inf
    max_dd = 0.0
    run = 0
    longest = 0
    for t in range(n):
        e = equity[t]
        if e < peak:
            low = min(low, e)
            run += 1
            longest = max(longest, run)
        else:
            if low < peak:
                max_dd = max(max_dd, 1.0 - low / peak)
            low = np.inf
            peak = e
            run = 0
    if low < peak:
        max_dd = max(max_dd, 1.0 - low / peak)
    out[TOTAL_RETURN] = growth - 1.0
    out[CAGR] = cagr
    out[SHARPE] = sharpe
    out[SORTINO] = sortino
    out[CALMAR] = cagr / max_dd if max_dd > 0 else np.nan
    out[MAX_DRAWDOWN] = max_dd
    out[MAX_DRAWDOWN_BARS] = longest
    out[MAX_DRAWDOWN_DAYS] = longest * timeframe_seconds / 86400.0
    out[FINAL_EQUITY] = final


@njit(cache=True)
def trade_stats_nb(pnl: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    """Write win rate, profit factor, expectancy and count of closed trades into ``out``.

    ``pnl[s, :counts[s]]`` are the closed trades of symbol s in time order; they are summed
    symbol by symbol, as ``np.bincount`` sums trade records ordered by column.
    """
    count = 0
    wins = 0.0
    gross_profit = 0.0
    losses = 0.0
    total = 0.0
    for s in range(pnl.shape[0]):
        for j in range(counts[s]):
            p = pnl[s, j]
            count += 1
            wins += 1.0 if p > 0 else 0.0
            gross_profit += p if p > 0 else 0.0
            losses += p if p < 0 else 0.0
            total += p
    gross_loss = -losses
    if gross_loss > 0:
        factor = gross_profit / gross_loss
    elif gross_profit > 0:
        factor = np.inf
    else:
        factor = np.nan
    out[WIN_RATE] = wins / count if count > 0 else np.nan
    out[PROFIT_FACTOR] = factor
    out[EXPECTANCY] = total / count if count > 0 else np.nan
    out[TRADES] = count

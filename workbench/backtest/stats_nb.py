"""The statistics of `workbench.portfolio.stats`, in numba, for one combination at a time.

The fused sweep computes each combination's row while it walks the bars, without keeping an
equity curve: a running accumulator (`acc_step_nb`, one bar; `acc_flat_nb`, any number of
bars at unchanged equity in O(1)) and closed-trade P&Ls. The definitions (annualization,
Sharpe, Sortino, CAGR, drawdowns, trade statistics) are those documented in
`workbench.portfolio.stats`; sums are compensated, so a row equals ``equity_stats``/
``trade_stats`` of the same curve to ~1e-15 relative (tests/backtest/test_fused.py compares).
"""

from __future__ import annotations

import numpy as np

from workbench.kernel_cache import njit
from workbench.portfolio.stats import STAT_COLUMNS

#: The statistics of a run: those of `workbench.portfolio.stats`, and the orders the market's
#: rules refused (`workbench.lots`).
RUN_COLUMNS = (*STAT_COLUMNS, "refused_orders")
N_STATS = len(RUN_COLUMNS)
_AT = {name: i for i, name in enumerate(RUN_COLUMNS)}
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
REFUSED = _AT["refused_orders"]
INT_STATS = ("max_drawdown_bars", "trades", "refused_orders")


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


# The running statistics of one equity curve, a float64 row of ACC_SIZE (see `acc_step_nb`).
ACC_PREV, ACC_N, ACC_BLOCK, ACC_BLOCK_N, ACC_SUM, ACC_COMP, ACC_SQ, ACC_DOWN = range(8)
ACC_PEAK, ACC_LOW, ACC_MAX_DD, ACC_RUN, ACC_LONGEST = range(8, 13)
ACC_SIZE = 13
BLOCK = 256  # returns summed plainly before they join the compensated total


@njit(cache=True)
def acc_start_nb(acc: np.ndarray, init_cash: float) -> None:
    """Start ``acc`` on a curve whose first bar returns against ``init_cash``."""
    acc[:] = 0.0
    acc[ACC_PREV] = init_cash
    acc[ACC_PEAK] = init_cash
    acc[ACC_LOW] = np.inf


@njit(cache=True, inline="always")
def neumaier_nb(total: float, comp: float, x: float) -> tuple[float, float]:
    """Give (total, compensation) after adding ``x`` (Neumaier's compensated sum)."""
    t = total + x
    if abs(total) >= abs(x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    return t, comp


@njit(cache=True, inline="always")
def acc_step_nb(
    e: float,
    prev: float,
    n: float,
    block: float,
    block_n: float,
    total: float,
    comp: float,
    sq: float,
    down: float,
    peak: float,
    low: float,
    max_dd: float,
    run: float,
    longest: float,
) -> tuple[
    float, float, float, float, float, float, float, float, float, float, float, float, float
]:
    """Take one bar of equity ``e`` into the running statistics; give them updated.

    The bar's return is numpy's ``e / prev - 1`` (exactly 0 for a flat bar). Returns are
    summed in blocks of `BLOCK`, each block joining a compensated (Neumaier) total: the mean
    and the one-pass variance then equal numpy's pairwise two-pass ones to ~1e-13 (the sums
    of squares add positive terms only). Below one peak, ``1 - e / peak`` is largest at the
    lowest ``e`` (division rounds monotonically), so one division per stretch below a peak
    gives numpy's maximum drawdown exactly.
    """
    r = 0.0 if (e == prev and prev != 0.0) else e / prev - 1.0
    block += r
    block_n += 1.0
    if block_n == BLOCK:
        total, comp = neumaier_nb(total, comp, block)
        block = 0.0
        block_n = 0.0
    sq += r * r
    m = r if r < 0.0 else 0.0
    down += m * m
    if e < peak:
        if e < low:
            low = e
        run += 1.0
        if run > longest:
            longest = run
    else:
        if low < peak:
            max_dd = max(max_dd, 1.0 - low / peak)
        low = np.inf
        peak = e
        run = 0.0
    return e, n + 1.0, block, block_n, total, comp, sq, down, peak, low, max_dd, run, longest


@njit(cache=True, inline="always")
def acc_flat_nb(
    count: int,
    prev: float,
    n: float,
    peak: float,
    low: float,
    max_dd: float,
    run: float,
    longest: float,
) -> tuple[float, float, float, float, float, float]:
    """Take ``count`` more bars at the previous equity ``prev``: give (n, peak, low, max_dd,
    run, longest). Their returns are 0 and add nothing to the sums; only the count and a
    stretch below a peak grow (in O(1), whatever ``count``)."""
    if count <= 0:
        return n, peak, low, max_dd, run, longest
    if prev < peak:
        low = min(low, prev)
        run += count
        longest = max(longest, run)
    else:
        if low < peak:
            max_dd = max(max_dd, 1.0 - low / peak)
        low = np.inf
        peak = prev
        run = 0.0
    return n + count, peak, low, max_dd, run, longest


@njit(cache=True, inline="always")
def _below_peak_nb(
    e: float, peak: float, low: float, max_dd: float, run: float, longest: float
) -> tuple[float, float, float, float, float]:
    """Take one bar of equity ``e`` into the drawdown of a held stretch: give (peak, low,
    max_dd, run, longest). As `acc_step_nb`, but the longest run is taken when a run ends."""
    if e < peak:
        low = min(low, e)
        run += 1.0
    else:
        if low < peak:
            max_dd = max(max_dd, 1.0 - low / peak)
        longest = max(longest, run)
        low = np.inf
        peak = e
        run = 0.0
    return peak, low, max_dd, run, longest


@njit(cache=True, inline="always")
def acc_held_nb(
    acc: np.ndarray, close: np.ndarray, lo: int, stop: int, cash: float, units: float
) -> None:
    """Take the bars ``lo..stop-1`` of a position held unchanged into ``acc``.

    Bar j's equity is vectorbt's ``cash + (0.0 + close[j] * units)``. The same statistics as
    `acc_step_nb` bar by bar, arranged for speed: a bar's previous equity is computed again
    from the previous close (so the returns do not depend on one another), the sums run in
    four interleaved lanes and join the compensated total once per stretch, and the longest
    run below a peak is taken when the run ends; the drawdown is followed in the same pass,
    bar after bar, while the divisions of the returns are under way. Sums differ from the
    bar-by-bar ones in the last bits only (both are compensated: ~1e-15 relative).
    """
    count = stop - lo
    if count <= 0:
        return
    peak, low, max_dd = acc[ACC_PEAK], acc[ACC_LOW], acc[ACC_MAX_DD]
    run, longest = acc[ACC_RUN], acc[ACC_LONGEST]
    prev = acc[ACC_PREV]
    e = cash + (0.0 + close[lo] * units)
    r = e / prev - 1.0
    m = min(r, 0.0)
    s0, q0, d0 = r, r * r, m * m
    s1 = s2 = s3 = 0.0
    q1 = q2 = q3 = 0.0
    d1 = d2 = d3 = 0.0
    peak, low, max_dd, run, longest = _below_peak_nb(e, peak, low, max_dd, run, longest)
    j = lo + 1
    while j + 4 <= stop:
        e0 = cash + (0.0 + close[j] * units)
        e1 = cash + (0.0 + close[j + 1] * units)
        e2 = cash + (0.0 + close[j + 2] * units)
        e3 = cash + (0.0 + close[j + 3] * units)
        p0 = cash + (0.0 + close[j - 1] * units)
        r0 = e0 / p0 - 1.0
        r1 = e1 / e0 - 1.0
        r2 = e2 / e1 - 1.0
        r3 = e3 / e2 - 1.0
        s0 += r0
        s1 += r1
        s2 += r2
        s3 += r3
        q0 += r0 * r0
        q1 += r1 * r1
        q2 += r2 * r2
        q3 += r3 * r3
        m0, m1, m2, m3 = min(r0, 0.0), min(r1, 0.0), min(r2, 0.0), min(r3, 0.0)
        d0 += m0 * m0
        d1 += m1 * m1
        d2 += m2 * m2
        d3 += m3 * m3
        peak, low, max_dd, run, longest = _below_peak_nb(e0, peak, low, max_dd, run, longest)
        peak, low, max_dd, run, longest = _below_peak_nb(e1, peak, low, max_dd, run, longest)
        peak, low, max_dd, run, longest = _below_peak_nb(e2, peak, low, max_dd, run, longest)
        peak, low, max_dd, run, longest = _below_peak_nb(e3, peak, low, max_dd, run, longest)
        j += 4
    while j < stop:
        e0 = cash + (0.0 + close[j] * units)
        p0 = cash + (0.0 + close[j - 1] * units)
        r0 = e0 / p0 - 1.0
        m0 = min(r0, 0.0)
        s0 += r0
        q0 += r0 * r0
        d0 += m0 * m0
        peak, low, max_dd, run, longest = _below_peak_nb(e0, peak, low, max_dd, run, longest)
        j += 1
    acc[ACC_SUM], acc[ACC_COMP] = neumaier_nb(acc[ACC_SUM], acc[ACC_COMP], (s0 + s1) + (s2 + s3))
    acc[ACC_SQ] += (q0 + q1) + (q2 + q3)
    acc[ACC_DOWN] += (d0 + d1) + (d2 + d3)
    acc[ACC_N] += count
    acc[ACC_PEAK], acc[ACC_LOW], acc[ACC_MAX_DD] = peak, low, max_dd
    acc[ACC_RUN], acc[ACC_LONGEST] = run, max(longest, run)
    acc[ACC_PREV] = cash + (0.0 + close[stop - 1] * units)


@njit(cache=True, inline="always")
def acc_bar_nb(acc: np.ndarray, e: float) -> None:
    """Take one bar of equity into the running statistics held in ``acc``."""
    (
        acc[ACC_PREV],
        acc[ACC_N],
        acc[ACC_BLOCK],
        acc[ACC_BLOCK_N],
        acc[ACC_SUM],
        acc[ACC_COMP],
        acc[ACC_SQ],
        acc[ACC_DOWN],
        acc[ACC_PEAK],
        acc[ACC_LOW],
        acc[ACC_MAX_DD],
        acc[ACC_RUN],
        acc[ACC_LONGEST],
    ) = acc_step_nb(
        e,
        acc[ACC_PREV],
        acc[ACC_N],
        acc[ACC_BLOCK],
        acc[ACC_BLOCK_N],
        acc[ACC_SUM],
        acc[ACC_COMP],
        acc[ACC_SQ],
        acc[ACC_DOWN],
        acc[ACC_PEAK],
        acc[ACC_LOW],
        acc[ACC_MAX_DD],
        acc[ACC_RUN],
        acc[ACC_LONGEST],
    )


@njit(cache=True)
def acc_finish_nb(
    acc: np.ndarray,
    init_cash: float,
    periods_per_year: float,
    years: float,
    timeframe_seconds: int,
    out: np.ndarray,
) -> None:
    """Write the equity statistics of the curve ``acc`` ran over into ``out`` (N_STATS)."""
    n = acc[ACC_N]
    final = acc[ACC_PREV]
    growth = final / init_cash
    cagr = (max(growth, 0.0) ** (1.0 / years) - 1.0) if growth > 0 else -1.0
    total, comp = neumaier_nb(acc[ACC_SUM], acc[ACC_COMP], acc[ACC_BLOCK])
    total = total + comp
    mean = total / n
    sharpe = np.nan
    if n > 1:
        # sum((r - mean)^2) = sum(r^2) - total * mean, never below 0.
        var = max(acc[ACC_SQ] - total * mean, 0.0) / (n - 1.0)
        std = np.sqrt(var)
        if std > 0:
            sharpe = mean / std * np.sqrt(periods_per_year)
    downside = np.sqrt(acc[ACC_DOWN] / n)
    sortino = mean / downside * np.sqrt(periods_per_year) if downside > 0 else np.nan
    max_dd = acc[ACC_MAX_DD]
    low, peak = acc[ACC_LOW], acc[ACC_PEAK]
    if low < peak:
        max_dd = max(max_dd, 1.0 - low / peak)
    longest = acc[ACC_LONGEST]
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
def equity_stats_nb(
    equity: np.ndarray,
    init_cash: float,
    periods_per_year: float,
    years: float,
    timeframe_seconds: int,
    out: np.ndarray,
) -> None:
    """Write the equity statistics of one whole curve into ``out`` (a row of N_STATS)."""
    acc = np.empty(ACC_SIZE)
    acc_start_nb(acc, init_cash)
    for t in range(len(equity)):
        acc_bar_nb(acc, equity[t])
    acc_finish_nb(acc, init_cash, periods_per_year, years, timeframe_seconds, out)


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

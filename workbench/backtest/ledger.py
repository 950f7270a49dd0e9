"""Cash, positions and trades for the fused sweep: vectorbt's order arithmetic, in numba.

`workbench.backtest.engine.simulate` lets vectorbt's ``Portfolio.from_signals`` execute the
planned orders; the fused sweep (`workbench.backtest.fused`) executes them itself with these
functions, which repeat vectorbt's (1.2) arithmetic operation for operation so that both paths
give the same numbers: the same tolerance-based rounding to zero (``add_nb``), the same cash
limit for buys (the cash balance; a fraction size spends that fraction of it, fees included),
the same short-sale limit for fraction sizes (the FREE cash: cash not backing other shorts),
the same partial fills when cash runs short, and the same exit-trade records (entry fees
prorated by the size each exit closes).

Only the settings the engine uses are covered: no fixed fees, no size granularity, no
minimum/maximum size, no cash locking, partial fills allowed.

Fees: vectorbt charges a quote fee on the base amount an order moves. A fee taken from the
base received is the same trade in those terms (`fee_rates`).
"""

from __future__ import annotations

import numpy as np

from workbench.fills import FeeIn, FillModel, Side
from workbench.kernel_cache import njit

REL_TOL = 1e-9  # vectorbt.utils.math_.rel_tol
ABS_TOL = 1e-12  # vectorbt.utils.math_.abs_tol

LONG_ONLY = 0  # vectorbt Direction
SHORT_ONLY = 1
BOTH = 2


def fee_rates(fill_model: FillModel) -> tuple[float, float]:
    """Give (buy, sell) fee rates in vectorbt's terms for an account of the market's balances.

    With the fee in the asset received, a buy of ``q`` at ``p`` costs ``q * p`` quote and adds
    ``q * (1 - f)`` base: vectorbt's buy of the ``q * (1 - f)`` held with a quote fee of rate
    ``f / (1 - f)`` on it (the same cost, the same fee value ``q * p * f``); a sell pays ``f``
    in quote. With BNB the fee is charged in quote value at the discounted rate
    (`FillModel.on_pair`).
    """
    model = fill_model.on_pair()
    rate = model.effective_rate
    if model.fee_in(Side.BUY) is FeeIn.BASE:
        return rate / (1.0 - rate), rate
    return rate, rate


@njit(cache=True)
def is_close_nb(a: float, b: float) -> bool:
    """Tell whether two values are equal within vectorbt's tolerances."""
    if np.isnan(a) or np.isnan(b):
        return False
    if np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@njit(cache=True)
def is_close_or_less_nb(a: float, b: float) -> bool:
    return is_close_nb(a, b) or a < b


@njit(cache=True)
def is_less_nb(a: float, b: float) -> bool:
    return (not is_close_nb(a, b)) and a < b


@njit(cache=True)
def add_nb(a: float, b: float) -> float:
    """Give a + b, or exactly 0 when the sum is zero within tolerance (vectorbt's add_nb)."""
    zero = is_close_nb(abs(a), abs(b)) if np.sign(a) != np.sign(b) else is_close_nb(a + b, 0.0)
    return 0.0 if zero else a + b


@njit(cache=True)
def _zeroed(x: float) -> float:
    return 0.0 if is_close_nb(x, 0.0) else x


@njit(cache=True)
def buy_nb(
    cash: float,
    position: float,
    debt: float,
    free_cash: float,
    size: float,
    price: float,
    direction: int,
    fees: float,
    slippage: float,
    percent: float,
) -> tuple[bool, float, float, float, float, float, float, float]:
    """Give (filled, cash, position, debt, free cash, size, fill price, fees) after a buy.

    ``size`` is in base units (``np.inf`` with ``percent`` for a fraction of the cash).
    """
    cash, position, debt, free_cash = (
        _zeroed(cash),
        _zeroed(position),
        _zeroed(debt),
        _zeroed(free_cash),
    )
    adj_price = price * (1 + slippage)
    cash_limit = cash  # no cash locking: the whole balance
    if not np.isnan(percent):
        cash_limit = min(cash_limit, percent * cash_limit)
    nothing = (False, cash, position, debt, free_cash, np.nan, np.nan, np.nan)
    if direction in (LONG_ONLY, BOTH):
        if cash_limit == 0:
            return nothing
    elif position == 0:
        return nothing
    adj_size = min(-position, size) if direction == SHORT_ONLY else size
    if adj_size == 0:
        return nothing
    req_cash = adj_size * adj_price
    req_fees = req_cash * fees + 0.0
    total_req_cash = req_cash + req_fees
    if is_close_or_less_nb(total_req_cash, cash_limit):
        final_size = adj_size
        fees_paid = req_fees
        final_req_cash = total_req_cash
    else:
        max_req_cash = add_nb(cash_limit, -0.0) / (1 + fees)
        if max_req_cash <= 0:
            return nothing
        final_size = max_req_cash / adj_price
        fees_paid = cash_limit - max_req_cash
        final_req_cash = cash_limit
    if is_close_nb(adj_size, 0) or is_less_nb(final_size, 0.0):
        return nothing
    new_cash = add_nb(cash, -final_req_cash)
    new_position = add_nb(position, final_size)
    if position < 0:
        short_size = final_size if new_position < 0 else abs(position)
        debt_diff = short_size * (debt / abs(position))
        new_debt = add_nb(debt, -debt_diff)
        new_free_cash = add_nb(free_cash + 2 * debt_diff, -final_req_cash)
    else:
        new_debt = debt
        new_free_cash = add_nb(free_cash, -final_req_cash)
    return True, new_cash, new_position, new_debt, new_free_cash, final_size, adj_price, fees_paid


@njit(cache=True)
def sell_nb(
    cash: float,
    position: float,
    debt: float,
    free_cash: float,
    size: float,
    price: float,
    direction: int,
    fees: float,
    slippage: float,
    percent: float,
) -> tuple[bool, float, float, float, float, float, float, float]:
    """Give (filled, cash, position, debt, free cash, size, fill price, fees) after a sell.

    ``size`` is in base units (``np.inf`` with ``percent`` for a fraction of the free cash).
    """
    cash, position, debt, free_cash = (
        _zeroed(cash),
        _zeroed(position),
        _zeroed(debt),
        _zeroed(free_cash),
    )
    adj_price = price * (1 - slippage)
    nothing = (False, cash, position, debt, free_cash, np.nan, np.nan, np.nan)
    if direction == LONG_ONLY:
        size_limit = min(position, size)
    elif np.isinf(size) and not np.isnan(percent):
        long_size = max(position, 0.0)
        long_cash = long_size * adj_price * (1 - fees)
        total_free_cash = add_nb(free_cash, long_cash)
        if total_free_cash <= 0:
            if position <= 0:
                return nothing
            size_limit = long_size
        else:
            max_short_size = add_nb(total_free_cash, -0.0) / (adj_price * (1 + fees))
            size_limit = add_nb(long_size, max_short_size)
            if size_limit <= 0:
                return nothing
    else:
        size_limit = size
    if not np.isnan(percent):
        size_limit = percent * size_limit
    if direction == LONG_ONLY and position == 0:
        return nothing
    if is_close_nb(size_limit, 0) or is_less_nb(size_limit, 0.0):
        return nothing
    acq_cash = size_limit * adj_price
    fees_paid = acq_cash * fees + 0.0
    final_acq_cash = add_nb(acq_cash, -fees_paid)
    if final_acq_cash < 0:
        return nothing
    new_cash = cash + final_acq_cash
    new_position = add_nb(position, -size_limit)
    if new_position < 0:
        short_size = size_limit if position < 0 else abs(new_position)
        short_value = short_size * adj_price
        new_debt = debt + short_value
        new_free_cash = add_nb(free_cash, add_nb(final_acq_cash, -2 * short_value))
    else:
        new_debt = debt
        new_free_cash = free_cash + final_acq_cash
    return True, new_cash, new_position, new_debt, new_free_cash, size_limit, adj_price, fees_paid


@njit(cache=True)
def trade_pnl_nb(
    size: float,
    entry_price: float,
    entry_fees: float,
    exit_price: float,
    exit_fees: float,
    short: bool,
) -> float:
    """Give a closed trade's P&L in quote, fees included (vectorbt's get_trade_stats_nb)."""
    val_diff = add_nb(size * exit_price, -(size * entry_price))
    if val_diff != 0 and short:
        val_diff *= -1
    return val_diff - entry_fees - exit_fees

"""Overfitting guards: the deflated Sharpe ratio of the best of many tried combinations.

Bailey & López de Prado (2014). With N trials whose per-bar Sharpe ratios have variance V,
the best Sharpe expected from luck alone is
``SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))`` (g = Euler-Mascheroni, Z the
normal quantile). The deflated Sharpe ratio is the probability that the best strategy's true
Sharpe exceeds SR0, given T bar returns with skewness S and kurtosis K:
``DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - S * SR + (K - 1) / 4 * SR^2))``.
All Sharpe ratios here are per bar (annualized / sqrt(periods per year)).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Give the per-bar Sharpe the best of ``n_trials`` reaches by luck (SR0)."""
    if n_trials < 2 or not sharpe_variance > 0:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(
    best_returns: np.ndarray, trial_sharpes_per_bar: np.ndarray, n_trials: int | None = None
) -> dict[str, float]:
    """Give the deflated Sharpe ratio of the best combination, with its ingredients."""
    returns = np.asarray(best_returns, dtype=float)
    returns = returns[np.isfinite(returns)]
    trials = np.asarray(trial_sharpes_per_bar, dtype=float)
    trials = trials[np.isfinite(trials)]
    n = int(n_trials if n_trials is not None else max(len(trials), 1))
    t = len(returns)
    std = returns.std(ddof=1) if t > 1 else 0.0
    sharpe = returns.mean() / std if std > 0 else 0.0
    skew = float(stats.skew(returns)) if t > 2 and std > 0 else 0.0
    kurt = float(stats.kurtosis(returns, fisher=False)) if t > 3 and std > 0 else 3.0
    sr0 = expected_max_sharpe(n, float(trials.var(ddof=1)) if len(trials) > 1 else 0.0)
    denom = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2
    dsr = float(stats.norm.cdf((sharpe - sr0) * math.sqrt(max(t - 1, 1)) / math.sqrt(denom)))
    return {
        "deflated_sharpe": dsr if denom > 0 else math.nan,
        "sharpe_per_bar": float(sharpe),
        "expected_max_sharpe_per_bar": sr0,
        "trials": n,
        "skew": skew,
        "kurtosis": kurt,
        "bars": t,
    }

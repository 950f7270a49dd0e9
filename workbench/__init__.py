"""Crypto trading workbench: research in notebooks, backtests and sweeps, live strategies.

The names a notebook's first hour needs::

    from workbench import Live, Store, backtest, load_settings, load_spec, montecarlo, query
    from workbench import sweep, walkforward

    spec = load_spec("data/strategies/ema_cross_rsi.json")  # SpecError lists every problem
    with Store.open(load_settings().db, read_only=True) as store:
        candles = store.candles.read("local", "ETH/BTC", "5m")
    result = backtest(spec, candles, {"fast": 10})  # BacktestResult: stats, trades, equity
    table = sweep(spec, candles, {"fast": range(5, 30), "slow": [26, 40]},
                  constraints=["fast < slow"])  # one row of statistics per combination
    wf = walkforward(spec, candles, {"fast": [8, 12]}, train="7D", test="2D")
    mc = montecarlo(result, paths=10_000)  # MonteCarloResult: percentiles, P(loss)
    query("SELECT spec_name, count(*) FROM runs GROUP BY 1")  # SQL, even while one trades
    async with Live(paper=True) as live: ...  # the live engine, paper trading

Everything else is one import deeper (`workbench.strategy`, `workbench.backtest`, ...). Each
name is imported when first used (PEP 562), so ``import workbench`` costs next to nothing and
a command pays only for what it runs. Every error the workbench raises on purpose is a
`WorkbenchError`. Architecture: docs/architecture.md.
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing would triple the cost of `import workbench`;
# type checkers read a module constant of that name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from workbench.backtest import BacktestResult
    from workbench.backtest.engine import backtest
    from workbench.backtest.montecarlo import MonteCarloResult
    from workbench.backtest.montecarlo import monte_carlo as montecarlo
    from workbench.backtest.sweep import SweepSettings, sweep
    from workbench.backtest.walkforward import WalkForwardResult
    from workbench.backtest.walkforward import walk_forward as walkforward
    from workbench.errors import WorkbenchError
    from workbench.live.session import Live
    from workbench.settings import Settings, load_settings
    from workbench.store import Store
    from workbench.store.sharing import query
    from workbench.strategy import Spec, SpecError, load_spec

# The face: name -> (module, attribute in it). `backtest` is the package itself, which is
# callable (see workbench/backtest/__init__.py): a function of that name here would be
# replaced by the package the moment anything imported workbench.backtest.
_FACE = {
    "load_spec": ("workbench.strategy.loader", "load_spec"),
    "Spec": ("workbench.strategy.model", "Spec"),
    "SpecError": ("workbench.strategy.errors", "SpecError"),
    "backtest": ("workbench.backtest", None),
    "BacktestResult": ("workbench.backtest.engine", "BacktestResult"),
    "sweep": ("workbench.backtest.sweep", "sweep"),
    "SweepSettings": ("workbench.backtest.sweep", "SweepSettings"),
    "walkforward": ("workbench.backtest.walkforward", "walk_forward"),
    "WalkForwardResult": ("workbench.backtest.walkforward", "WalkForwardResult"),
    "montecarlo": ("workbench.backtest.montecarlo", "monte_carlo"),
    "MonteCarloResult": ("workbench.backtest.montecarlo", "MonteCarloResult"),
    "Live": ("workbench.live.session", "Live"),
    "query": ("workbench.store.sharing", "query"),
    "Store": ("workbench.store.db", "Store"),
    "Settings": ("workbench.settings", "Settings"),
    "load_settings": ("workbench.settings", "load_settings"),
    "WorkbenchError": ("workbench.errors", "WorkbenchError"),
}
__all__ = [
    "BacktestResult",
    "Live",
    "MonteCarloResult",
    "Settings",
    "Spec",
    "SpecError",
    "Store",
    "SweepSettings",
    "WalkForwardResult",
    "WorkbenchError",
    "backtest",
    "load_settings",
    "load_spec",
    "montecarlo",
    "query",
    "sweep",
    "walkforward",
]


def __getattr__(name: str) -> Any:
    if name not in _FACE:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module, attribute = _FACE[name]
    found = importlib.import_module(module)
    value = found if attribute is None else getattr(found, attribute)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FACE))

"""Strategy specs: one JSON document, two evaluators (vectorized and incremental) that agree.

Main names::

    spec = load_spec("data/strategies/ema_cross_rsi.json")   # SpecError lists every problem
    Params = spec.param_class()                             # param.Parameterized subclass
    grid = spec.param_grid(fast=[8, 12], slow=range(20, 60, 10))
    signals = evaluate(spec, candles, grid)                 # entries/exits bars x combinations
    live = IncrementalStrategy(spec, {"fast": 12}); live.seed(history); live.update(candle)

Conventions are documented in ``workbench/strategy/README.md``.
"""

from workbench.strategy.errors import Problem, SpecError
from workbench.strategy.incremental import IncrementalStrategy, SignalEvent
from workbench.strategy.indicators.registry import KINDS, PRICE_FIELDS
from workbench.strategy.loader import load_spec
from workbench.strategy.model import IndicatorDef, Market, ParamDef, Spec
from workbench.strategy.risk import (
    FixedAmount,
    FixedFraction,
    FixedRisk,
    Risk,
    Sizing,
    VolatilityTarget,
)
from workbench.strategy.vectorized import Signals, evaluate

__all__ = [
    "KINDS",
    "PRICE_FIELDS",
    "FixedAmount",
    "FixedFraction",
    "FixedRisk",
    "IncrementalStrategy",
    "IndicatorDef",
    "Market",
    "ParamDef",
    "Problem",
    "Risk",
    "SignalEvent",
    "Signals",
    "Sizing",
    "Spec",
    "SpecError",
    "VolatilityTarget",
    "evaluate",
    "load_spec",
]

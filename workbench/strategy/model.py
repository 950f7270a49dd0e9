"""The strategy spec as typed values: market, parameters, indicators, rules and risk."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from workbench.strategy.indicators.registry import KINDS, IndicatorKind
from workbench.strategy.risk import Risk
from workbench.strategy.rules import lookback
from workbench.strategy.timeframes import timeframe_seconds

if TYPE_CHECKING:
    import pandas as pd
    import param


@dataclass(frozen=True)
class Market:
    symbol: str
    timeframe: str

    @property
    def timeframe_seconds(self) -> int:
        return timeframe_seconds(self.timeframe)


@dataclass(frozen=True)
class ParamDef:
    """A named strategy parameter: default, optional optimization range [low, high] by step."""

    name: str
    type: type  # int or float
    default: int | float
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    doc: str = ""


@dataclass(frozen=True)
class IndicatorDef:
    """One named indicator: its kind, arguments (numbers or ``$param`` names) and inputs."""

    name: str
    kind: str
    args: dict[str, int | float | str]  # str = parameter name (the "$" stripped)
    source: str | None  # canonical series name, None for bar indicators
    timeframe: str | None  # None = the strategy's timeframe

    @property
    def spec_kind(self) -> IndicatorKind:
        return KINDS[self.kind]

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.spec_kind.outputs

    def output_names(self) -> list[str]:
        """Give the canonical series names of this indicator's outputs (``name.output``)."""
        return [f"{self.name}.{o}" for o in self.outputs]

    def param_refs(self) -> set[str]:
        return {v for v in self.args.values() if isinstance(v, str)}

    def bound_args(self, params: dict[str, Any]) -> dict[str, int | float]:
        """Give the arguments with parameter references replaced by values."""
        out: dict[str, int | float] = {}
        for arg in self.spec_kind.args:
            raw = self.args[arg.name]
            out[arg.name] = arg.type(params[raw] if isinstance(raw, str) else raw)
        return out


@dataclass(frozen=True)
class Spec:
    """A validated strategy spec. Build it with ``load_spec``."""

    name: str
    description: str
    market: Market
    params: dict[str, ParamDef]
    indicators: dict[str, IndicatorDef]  # in evaluation (dependency) order
    entry: Any
    exit: Any
    short_entry: Any
    short_exit: Any
    risk: Risk
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def rules(self) -> dict[str, Any]:
        return {
            "entries": self.entry,
            "exits": self.exit,
            "short_entries": self.short_entry,
            "short_exits": self.short_exit,
        }

    @property
    def has_short(self) -> bool:
        return self.short_entry is not None

    def default_params(self) -> dict[str, int | float]:
        return {name: p.default for name, p in self.params.items()}

    def resolve_params(self, params: dict[str, Any] | None = None) -> dict[str, int | float]:
        """Give defaults overridden by ``params``, typed; unknown names raise ``KeyError``."""
        out = self.default_params()
        for key, value in (params or {}).items():
            if key not in self.params:
                raise KeyError(f"unknown parameter {key!r}; spec has {sorted(self.params)}")
            out[key] = self.params[key].type(value)
        return out

    def warmup_bars(self, params: dict[str, Any] | None = None) -> int:
        """Give the strategy bars of history to seed before signals match a long backtest."""
        values = self.resolve_params(params)
        base = self.market.timeframe_seconds
        memo: dict[str, int] = {}

        def own(ind: IndicatorDef) -> int:
            if ind.name not in memo:
                args = ind.bound_args(values)
                need = ind.spec_kind.warmup_bars(args)
                src = ind.source.split(".")[0] if ind.source else None
                if src in self.indicators:
                    need += own(self.indicators[src]) - 1
                memo[ind.name] = need
            return memo[ind.name]

        bars = 1
        for ind in self.indicators.values():
            need = own(ind)
            if ind.timeframe is not None:
                ratio = timeframe_seconds(ind.timeframe) // base
                need = (need + 1) * ratio
            bars = max(bars, need)
        rule_bars = max((lookback(r, values) for r in self.rules.values() if r), default=0)
        return bars + rule_bars

    @cached_property
    def _param_class(self) -> type[param.Parameterized]:
        from workbench.strategy.params import make_param_class

        return make_param_class(self)

    def param_class(self) -> type[param.Parameterized]:
        """Give a ``param.Parameterized`` subclass with one bounded parameter per spec param."""
        return self._param_class

    def param_grid(self, use_ranges: bool = True, **values: Any) -> pd.DataFrame:
        """Give the cartesian grid of parameter values, one row per combination.

        Each keyword gives a parameter's values (a scalar or a sequence); other parameters
        take their spec range (``use_ranges=True``) or their default.
        """
        from workbench.strategy.params import param_grid

        return param_grid(self, use_ranges=use_ranges, **values)

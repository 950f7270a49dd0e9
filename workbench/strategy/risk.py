"""Risk settings of a strategy as plain typed values for the backtest and the live risk manager.

Meanings (the same in backtest, paper and live; docs/architecture.md, decision 3):

* ``stop_loss`` / ``take_profit`` / ``trailing_stop``: fractions of the entry price (0.02 = 2 %);
  the trailing stop trails the best price since entry by that fraction. ``None`` = not used.
* ``max_position`` / ``daily_loss`` / ``max_drawdown``: the strategy's own live limits, fractions
  of its equity (its position's value; its loss since the UTC day's start; the drawdown that
  halts its entries for a cool-down). They tighten the settings' per-strategy limits; the
  backtest does not apply them.
* sizing methods:
  - ``fixed_amount``: spend ``amount`` units of the quote currency per entry;
  - ``fixed_fraction``: spend ``fraction`` of current equity per entry;
  - ``fixed_risk``: size so that a stop ``atr_multiple`` x ATR(``atr_period``) away from the
    entry loses ``risk_fraction`` of equity: ``units = equity*risk_fraction / (atr_multiple*ATR)``;
  - ``volatility_target``: spend ``min(max_fraction, target_volatility / realized)`` of equity,
    where ``realized`` is the annualized std of log returns over ``lookback`` bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FixedAmount:
    amount: float
    method: ClassVar[str] = "fixed_amount"


@dataclass(frozen=True)
class FixedFraction:
    fraction: float
    method: ClassVar[str] = "fixed_fraction"


@dataclass(frozen=True)
class FixedRisk:
    risk_fraction: float
    atr_period: int = 14
    atr_multiple: float = 2.0
    method: ClassVar[str] = "fixed_risk"


@dataclass(frozen=True)
class VolatilityTarget:
    target_volatility: float
    lookback: int = 20
    max_fraction: float = 1.0
    method: ClassVar[str] = "volatility_target"


Sizing = FixedAmount | FixedFraction | FixedRisk | VolatilityTarget

#: method name -> (class, {setting: (type, required, lower bound, upper bound or None)})
SIZING_METHODS: dict[str, tuple[type, dict[str, tuple[type, bool, float, float | None]]]] = {
    "fixed_amount": (FixedAmount, {"amount": (float, True, 0.0, None)}),
    "fixed_fraction": (FixedFraction, {"fraction": (float, True, 0.0, 1.0)}),
    "fixed_risk": (
        FixedRisk,
        {
            "risk_fraction": (float, True, 0.0, 1.0),
            "atr_period": (int, False, 1, None),
            "atr_multiple": (float, False, 0.0, None),
        },
    ),
    "volatility_target": (
        VolatilityTarget,
        {
            "target_volatility": (float, True, 0.0, None),
            "lookback": (int, False, 2, None),
            "max_fraction": (float, False, 0.0, None),
        },
    ),
}


@dataclass(frozen=True)
class Risk:
    """Exits and position sizing; fractions of the entry price, None when not used."""

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    sizing: Sizing = FixedFraction(1.0)
    #: live limits of the strategy, fractions of its equity (on top of the settings' ones):
    #: its position's value, its loss since the UTC day's start, its drawdown (halts entries)
    max_position: float | None = None
    daily_loss: float | None = None
    max_drawdown: float | None = None


#: the keys of a spec's risk block besides `sizing`
RISK_FRACTIONS = (
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_position",
    "daily_loss",
    "max_drawdown",
)

"""The `[risk]` section of the settings: account and per-strategy limits, one variable each.

Every limit is off unless set: in the settings file's `[risk]` table, or as
`WORKBENCH_RISK_<NAME>` (for example `WORKBENCH_RISK_MAX_OPEN_POSITIONS=5`,
`WORKBENCH_RISK_MAX_EXPOSURE=20000`, `WORKBENCH_RISK_DAILY_LOSS=0.03`); a variable wins over
the file. `workbench config show` lists them; `live run` flags override the common ones.
Fractions are of equity (0.03 = 3 %); amounts are in the quote currency of each market.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workbench.risk.account import AccountLimits
from workbench.risk.limits import RiskLimits

_FRACTION = {"gt": 0.0, "le": 1.0}


class RiskSettings(BaseSettings):
    """Limits over the whole account (every strategy of an engine) and for each strategy."""

    model_config = SettingsConfigDict(env_prefix="WORKBENCH_RISK_", extra="forbid")

    # -- the account ----------------------------------------------------------------------
    max_exposure: float | None = Field(None, gt=0, description="total position value (quote)")
    max_exposure_fraction: float | None = Field(
        None, gt=0, description="total position value as a fraction of account equity"
    )
    max_open_positions: int | None = Field(None, gt=0, description="open positions at once")
    max_symbol_position: float | None = Field(
        None, gt=0, description="position value per symbol, summed over strategies (quote)"
    )
    daily_loss: float | None = Field(
        None, **_FRACTION, description="loss since the UTC day's start that stops entries"
    )
    max_drawdown: float | None = Field(
        None, **_FRACTION, description="account drawdown that halts entries for a cool-down"
    )
    drawdown_cooldown_h: float = Field(24.0, gt=0, description="hours the drawdown halt lasts")
    flatten_on_drawdown: bool = Field(False, description="close every position when it trips")
    max_orders_per_minute: int | None = Field(None, gt=0, description="orders sent per minute")
    max_order_notional: float | None = Field(
        None, gt=0, description="largest single order (quote): a fat-finger stop"
    )
    price_band: float | None = Field(
        None, **_FRACTION, description="furthest a manual limit price may be from the last"
    )
    volatility_target: float | None = Field(
        None, gt=0, description="annualized volatility new entries are scaled down to"
    )
    volatility_lookback: int = Field(288, ge=2, description="bars the volatility is measured on")
    rebalance_every_h: float | None = Field(
        None, gt=0, description="share flat strategies' capital by 1/volatility this often"
    )
    # -- each strategy --------------------------------------------------------------------
    strategy_max_position: float | None = Field(
        None, **_FRACTION, description="a strategy's position as a fraction of its equity"
    )
    strategy_max_open_orders: int | None = Field(None, gt=0, description="a strategy's open orders")
    strategy_daily_loss: float | None = Field(
        None, **_FRACTION, description="a strategy's loss since the UTC day's start"
    )
    strategy_max_drawdown: float | None = Field(
        None, **_FRACTION, description="a strategy's drawdown that halts its entries"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's [risk] table arrives as keyword arguments: a variable wins over it.
        return env_settings, init_settings

    def account_limits(self) -> AccountLimits:
        return AccountLimits(
            max_exposure=self.max_exposure,
            max_exposure_fraction=self.max_exposure_fraction,
            max_open_positions=self.max_open_positions,
            max_symbol_position=self.max_symbol_position,
            daily_loss_fraction=self.daily_loss,
            max_drawdown_fraction=self.max_drawdown,
            drawdown_cooldown_ms=int(self.drawdown_cooldown_h * 3_600_000),
            flatten_on_drawdown=self.flatten_on_drawdown,
            max_orders_per_minute=self.max_orders_per_minute,
            max_order_notional=self.max_order_notional,
            price_band_fraction=self.price_band,
            volatility_target=self.volatility_target,
            volatility_lookback=self.volatility_lookback,
            rebalance_every_ms=(
                None if self.rebalance_every_h is None else int(self.rebalance_every_h * 3_600_000)
            ),
        )

    def strategy_limits(self) -> RiskLimits:
        return RiskLimits(
            max_position_fraction=self.strategy_max_position,
            max_open_orders=self.strategy_max_open_orders,
            daily_loss_fraction=self.strategy_daily_loss,
            max_drawdown_fraction=self.strategy_max_drawdown,
        )

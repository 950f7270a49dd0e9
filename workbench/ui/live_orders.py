"""An order ticket: a manual market or limit order for one strategy's book.

The order goes through the engine like a strategy's own (risk limits first, stored before it
is sent, booked into that strategy's portfolio when it fills); a resting limit order is listed
under "Open orders", where it can be cancelled.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from workbench.auth.acting import ActingEngine
from workbench.auth.roles import Action
from workbench.ui.shared import LiveService


class OrderTicket(param.Parameterized):
    """Strategy, side, type, amount and limit price; a button that places the order."""

    strategy_id = param.Selector(default=None, objects=[], doc="whose book the order is for")
    side = param.Selector(default="buy", objects=["buy", "sell"])
    order_type = param.Selector(default="limit", objects=["limit", "market"])
    amount = param.Number(default=0.1, bounds=(0.0, None), doc="base currency")
    price = param.Number(default=None, allow_None=True, bounds=(0.0, None), doc="limit price")
    message = param.String(default="")

    def __init__(self, service: LiveService, acting: ActingEngine, **params: Any) -> None:
        super().__init__(**params)
        self.service = service
        self.acting = acting
        self.button = pn.widgets.Button(name="Place order", button_type="primary")
        self.button.on_click(self._place)
        self.refresh_strategies()

    def refresh_strategies(self) -> None:
        """Offer the engine's strategies (called when one is added)."""
        ids = list(self.service.engine.strategies)
        self.param.strategy_id.objects = ids
        if self.strategy_id not in ids:
            self.strategy_id = ids[0] if ids else None

    async def place(self) -> str:
        """Place the ticket's order; give what became of it."""
        if self.strategy_id is None:
            return "No strategy to trade for."
        order = await self.acting.place_order(
            self.strategy_id,
            self.side,
            float(self.amount),
            order_type=self.order_type,
            price=self.price if self.order_type == "limit" else None,  # the engine checks it
        )
        if order is None:
            return "Refused by the risk limits: see Refused orders."
        reason = f" ({order.reason})" if order.reason else ""
        return f"Order {order.client_order_id}: {order.state}{reason}."

    async def _place(self, _event: Any = None) -> None:
        self.button.disabled = True
        try:
            self.message = await self.place()
        except Exception as exc:  # a bad amount or price: say why on the page
            self.message = f"Not placed: {exc}"
        finally:
            self.button.disabled = False

    def __panel__(self) -> Any:
        return pn.Column(
            "### Order ticket",
            pn.widgets.Select.from_param(self.param.strategy_id, name="Strategy", width=300),
            pn.Row(
                pn.widgets.RadioButtonGroup.from_param(self.param.side, width=140),
                pn.widgets.RadioButtonGroup.from_param(self.param.order_type, width=140),
            ),
            pn.widgets.FloatInput.from_param(self.param.amount, name="Amount", width=300),
            pn.widgets.FloatInput.from_param(self.param.price, name="Limit price", width=300),
            self.button,
            pn.pane.Markdown(self.param.message),
            width=330,
            visible=self.acting.may(Action.PLACE_ORDER),
        )

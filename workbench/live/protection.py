"""Exchange-side protective orders of a position, and balance reconciliation. Pure: no IO.

Protection. Once an entry has filled, a broker that can rest stops on the exchange gets the
position's stop-loss and take-profit as stop orders that become market orders when they fire
(STOP_LOSS / TAKE_PROFIT: the fill model's stop, so the exchange exits where the backtest
would). With an OCO list both rest at once and the exchange expires the other when one fires;
with plain stops only one can rest (a spot sell locks the position), the stop-loss, and the
take-profit is watched. Their client order ids follow from the strategy, the entry and an
attempt number, so placing them again after a crash asks about the same orders, and a new
placement after a cancel (a reconciliation) gets new ids.

Balances. "Corrected" means: the store adopts the exchange's truth and never places an order
to fix anything. The strategies' long positions in a base asset cannot add up to more than the
account holds (free + locked); a shortfall is taken off the positions pro rata by write-off
fills at price 0 (the units are gone and no proceeds are assumed), stored with a synthetic,
already filled order of purpose `reconcile` and a `reconcile` event. More on the exchange than
the strategies hold is the account's own: left alone (a strategy owns only what it bought).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.broker.base import ExchangeStops
from workbench.broker.models import (
    Fill,
    Order,
    OrderPurpose,
    OrderState,
    OrderType,
    client_order_id,
)
from workbench.fills import Protection, Side, StopKind

_LEG_TYPES = {StopKind.STOP_LOSS: OrderType.STOP_LOSS, StopKind.TAKE_PROFIT: OrderType.TAKE_PROFIT}


def protective_legs(
    strategy_id: str,
    symbol: str,
    position: float,
    protection: Protection,
    entry_ms: int,
    mode: ExchangeStops,
    attempts: dict[str, int],
    now_ms: int,
) -> list[Order]:
    """Give the stop orders to rest for a position (none when nothing can or should rest).

    `attempts` counts the legs of each purpose already placed for this entry.
    """
    if mode is ExchangeStops.NONE or position == 0:
        return []
    levels = [
        (kind, level)
        for kind, level in (
            (StopKind.STOP_LOSS, protection.stop_loss),
            (StopKind.TAKE_PROFIT, protection.take_profit),
        )
        if level is not None
    ]
    if mode is ExchangeStops.STOP:
        levels = levels[:1]  # one resting sell at a time: the stop-loss first
    side = Side.SELL if position > 0 else Side.BUY
    legs = []
    for kind, level in levels:
        purpose = OrderPurpose(kind.value)
        legs.append(
            Order(
                client_order_id=client_order_id(
                    strategy_id, entry_ms, purpose, attempts.get(purpose, 0) + 1
                ),
                strategy_id=strategy_id,
                symbol=symbol,
                side=side,
                type=_LEG_TYPES[kind],
                amount=abs(position),
                stop_price=level,
                purpose=purpose,
                created_ms=entry_ms,
                updated_ms=now_ms,
            )
        )
    return legs


@dataclass(frozen=True)
class WriteOff:
    """A correction of one strategy's position to the exchange's balance."""

    order: Order
    fill: Fill
    detail: str


def balance_write_offs(
    asset: str,
    held: dict[str, tuple[str, float]],
    on_exchange: float,
    now_ms: int,
    tolerance: float,
) -> list[WriteOff]:
    """Give the write-offs that bring long positions in `asset` down to the exchange's total.

    `held` maps strategy id to (symbol, position); only long positions can be short of units.
    """
    longs = {sid: (symbol, amount) for sid, (symbol, amount) in held.items() if amount > 0}
    total = sum(amount for _, amount in longs.values())
    shortfall = total - on_exchange
    if shortfall <= tolerance or total <= 0:
        return []
    cut_share = min(shortfall / total, 1.0)
    offs = []
    for sid, (symbol, amount) in sorted(longs.items()):
        cut = amount * cut_share
        cid = client_order_id(sid, now_ms, f"reconcile-{asset}")
        detail = (
            f"balance {asset}: the strategies hold {total:.10g}, the exchange {on_exchange:.10g} "
            f"(free + locked); {sid}'s position {amount:.10g} reduced by {cut:.10g} "
            "(a write-off at price 0; no order placed)"
        )
        order = Order(
            client_order_id=cid,
            strategy_id=sid,
            symbol=symbol,
            side=Side.SELL,
            type=OrderType.MARKET,
            amount=cut,
            purpose=OrderPurpose.RECONCILE,
            state=OrderState.FILLED,
            filled=cut,
            average_price=0.0,
            created_ms=now_ms,
            updated_ms=now_ms,
            reason="balance reconciliation: no order was placed",
        )
        fill = Fill(
            f"{cid}-1", cid, sid, symbol, Side.SELL, cut, 0.0, 0.0, now_ms, OrderPurpose.RECONCILE
        )
        offs.append(WriteOff(order, fill, detail))
    return offs

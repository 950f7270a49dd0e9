"""Binance JSON shapes: how klines, orders, trades and balances go on the wire."""

from __future__ import annotations

from typing import Any

from workbench.localexchange.markets import fmt_exact
from workbench.localexchange.matching import Account
from workbench.localexchange.orders import Order, Trade
from workbench.localexchange.replay import Candle


def kline_row(candle: Candle) -> list[Any]:
    """Give a kline as an element of GET /api/v3/klines."""
    return [
        candle.open_ms,
        fmt_exact(candle.open),
        fmt_exact(candle.high),
        fmt_exact(candle.low),
        fmt_exact(candle.close),
        fmt_exact(candle.volume),
        candle.close_ms,
        fmt_exact(candle.volume * candle.close),
        0,
        "0",
        "0",
        "0",
    ]


def kline_event(market_id: str, interval: str, candle: Candle, event_ms: int) -> dict[str, Any]:
    """Give a kline stream event (``x`` tells whether the candle is closed)."""
    return {
        "e": "kline",
        "E": event_ms,
        "s": market_id,
        "k": {
            "t": candle.open_ms,
            "T": candle.close_ms,
            "s": market_id,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": fmt_exact(candle.open),
            "c": fmt_exact(candle.close),
            "h": fmt_exact(candle.high),
            "l": fmt_exact(candle.low),
            "v": fmt_exact(candle.volume),
            "n": 0,
            "x": candle.closed,
            "q": fmt_exact(candle.volume * candle.close),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


def _price(value: float | None) -> str:
    return fmt_exact(value) if value is not None else "0.00000000"


def order_json(order: Order, *, full: bool = False) -> dict[str, Any]:
    """Give an order as Binance's REST answers show it (``full``: newOrderRespType FULL)."""
    average = order.cum_quote / order.executed_qty if order.executed_qty else None
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": _price(order.price),
        "origQty": fmt_exact(order.quantity),
        "executedQty": fmt_exact(order.executed_qty),
        "cummulativeQuoteQty": fmt_exact(order.cum_quote),
        "origQuoteOrderQty": fmt_exact(order.quote_order_qty),
        "status": order.status.value,
        "timeInForce": order.time_in_force,
        "type": order.type.value,
        "side": order.side.value.upper(),
        "stopPrice": _price(order.stop_price),
        "workingTime": order.working_ms,
        "selfTradePreventionMode": "NONE",
    }
    if full:
        body["transactTime"] = order.updated_ms
        body["fills"] = [
            {
                "price": fmt_exact(t.price),
                "qty": fmt_exact(t.quantity),
                "commission": fmt_exact(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in order.trades
        ]
    else:
        body.update(
            {
                "icebergQty": "0.00000000",
                "time": order.created_ms,
                "updateTime": order.updated_ms,
                "isWorking": order.working_ms >= 0,
            }
        )
    if average is not None:
        body["avgPrice"] = fmt_exact(average)
    return body


def trade_json(trade: Trade) -> dict[str, Any]:
    """Give a fill as an element of GET /api/v3/myTrades."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": fmt_exact(trade.price),
        "qty": fmt_exact(trade.quantity),
        "quoteQty": fmt_exact(trade.quote_quantity),
        "commission": fmt_exact(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side.value == "buy",
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def execution_report(
    order: Order, exec_type: str, trade: Trade | None, event_ms: int
) -> dict[str, Any]:
    """Give an executionReport user-data event."""
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side.value.upper(),
        "o": order.type.value,
        "f": order.time_in_force,
        "q": fmt_exact(order.quantity),
        "p": _price(order.price),
        "P": _price(order.stop_price),
        "F": "0.00000000",
        "g": order.order_list_id,
        "C": order.client_order_id if exec_type == "CANCELED" else "",
        "x": exec_type,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt_exact(trade.quantity) if trade else "0.00000000",
        "z": fmt_exact(order.executed_qty),
        "L": fmt_exact(trade.price) if trade else "0.00000000",
        "n": fmt_exact(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": event_ms,
        "t": trade.trade_id if trade else -1,
        "v": 0,
        "I": 0,
        "w": order.status.is_open,
        "m": trade.is_maker if trade else False,
        "M": False,
        "O": order.created_ms,
        "Z": fmt_exact(order.cum_quote),
        "Y": fmt_exact(trade.quote_quantity) if trade else "0.00000000",
        "Q": "0.00000000",
        "W": order.working_ms,
        "V": "NONE",
    }


def account_position(account: Account, assets: tuple[str, ...], event_ms: int) -> dict[str, Any]:
    """Give an outboundAccountPosition user-data event for the assets that changed."""
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [
            {
                "a": asset,
                "f": fmt_exact(max(0.0, account.free.get(asset, 0.0))),
                "l": fmt_exact(account.locked.get(asset, 0.0)),
            }
            for asset in assets
        ],
    }


def account_json(account: Account, now_ms: int, fee_rate: float) -> dict[str, Any]:
    """Give GET /api/v3/account (commissions in Binance's units: 10 = 0.1 %)."""
    return {
        "makerCommission": round(fee_rate * 10_000),
        "takerCommission": round(fee_rate * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": f"{fee_rate:.8f}",
            "taker": f"{fee_rate:.8f}",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": False,
        "canDeposit": False,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": account.updated_ms or now_ms,
        "accountType": "SPOT",
        "balances": [
            {
                "asset": asset,
                "free": fmt_exact(max(0.0, account.free.get(asset, 0.0))),
                "locked": fmt_exact(account.locked.get(asset, 0.0)),
            }
            for asset in account.assets()
        ],
        "permissions": ["SPOT"],
        "uid": 1,
    }

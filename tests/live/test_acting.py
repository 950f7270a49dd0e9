"""The engine through `ActingEngine` on the local exchange: a trader's actions reach it and
are audited; a viewer's are refused; bad input is explained and stores nothing half-way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from local_market import open_market
from shipped import CANDLE_DIR, ROOT

from workbench.auth.acting import ActingEngine, BadInput
from workbench.auth.roles import NotAuthorized, Role, User
from workbench.broker.paper import PaperBroker
from workbench.live.control import control_handler
from workbench.live.engine import LiveEngine
from workbench.live.runner import StrategyState
from workbench.localexchange import load_csv_history
from workbench.store import Store
from workbench.strategy import load_spec

SPEC = ROOT / "data" / "strategies" / "sma_cross.json"


def stored(store: Store) -> tuple[int, int, int]:
    strategies = len(store.trading.strategies())
    orders = len(store.trading.orders())
    events = len(store.trading.events()) if hasattr(store.trading, "events") else 0
    return strategies, orders, events


async def test_trader_viewer_and_bad_input_through_the_facade(tmp_path: Path) -> None:
    candles = load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:300]
    async for _server, clock, clients in open_market(candles):
        with Store.open(tmp_path / "acting.duckdb") as store:
            engine = LiveEngine(store, clients, PaperBroker())
            trader = ActingEngine(engine, User("tess", Role.TRADER), store.audit, "127.0.0.1")
            viewer = ActingEngine(engine, User("vic", Role.VIEWER), store.audit, "127.0.0.1")
            sid = await trader.add_strategy(
                load_spec(SPEC), allocation=10.0, symbol="ETH/BTC", strategy_id="sma-eth"
            )
            await engine.start()
            clock.advance(300_000 * 30)
            await asyncio.sleep(0.3)

            trader.set_state(sid, "paused")
            assert engine.strategies[sid].runner.state is StrategyState.PAUSED
            price = float(candles["close"].iloc[25])
            resting = await trader.place_order(sid, "buy", 1.0, order_type="limit", price=price / 2)
            assert resting is not None and resting.state == "open"
            canceled = await trader.cancel_order(resting.client_order_id)
            assert canceled.state == "canceled"
            with pytest.raises(BadInput, match="reason: say why trading halts"):
                await trader.halt("  ")
            await trader.halt("drill")
            assert engine.halted is not None and engine.halted.by == "tess"
            await trader.resume()
            assert engine.halted is None

            before = stored(store)
            with pytest.raises(NotAuthorized, match="vic \\(viewer\\) may not place_order"):
                await viewer.place_order(sid, "buy", 1.0)
            with pytest.raises(NotAuthorized, match="may not set_state"):
                viewer.set_state(sid, "stopped")
            assert engine.strategies[sid].runner.state is StrategyState.PAUSED

            bad_orders = [
                ({"side": "buy", "amount": "1.0"}, "amount: a number is needed, got str"),
                ({"side": "buy", "amount": float("nan")}, "amount: must be a finite number"),
                ({"side": "buy", "amount": -2.0}, "amount: must be a finite number > 0"),
                ({"side": "buy", "amount": True}, "amount: a number is needed, got bool"),
                ({"side": "sideways", "amount": 1.0}, "side: 'sideways' is not one of buy, sell"),
                ({"side": "buy", "amount": 1.0, "order_type": "stop_loss"}, "market or limit"),
                ({"side": "buy", "amount": 1.0, "order_type": "limit"}, "price: a number is"),
                ({"side": "buy", "amount": 1.0, "price": 0.01}, "price: a market order takes"),
            ]
            for kwargs, message in bad_orders:
                with pytest.raises(BadInput, match=message.replace("(", "\\(")):
                    await trader.place_order(sid, **kwargs)
            with pytest.raises(BadInput, match="strategy_id: no strategy 'nope'"):
                await trader.place_order("nope", "buy", 1.0)
            with pytest.raises(BadInput, match="state: 'asleep' is not one of"):
                trader.set_state(sid, "asleep")
            bad_adds = [
                ({"symbol": "DOGE/BTC"}, "symbol: 'DOGE/BTC' is not a market of local"),
                ({"symbol": 42}, "symbol: 42 is not a market"),
                ({"allocation": "10"}, "allocation: a number is needed"),
                ({"allocation": float("inf")}, "allocation: must be a finite number"),
                ({"params": {"fast": "quick"}}, "params:"),
                ({"params": {"nonsense": 3}}, "params: .*unknown parameter 'nonsense'"),
                ({"strategy_id": sid}, "strategy_id: 'sma-eth' is already running"),
            ]
            for overrides, message in bad_adds:
                args = {"allocation": 5.0, "symbol": "ETH/BTC", "strategy_id": None} | overrides
                with pytest.raises(BadInput, match=message):
                    await trader.add_strategy(load_spec(SPEC), **args)
            with pytest.raises(BadInput, match="spec"):
                await trader.add_strategy({"name": "broken"}, allocation=1.0)
            assert stored(store) == before, "nothing stored half-way"
            assert list(engine.strategies) == [sid]

            # The owner's /control route (`live halt`): the caller names itself, but is only
            # ever audited as a command-line operator, never as a dashboard user.
            control = control_handler(engine, store.audit)
            answer = await control({"action": "halt", "reason": "from a shell", "by": "tess"})
            assert answer["halted"] and answer["by"] == "cli:tess"
            assert (await control({"action": "resume", "by": "cli:ops"}))["halted"] is False
            with pytest.raises(BadInput, match="action: 'set_risk_limits' is not one of"):
                await control({"action": "set_risk_limits", "limits": {}, "by": "ada"})
            # An admin's risk limit change: in force, and audited with the limits before and
            # after.
            admin = ActingEngine(engine, User("ada", Role.ADMIN), store.audit, "127.0.0.1")
            limits_before = engine.account.limits.as_dict()
            await admin.set_risk_limits({"max_open_positions": 2})
            assert engine.account.limits.max_open_positions == 2
            await engine.stop()
            audit = store.audit.frame(limit=None).iloc[::-1]
    rows = audit[["actor", "action", "result"]].values.tolist()
    assert rows[:8] == [
        ["tess", "add_strategy", "allowed"],
        ["tess", "set_state", "allowed"],
        ["tess", "place_order", "allowed"],
        ["tess", "cancel_order", "allowed"],
        ["tess", "halt", "failed"],
        ["tess", "halt", "allowed"],
        ["tess", "resume", "allowed"],
        ["vic", "place_order", "refused"],
    ]
    state_change = audit[audit["action"] == "set_state"].iloc[0]
    assert (state_change["before"], state_change["after"]) == (
        '{"state":"running"}',
        '{"state":"paused"}',
    )
    from_shell = audit[audit["actor"].str.startswith("cli:")]
    assert from_shell[["actor", "action", "result"]].values.tolist() == [
        ["cli:tess", "halt", "allowed"],
        ["cli:ops", "resume", "allowed"],
    ]
    limits = audit[audit["action"] == "set_risk_limits"]
    assert limits[["actor", "result", "address"]].values.tolist() == [
        ["ada", "allowed", "127.0.0.1"]
    ]
    assert json.loads(limits["before"].iloc[0]) == json.loads(
        json.dumps(limits_before, default=str)
    )
    assert json.loads(limits["after"].iloc[0])["max_open_positions"] == 2
    failed = audit[audit["result"] == "failed"]
    assert len(failed) == 1 + len(bad_orders) + 2 + len(bad_adds) + 1
    assert pd.notna(failed["reason"]).all()

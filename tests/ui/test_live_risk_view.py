"""The Risk tab's view on a real engine (local exchange, DuckDB file) without a browser: a
viewer's controls are disabled with the reason and a crafted confirmation is refused; a halt
needs a reason and a confirmation; a halt from elsewhere (the CLI, another page) is drawn
from its event."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from local_market import open_market
from shipped import CANDLE_DIR, ROOT

from workbench.auth.acting import ActingEngine
from workbench.auth.roles import Role, User
from workbench.broker.paper import PaperBroker
from workbench.live.engine import LiveEngine
from workbench.localexchange import load_csv_history
from workbench.risk.account import AccountLimits
from workbench.store import Store
from workbench.strategy import load_spec
from workbench.ui.live_risk import Pending, RiskView, Switch

SPEC = ROOT / "data" / "strategies" / "sma_cross.json"


async def settled(view: RiskView) -> None:
    """Let the view's read of the store (on a thread) finish."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not view._reading:
            return


async def test_controls_say_why_not_ask_for_reason_and_confirmation_and_draw_halts_from_elsewhere(
    tmp_path: Path,
) -> None:
    candles = load_csv_history(CANDLE_DIR, ["ETH/BTC"])["ETH/BTC"].iloc[:100]
    async for _server, _clock, clients in open_market(candles):
        with Store.open(tmp_path / "risk.duckdb") as store:
            engine = LiveEngine(store, clients, PaperBroker())
            await engine.add_strategy(load_spec(SPEC), allocation=1.0, symbol="ETH/BTC")
            service = SimpleNamespace(engine=engine, store=store)
            viewer = ActingEngine(engine, User("vic", Role.VIEWER), store.audit)
            view = RiskView(service, viewer)  # type: ignore[arg-type]
            await settled(view)

            assert view.halt_button.disabled and view.resume_button.disabled
            assert view.halt_note.object == (
                "Halt and resume are not for vic: needs the trader role."
            )
            assert view.apply_button.disabled
            assert "needs the admin role" in view.limits_note.object
            # A crafted client sends the confirmation anyway: refused where it runs.
            view.pending = Pending(Switch.HALT, "crafted")
            await view._confirm()
            assert engine.halted is None
            assert view.message.object.startswith("Not done: vic (viewer) may not halt")

            # A trader's halt needs a reason, and a confirmation before it reaches the engine.
            trader = ActingEngine(engine, User("tess", Role.TRADER), store.audit)
            view = RiskView(service, trader)  # type: ignore[arg-type]
            await settled(view)
            view.halt_button.clicks += 1
            assert view.message.object.startswith("reason: say why trading halts")
            assert view.pending is None and not view.confirm_row.visible
            view.reason.value = "drill"
            view.halt_button.clicks += 1
            assert view.confirm_row.visible and view.confirm_button.name == "Confirm halt"
            assert engine.halted is None
            view.cancel_button.clicks += 1
            assert not view.confirm_row.visible and view.pending is None
            assert engine.halted is None and store.risk.halts("local").empty

            # Someone else halts and sets limits (the CLI, another page): the events redraw it.
            await engine.halt("exchange incident", by="cli:ops")
            engine.set_account_limits(AccountLimits(max_open_positions=3), by="ada")
            view.update({"halt", "limits"})
            await settled(view)
            assert "by **cli:ops**: exchange incident" in view.state.object
            assert view.state.alert_type == "danger"
            assert view.inputs["max_open_positions"].value == "3"
            assert view.usage.value["limit"].tolist() == ["open positions"]
            assert view.history.value[["action", "by"]].values.tolist() == [["halt", "cli:ops"]]
            await engine.stop()

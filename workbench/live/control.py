"""The kill switch from outside the engine's process: `workbench live halt` and `live resume`.

A running engine on a DuckDB file owns it; its read service (`workbench.store.sharing`) takes
control requests with the token of the owner file (readable by the engine's OS user only), so
whoever may read that file may halt it: they could stop the process anyway. The request is
carried out through the auth facade as `cli:<os user>` with the trader role, audited like a
dashboard click. With no running owner (a stopped engine, or a PostgreSQL database, where
running engines look for new halts every housekeeping tick) the halt is stored directly and
audited; a stopped engine acts on it when it starts (cancelling entries, flattening if asked).
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Any

from workbench.auth.acting import ActingEngine, BadInput
from workbench.auth.roles import Role, User
from workbench.live.engine import LiveEngine
from workbench.risk.account import Halt
from workbench.store import Store
from workbench.store.audit import AuditLog

Control = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def operator() -> str:
    """Give who acts from this shell, as audited."""
    return f"cli:{getpass.getuser()}"


def halt_json(halt: Halt | None) -> dict[str, Any]:
    if halt is None:
        return {"halted": False}
    return {
        "halted": True,
        "reason": halt.reason,
        "by": halt.by,
        "since_ms": halt.at_ms,
        "flatten": halt.flatten,
    }


def control_handler(engine: LiveEngine, audit: AuditLog) -> Control:
    """Give the owner's answer to control requests: {"action": "halt" | "resume" | "status",
    "reason", "flatten", "by"}."""

    async def control(body: dict[str, Any]) -> dict[str, Any]:
        # Who the caller says it is, always as a command-line operator: a holder of the owner
        # file's token can never be audited as a dashboard user (their names have no colon).
        claimed = str(body.get("by") or "unknown")[:100]
        by = claimed if claimed.startswith("cli:") else f"cli:{claimed}"
        acting = ActingEngine(engine, User(by, Role.TRADER), audit, address="127.0.0.1")
        action = body.get("action")
        if action == "halt":
            await acting.halt(str(body.get("reason") or ""), flatten=bool(body.get("flatten")))
        elif action == "resume":
            await acting.resume(str(body.get("reason") or "resumed"))
        elif action != "status":
            raise BadInput(f"action: {action!r} is not one of halt, resume, status")
        return halt_json(engine.halted)

    return control


def store_halt(
    store: Store, exchange: str, *, halted: bool, reason: str, by: str, flatten: bool = False
) -> dict[str, Any]:
    """Store a halt or a resume for an engine that is not running here; audited."""
    if halted and not reason.strip():
        bad = BadInput(f"reason: say why trading halts, got {reason!r}")
        store.audit.append(
            actor=by, action="halt", result="failed", target=exchange, reason=str(bad)
        )
        raise bad
    _, before = store.risk.halt(exchange)
    store.risk.record_halt(exchange, halted=halted, reason=reason, by=by, flatten=flatten)
    store.audit.append(
        actor=by,
        action="halt" if halted else "resume",
        result="allowed",
        target=exchange,
        before=halt_json(before),
        after={"reason": reason, "flatten": flatten, "stored": True},
    )
    return halt_json(store.risk.halt(exchange)[1])

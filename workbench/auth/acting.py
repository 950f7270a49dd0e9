"""`ActingEngine`: the live engine as one user may use it.

Every action is checked against the user's role where it runs (so a crafted browser event
for a button the user was never shown is refused here), its input is checked before the
engine sees it (a bad value changes nothing), and the outcome is audited: allowed, refused
(who tried what, and why not) or failed (the engine's error, with secrets redacted). Only
the engine's public methods are called. Reads (`status`, `strategies`) need no check: every
role may view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from workbench.auth.redact import redact
from workbench.auth.roles import Action, NotAuthorized, User, refusal
from workbench.broker.models import OrderType
from workbench.errors import WorkbenchError
from workbench.fills import Side
from workbench.live.runner import StrategyState
from workbench.risk.account import AccountLimits
from workbench.store.audit import AuditLog
from workbench.strategy import SpecError, load_spec
from workbench.strategy.model import Spec

T = TypeVar("T")
SETTABLE_STATES = (StrategyState.RUNNING, StrategyState.PAUSED, StrategyState.STOPPED)


class BadInput(WorkbenchError, ValueError):
    """An action's argument that is wrong: which one and why (nothing was done)."""


class ActionFailed(WorkbenchError):
    """The engine could not do an allowed action (its message has no secret in it)."""


class Unsupported(ActionFailed):
    """An action this engine does not offer (yet)."""


def _number(field: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{field}: a number is needed, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0):
        raise BadInput(f"{field}: must be a finite number > 0, got {value!r}")
    return number


def _choice(field: str, value: Any, kind: type[T]) -> T:
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        options = ", ".join(str(m.value) for m in kind)  # type: ignore[attr-defined]
        raise BadInput(f"{field}: {value!r} is not one of {options}") from None


class ActingEngine:
    """The engine's actions on behalf of `user`, checked and audited."""

    def __init__(
        self,
        engine: Any,
        user: User | Callable[[], User],
        audit: AuditLog,
        address: str | None = None,
    ) -> None:
        """`user` is who acts, or a function giving who acts now (a browser session's user,
        read again at each action, so a role change or a logout takes effect at once)."""
        self._engine = engine
        self._who: Callable[[], User] = user if callable(user) else (lambda: user)
        self.actor = self._who().name  # the name audited, whatever becomes of the session
        self.audit = audit
        self.address = address

    @property
    def user(self) -> User:
        """Give who acts, as they are now."""
        return self._who()

    def may(self, action: Action) -> bool:
        """Tell whether the user may take `action` now (for showing or hiding controls)."""
        return refusal(self.user, action) is None

    # -- checking and recording -----------------------------------------------------------
    def _record(
        self,
        action: Action,
        result: str,
        target: str | None,
        *,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
    ) -> None:
        self.audit.append(
            actor=self.actor,
            action=str(action),
            result=result,
            target=target,
            before=before,
            after=after,
            reason=reason,
            address=self.address,
        )

    def _authorize(self, action: Action, target: str | None, request: dict[str, Any]) -> None:
        user = self.user
        reason = refusal(user, action)
        if reason is not None:
            self._record(action, "refused", target, after={"request": request}, reason=reason)
            raise NotAuthorized(user, action, reason)

    def _bad(
        self, action: Action, target: str | None, request: dict[str, Any], exc: Exception
    ) -> None:
        self._record(action, "failed", target, after={"request": request}, reason=str(exc))

    def _failed(
        self, action: Action, target: str | None, request: dict[str, Any], exc: Exception
    ) -> NoReturn:
        text = redact(f"{type(exc).__name__}: {exc}")
        self._record(action, "failed", target, after={"request": request}, reason=text)
        raise ActionFailed(text) from exc

    def _live(self, action: Action, strategy_id: Any, request: dict[str, Any]) -> Any:
        live = self._engine.strategies.get(strategy_id) if isinstance(strategy_id, str) else None
        if live is None:
            exc = BadInput(f"strategy_id: no strategy {strategy_id!r} in this engine")
            self._bad(action, str(strategy_id), request, exc)
            raise exc
        return live

    # -- strategies -----------------------------------------------------------------------
    async def add_strategy(
        self,
        spec: Spec | str | dict[str, Any],
        *,
        allocation: Any,
        params: dict[str, Any] | None = None,
        symbol: Any = None,
        strategy_id: str | None = None,
    ) -> str:
        """Add a strategy; give its id. Everything is checked before anything is stored."""
        action = Action.ADD_STRATEGY
        request = {"allocation": allocation, "params": params, "symbol": symbol}
        self._authorize(action, strategy_id, request)
        try:
            loaded = load_spec(spec)
            request["spec"] = loaded.name
            amount = _number("allocation", allocation)
            symbol = symbol if symbol is not None else loaded.market.symbol
            markets = getattr(self._engine.clients.rest, "markets", None) or {}
            if not isinstance(symbol, str) or symbol not in markets:
                raise BadInput(f"symbol: {symbol!r} is not a market of {self._engine.exchange}")
            if strategy_id is not None and strategy_id in self._engine.strategies:
                raise BadInput(f"strategy_id: {strategy_id!r} is already running")
            try:
                resolved = loaded.resolve_params(dict(params or {}))
                loaded.warmup_bars(resolved)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadInput(f"params: {exc}") from exc
        except (BadInput, SpecError) as exc:
            self._bad(action, strategy_id, request, exc)
            raise BadInput(str(exc)) from exc

        try:
            sid = await self._engine.add_strategy(
                loaded, allocation=amount, params=resolved, symbol=symbol, strategy_id=strategy_id
            )
        except Exception as exc:
            self._failed(action, strategy_id, request, exc)
        self._record(action, "allowed", sid, after={**request, "strategy_id": sid})
        return sid

    def set_state(self, strategy_id: str, state: Any) -> None:
        """Run, pause or stop a strategy."""
        action = Action.SET_STATE
        request = {"state": state}
        self._authorize(action, str(strategy_id), request)
        live = self._live(action, strategy_id, request)
        try:
            new = _choice("state", state, StrategyState)
            if new not in SETTABLE_STATES:
                raise BadInput(
                    f"state: {new} is set by the engine, not by hand (set running, paused or "
                    "stopped)"
                )
        except BadInput as exc:
            self._bad(action, strategy_id, request, exc)
            raise
        before = str(live.runner.state)
        try:
            self._engine.set_state(strategy_id, new)
        except Exception as exc:
            self._failed(action, strategy_id, request, exc)
        self._record(
            action, "allowed", strategy_id, before={"state": before}, after={"state": str(new)}
        )

    # -- orders -----------------------------------------------------------------------------
    async def place_order(
        self,
        strategy_id: str,
        side: Any,
        amount: Any,
        *,
        order_type: Any = OrderType.MARKET,
        price: Any = None,
    ) -> Any:
        """Place a manual order in a strategy's book; give the stored order (None: refused by
        the risk limits)."""
        action = Action.PLACE_ORDER
        request = {"side": side, "amount": amount, "order_type": order_type, "price": price}
        self._authorize(action, str(strategy_id), request)
        self._live(action, strategy_id, request)
        try:
            side_ = _choice("side", side, Side)
            kind = _choice("order_type", order_type, OrderType)
            if kind not in (OrderType.MARKET, OrderType.LIMIT):
                raise BadInput(f"order_type: manual orders are market or limit, not {kind}")
            size = _number("amount", amount)
            limit = _number("price", price) if kind is OrderType.LIMIT else None
            if kind is OrderType.MARKET and price is not None:
                raise BadInput("price: a market order takes no price")
        except BadInput as exc:
            self._bad(action, strategy_id, request, exc)
            raise
        try:
            order = await self._engine.place_order(
                strategy_id, side_, size, order_type=kind, price=limit
            )
        except Exception as exc:
            self._failed(action, strategy_id, request, exc)
        after = (
            {"result": "refused by the risk limits"}
            if order is None
            else {"client_order_id": order.client_order_id, "state": str(order.state)}
        )
        self._record(action, "allowed", strategy_id, after={**request, **after})
        return order

    async def cancel_order(self, client_order_id: str) -> Any:
        """Cancel an open order; give it in its new state."""
        action = Action.CANCEL_ORDER
        request = {"client_order_id": client_order_id}
        self._authorize(action, str(client_order_id), request)
        if not isinstance(client_order_id, str) or not client_order_id:
            exc = BadInput(
                f"client_order_id: a non-empty string is needed, got {client_order_id!r}"
            )
            self._bad(action, str(client_order_id), request, exc)
            raise exc
        try:
            order = await self._engine.cancel_order(client_order_id)
        except Exception as exc:
            self._failed(action, client_order_id, request, exc)
        self._record(action, "allowed", client_order_id, after={"state": str(order.state)})
        return order

    # -- the audit log ---------------------------------------------------------------------
    def audit_frame(self, **filters: Any) -> Any:
        """Give the newest audit rows (admins only; see `AuditLog.frame` for the filters)."""
        self._authorize(Action.VIEW_AUDIT, None, {k: str(v) for k, v in filters.items()})
        return self.audit.frame(**filters)

    def verify_audit(self) -> Any:
        """Check the audit log's hash chain (admins only); give the `ChainCheck`. It reads
        every row: call it off the event loop."""
        self._authorize(Action.VIEW_AUDIT, None, {"op": "verify"})
        return self.audit.verify()

    def manage_keys(self, exchange: str, op: str) -> None:
        """Record a change of an exchange's stored keys (made by `workbench.auth.keys`)."""
        self._authorize(Action.MANAGE_KEYS, exchange, {"op": op})
        self._record(Action.MANAGE_KEYS, "allowed", exchange, after={"op": op})

    # -- the account as a whole ------------------------------------------------------------
    async def halt(self, reason: str, *, flatten: bool = False) -> None:
        """Turn the kill switch on (no new entry anywhere; with `flatten`, close every
        position at market); it stays on until `resume`."""
        action = Action.HALT
        request = {"reason": reason, "flatten": bool(flatten)}
        self._authorize(action, None, request)
        if not isinstance(reason, str) or not reason.strip():
            exc = BadInput(f"reason: say why trading halts, got {reason!r}")
            self._bad(action, None, request, exc)
            raise exc
        try:
            await self._engine.halt(reason.strip(), by=self.actor, flatten=bool(flatten))
        except Exception as exc:
            self._failed(action, None, request, exc)
        self._record(action, "allowed", None, after=request)

    async def resume(self, reason: str = "resumed") -> None:
        """Turn the kill switch off: entries may go out again."""
        action = Action.RESUME
        request = {"reason": reason}
        self._authorize(action, None, request)
        halt = getattr(self._engine, "halted", None)
        before = None if halt is None else {"reason": halt.reason, "by": halt.by}
        try:
            await self._engine.end_halt(by=self.actor, reason=str(reason or "resumed"))
        except Exception as exc:
            self._failed(action, None, request, exc)
        self._record(action, "allowed", None, before=before, after=request)

    async def set_risk_limits(self, limits: dict[str, Any]) -> AccountLimits:
        """Put new account limits in force (stored; they apply to the next order); give
        them. A limit left out is no limit."""
        action = Action.SET_RISK_LIMITS
        request = {"limits": limits}
        self._authorize(action, None, request)
        try:
            if not isinstance(limits, dict):
                raise BadInput(f"limits: a mapping of limit to value is needed, got {limits!r}")
            new = AccountLimits.from_dict({k: v for k, v in limits.items() if v is not None})
        except (TypeError, ValueError) as exc:
            bad = exc if isinstance(exc, BadInput) else BadInput(f"limits: {exc}")
            self._bad(action, None, request, bad)
            raise bad from None
        before = self._engine.account.limits.as_dict()
        try:
            self._engine.set_account_limits(new, by=self.actor)
        except Exception as exc:
            self._failed(action, None, request, exc)
        self._record(action, "allowed", None, before=before, after=new.as_dict())
        return new

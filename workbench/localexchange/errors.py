"""Binance's error answers: the code, message and HTTP status the real exchange sends."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class ExchangeRejection(WorkbenchError):
    """A request the exchange refuses, carried as Binance's ``{"code", "msg"}`` answer."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        """Give the JSON body Binance answers with."""
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ExchangeRejection:
    """Give the rejection for a missing parameter."""
    return ExchangeRejection(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_symbol() -> ExchangeRejection:
    """Give the rejection for an unknown symbol."""
    return ExchangeRejection(-1121, "Invalid symbol.")


def filter_failure(name: str) -> ExchangeRejection:
    """Give the rejection for an order that breaks a symbol filter (LOT_SIZE, NOTIONAL, ...)."""
    return ExchangeRejection(-1013, f"Filter failure: {name}")


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
BAD_SIGNATURE = "Signature for this request is not valid."
BAD_API_KEY = "API-key format invalid."
REJECTED_API_KEY = "Invalid API-key, IP, or permissions for action."

"""API keys and HMAC-SHA256 signatures, checked the way Binance checks them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from workbench.localexchange.errors import (
    BAD_API_KEY,
    BAD_SIGNATURE,
    REJECTED_API_KEY,
    ExchangeRejection,
    mandatory,
)

DEFAULT_RECV_WINDOW_MS = 5000


def sign(payload: str, secret: str) -> str:
    """Give Binance's signature of a payload: hex HMAC-SHA256 keyed with the secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Give a raw query string without its ``signature`` parameter, and that signature."""
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


@dataclass(frozen=True)
class KeyRing:
    """Known API keys: key → (secret, account name)."""

    keys: Mapping[str, tuple[str, str]]

    def account_of_key(self, api_key: str | None) -> str:
        """Give the account an API key belongs to, or reject it as Binance does."""
        if not api_key:
            raise ExchangeRejection(-2014, BAD_API_KEY, 401)
        entry = self.keys.get(api_key)
        if entry is None:
            raise ExchangeRejection(-2015, REJECTED_API_KEY, 401)
        return entry[1]

    def verify_rest(
        self,
        api_key: str | None,
        raw_query: str,
        raw_body: str,
        params: Mapping[str, str],
        server_ms: int,
    ) -> str:
        """Check a signed REST request against the server's clock ``server_ms`` (epoch ms)
        and give its account.

        The signed payload is the query string followed by the body, both as sent, without
        the ``signature`` parameter (Binance's "totalParams").
        """
        account = self.account_of_key(api_key)
        assert api_key is not None
        query, sig_q = _strip_signature(raw_query)
        body, sig_b = _strip_signature(raw_body)
        signature = sig_q or sig_b
        if not signature:
            raise mandatory("signature")
        _check_timestamp(params, server_ms)
        expected = sign(query + body, self.keys[api_key][0])
        if not hmac.compare_digest(expected, signature.lower()):
            raise ExchangeRejection(-1022, BAD_SIGNATURE)
        return account

    def verify_ws(self, params: Mapping[str, object], server_ms: int) -> str:
        """Check a signed WebSocket API request (params sorted by key) against the server's
        clock ``server_ms`` and give its account."""
        api_key = params.get("apiKey")
        account = self.account_of_key(str(api_key) if api_key is not None else None)
        signature = params.get("signature")
        if not signature:
            raise mandatory("signature")
        _check_timestamp({k: str(v) for k, v in params.items()}, server_ms)
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        expected = sign(payload, self.keys[str(api_key)][0])
        if not hmac.compare_digest(expected, str(signature).lower()):
            raise ExchangeRejection(-1022, BAD_SIGNATURE)
        return account


def _check_timestamp(params: Mapping[str, str], now: int) -> None:
    """Reject a request whose timestamp is outside its recvWindow of the server's clock."""
    raw = params.get("timestamp")
    if not raw:
        raise mandatory("timestamp")
    try:
        timestamp = int(raw)
        window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
    except ValueError:
        raise mandatory("timestamp") from None
    if timestamp >= now + 1000 or now - timestamp > window:
        raise ExchangeRejection(-1021, "Timestamp for this request is outside of the recvWindow.")

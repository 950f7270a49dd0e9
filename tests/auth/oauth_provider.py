"""A small OAuth 2.0 provider on 127.0.0.1 for the tests (authorization-code flow).

What a team's provider does, on the standard library's HTTP server: `/authorize` signs in
whoever the test says is at the provider's form (`signs_in`) and sends the browser back to
the client's `redirect_uri` with a one-use code (or with `error=access_denied` when
`signs_in` is None); `/token` swaps the code for an access token, checking the client id,
the client secret and the redirect URI it was issued for; `/userinfo` answers who holds the
token. Nothing of the workbench runs here: Panel's generic OAuth client talks to it.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Provider:
    """The provider's state: its client, who signs in next, codes and tokens issued."""

    client_id: str
    client_secret: str
    signs_in: str | None = None
    url: str = ""
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code: (redirect, user)
    tokens: dict[str, str] = field(default_factory=dict)  # access token: user
    token_requests: int = 0

    @property
    def env(self) -> dict[str, str]:
        """Panel's generic provider settings pointing at this provider."""
        return {
            "PANEL_OAUTH_AUTHORIZE_URL": f"{self.url}/authorize",
            "PANEL_OAUTH_TOKEN_URL": f"{self.url}/token",
            "PANEL_OAUTH_USER_URL": f"{self.url}/userinfo",
        }


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/authorize":
                self._authorize(query)
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                user = provider.tokens.get(token)
                if user is None:
                    self._json(401, {"error": "invalid_token"})
                else:
                    self._json(200, {"sub": f"sub-{user}", "email": user, "name": user})
            else:
                self._json(404, {"error": "not_found"})

        def _authorize(self, query: dict[str, str]) -> None:
            if query.get("client_id") != provider.client_id or query.get("response_type") != (
                "code"
            ):
                self._json(400, {"error": "unauthorized_client"})
                return
            back = query["redirect_uri"]
            if provider.signs_in is None:
                answer = {"error": "access_denied", "state": query.get("state", "")}
            else:
                code = secrets.token_urlsafe(16)
                provider.codes[code] = (back, provider.signs_in)
                answer = {"code": code, "state": query.get("state", "")}
            joiner = "&" if "?" in back else "?"
            self.send_response(302)
            self.send_header("Location", back + joiner + urllib.parse.urlencode(answer))
            self.end_headers()

        def do_POST(self) -> None:
            if self.path != "/token":
                self._json(404, {"error": "not_found"})
                return
            provider.token_requests += 1
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            issued = provider.codes.pop(form.get("code", ""), None)  # a code is used once
            if (
                form.get("grant_type") != "authorization_code"
                or form.get("client_id") != provider.client_id
                or form.get("client_secret") != provider.client_secret
                or issued is None
                or issued[0] != form.get("redirect_uri")
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            token = secrets.token_urlsafe(24)
            provider.tokens[token] = issued[1]
            self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    return Handler


@contextmanager
def oauth_provider(client_id: str, client_secret: str) -> Iterator[Provider]:
    """Run the provider on a free port of 127.0.0.1 for the duration of the block."""
    provider = Provider(client_id, client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()

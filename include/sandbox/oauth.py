"""A stand-in OAuth client-credentials token endpoint, shared by the fakes of APIs that use one (Microsoft's
identity platform, Zoom's Server-to-Server OAuth, Box's Client Credentials Grant, Dropbox's refresh tokens).

The scenario's `token` is `client_id:client_secret`. The endpoint checks them (form fields or HTTP Basic),
issues opaque access tokens that expire after `lifetime` seconds of the sandbox clock, and records each
exchange; `valid(req)` is the API's bearer check.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

from sandbox.events import Clock
from sandbox.web import Request, Response, json_response


class TokenIssuer:
    def __init__(
        self,
        credentials: str,
        clock: Clock,
        grant_type: str,
        lifetime: int = 3599,
        lifetime_as_text: bool = False,
        required: dict[str, str] | None = None,
        refused_status: int = 401,
        refused_code: str = "invalid_client",
    ) -> None:
        self.client_id, _, self.secret = credentials.partition(":")
        self._clock = clock
        self._grant_type = grant_type
        self._lifetime = lifetime
        self._as_text = lifetime_as_text
        #: Fields the exchange must carry with these values (Zoom's `account_id`).
        self._required = required or {}
        #: How a wrong client secret is answered (Box: 400 invalid_client; Dropbox: 400 invalid_grant).
        self._refused = (refused_status, refused_code)
        self._issued: dict[str, float] = {}
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._issued.clear()
            self.exchanges.clear()

    def token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        form.update({k: v[0] for k, v in req.query.items() if k in ("grant_type", "account_id")})
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, basic = req.headers.get("authorization", "").partition(" ")
        if scheme == "Basic":
            try:
                client_id, _, secret = base64.b64decode(basic).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return _oauth_error(401, "invalid_client", "Malformed Basic client authentication.")
        with self._lock:
            self.exchanges.append({k: v for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != self._grant_type:
            return _oauth_error(400, "unsupported_grant_type", f"grant_type must be {self._grant_type}.")
        wrong = [name for name, value in self._required.items() if form.get(name) != value]
        if wrong:
            return _oauth_error(400, "invalid_request", f"Invalid {wrong[0]}.")
        if client_id != self.client_id or secret != self.secret:
            return _oauth_error(*self._refused, "Invalid client secret provided.")
        token = "sbx." + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = self._clock.now() + self._lifetime
        lifetime: Any = str(self._lifetime) if self._as_text else self._lifetime
        return json_response(200, {"token_type": "Bearer", "expires_in": lifetime, "access_token": token})

    def valid(self, req: Request) -> bool:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._issued.get(token.strip()) if scheme == "Bearer" else None
        return expires is not None and self._clock.now() < expires


def _oauth_error(status: int, code: str, description: str) -> Response:
    return json_response(status, {"error": code, "error_description": description})

"""1Password Events API v2 (https://events.1password.com/api/v2/): three POST streams over one store.

Behaviours a collector must cope with: a reset cursor (`limit`, `start_time`, `end_time`, RFC 3339)
first, then `{"cursor": ...}`; oldest first; a cursor on every page, the last one included (it is the
tail position for later polls), so only `has_more` ends paging; both bounds inclusive (undocumented:
the strictest reading); times in UTC or with an offset; 429 without Retry-After; `{"Error": {"Message"}}`.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Iterator
from typing import Any

import orjson

from sandbox.events import Event
from sandbox.vendor import (
    PLACES,
    People,
    TokenApi,
    base32_id,
    decode_token,
    encode_token,
    ip,
    millis,
    parse_rfc3339,
    part_of,
    rfc3339_ms,
    scan_ms,
    take_page,
)
from sandbox.web import Request, Response, Route, json_response

NAME = "onepassword"
STREAMS = ("auditevents", "itemusages", "signinattempts")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_AUDIT_ACTIONS = [
    ("signin", "user"),
    ("update", "item"),
    ("create", "vault"),
    ("grant", "vault"),
    ("revoke", "vault"),
    ("suspend", "user"),
    ("reactivate", "user"),
    ("delete", "item"),
    ("invite", "user"),
    ("changepwd", "user"),
]
_USAGE_ACTIONS = ["fill", "reveal", "secure-copy", "server-fetch", "select-sso-provider"]
_SIGNIN = [
    ("success", "credentials_ok"),
    ("success", "mfa_ok"),
    ("credentials_failed", "password_secret_bad"),
    ("mfa_failed", "mfa_missing"),
    ("firewall_failed", "continent_blocked"),
    ("sso_failed", "sso_user_mismatch"),
]


def stream_of(event_id: str) -> str:
    return STREAMS[part_of(event_id, len(STREAMS))]


def stream_of_item(item: dict[str, Any]) -> str:
    """The stream of a served item, from its 1Password uuid (tests split the ground truth with it)."""
    return stream_of(id_bytes_to_id(item["uuid"]))


def id_bytes_to_id(uuid: str) -> str:
    return base64.b32decode(uuid + "=" * (-len(uuid) % 8)).hex()


def item_time(item: dict[str, Any]) -> float:
    return parse_rfc3339(item["timestamp"])


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")
    account = base32_id(f"{random.Random(f'{seed}:{NAME}:account').getrandbits(128):032x}")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        # One event in ten carries a local offset, as 1Password returns for some accounts.
        offset = rng.choice([-180, 120]) if rng.random() < 0.1 else 0
        country, region, city, lat, lon = rng.choice(PLACES)
        location = {"country": country, "region": region, "city": city, "latitude": lat, "longitude": lon}
        user = people.pick(rng)
        common = {"uuid": base32_id(event_id), "timestamp": rfc3339_ms(millis(ts, event_id), offset)}
        client = {
            "app_name": rng.choice(["1Password for Mac", "1Password Browser Extension", "1Password CLI"]),
            "app_version": f"8{rng.randrange(10, 99)}0{rng.randrange(10, 99)}",
            "platform_name": rng.choice(["Chrome", "macOS", "Windows"]),
            "platform_version": str(rng.randrange(100, 132)),
            "os_name": rng.choice(["MacOSX", "Windows", "Linux"]),
            "os_version": f"{rng.randrange(10, 15)}.{rng.randrange(9)}",
            "ip_address": ip(rng),
        }
        stream = stream_of(event_id)
        if stream == "auditevents":
            action, object_type = rng.choice(_AUDIT_ACTIONS)
            return {
                **common,
                "actor_uuid": user["uuid"],
                "actor_details": {k: user[k] for k in ("uuid", "name", "email")},
                "actor_type": "user",
                "account_uuid": account,
                "action": action,
                "object_type": object_type,
                "object_uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                "aux_id": rng.randrange(1000),
                "aux_info": "",
                "session": {
                    "uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                    "login_time": common["timestamp"],
                    "device_uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                    "ip": client["ip_address"],
                },
                "location": location,
            }
        if stream == "itemusages":
            return {
                **common,
                "used_version": rng.randrange(1, 30),
                "vault_uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                "item_uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                "action": rng.choice(_USAGE_ACTIONS),
                "user": {
                    **{k: user[k] for k in ("uuid", "name", "email")},
                    "user_type": "user",
                    "user_account_uuid": account,
                },
                "client": client,
                "location": location,
                "account_uuid": account,
            }
        category, kind = rng.choice(_SIGNIN)
        return {
            **common,
            "session_uuid": base32_id(f"{rng.getrandbits(128):032x}"),
            "country": country,
            "category": category,
            "type": kind,
            "details": None if category == "success" else {"value": kind},
            "target_user": {k: user[k] for k in ("uuid", "name", "email")},
            "client": client,
            "location": location,
            "account_uuid": account,
        }

    return render


class _BadRequest(Exception):
    pass


class OnePasswordApi(TokenApi):
    def routes(self) -> list[Route]:
        return [Route("POST", f"/api/v2/{stream}", self._handler(stream)) for stream in STREAMS] + [
            Route("GET", "/api/v2/auth/introspect", self.introspect)
        ]

    def _authorized(self, req: Request) -> Response | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self._token:
            return _error(401, "Unauthorized")
        req.auth_ok = True
        if self._limiter.acquire(self._token) is not None:
            return _error(429, "Too many requests")
        return None

    def introspect(self, req: Request) -> Response:
        return self._authorized(req) or json_response(
            200,
            {
                "uuid": "SANDBOXTOKEN",
                "issued_at": "2026-01-01T00:00:00Z",
                "features": list(STREAMS),
                "account_uuid": "SANDBOXACCOUNT",
            },
        )

    def _handler(self, stream: str):
        def handle(req: Request) -> Response:
            refused = self._authorized(req)
            if refused is not None:
                return refused
            try:
                return self._page(stream, req)
            except _BadRequest as exc:
                return _error(400, str(exc))

        return handle

    def _page(self, stream: str, req: Request) -> Response:
        try:
            body = orjson.loads(req.body or b"{}")
        except orjson.JSONDecodeError:
            raise _BadRequest("request body is not JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("request body must be an object")
        state = self._cursor_state(stream, body["cursor"]) if "cursor" in body else self._reset_state(body)
        limit, after = state["limit"], tuple(state["after"]) if state["after"] else None
        start_ms, end_ms = state["start_ms"], state["end_ms"]
        now = self._clock.now()
        items, more = take_page(self._matching(stream, start_ms, end_ms, now, after), limit)
        last = items[-1] if items else None
        position = [last.ts, last.id] if last else state["after"]
        cursor = encode_token({**state, "stream": stream, "after": position})
        payload = b"".join(
            (
                b'{"cursor":',
                orjson.dumps(cursor),
                b',"has_more":',
                b"true" if more else b"false",
                b',"items":[',
                b",".join(e.payload for e in items),
                b"]}",
            )
        )
        return Response(200, payload, {"Content-Type": "application/json"})

    def _matching(self, stream: str, start_ms: int, end_ms: int | None, now: float, after) -> Iterator[Event]:
        return (e for e in scan_ms(self._store, start_ms, end_ms, now, after) if stream_of(e.id) == stream)

    def _reset_state(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"limit", "start_time", "end_time"}
        if unknown:
            raise _BadRequest(f"unknown fields {sorted(unknown)}")
        limit = body.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest("limit must be between 1 and 1000")
        end = self._time(body, "end_time")
        start = self._time(body, "start_time")
        if start is None:
            start = (end if end is not None else self._clock.now()) - 3600
        if end is not None and end < start:
            raise _BadRequest("end_time is before start_time")
        return {
            "limit": limit,
            "start_ms": math.ceil(start * 1000),
            "end_ms": None if end is None else math.floor(end * 1000),
            "after": None,
        }

    @staticmethod
    def _time(body: dict[str, Any], name: str) -> float | None:
        if name not in body:
            return None
        parsed = parse_rfc3339(body[name])
        if parsed is None:
            raise _BadRequest(f"{name} must be an RFC 3339 date-time")
        return parsed

    @staticmethod
    def _cursor_state(stream: str, cursor: Any) -> dict[str, Any]:
        try:
            state = decode_token(cursor if isinstance(cursor, str) else "")
        except ValueError:
            raise _BadRequest("invalid cursor") from None
        if state.get("stream") != stream:
            raise _BadRequest("cursor belongs to another endpoint")
        return state


def _error(status: int, message: str) -> Response:
    return json_response(status, {"Error": {"Message": message}})

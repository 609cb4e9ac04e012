"""Cloudflare account audit logs under `/client/v4`: v2 `GET /accounts/{id}/logs/audit` and v1
`GET /accounts/{id}/audit_logs`.

Behaviours a collector must cope with: `Authorization: Bearer` or `X-Auth-Email` + `X-Auth-Key`, failures in
the v4 envelope (`success: false`, `errors[{code, message}]`); `since`/`before` exclusive ("newer than",
"older than"), millisecond precision. v2: both required (else 400), `limit` 1-1000 (else 400), `direction`
default `desc`, an opaque cursor encoding (time, id) that is absent on the last page and sits in
`result_info.cursor` for account `ACCOUNT_ID` but in `result_info.cursors.after` for `ACCOUNT_ID_AFTER`
(the two shapes in circulation), `action.result` a string. v1: `page`/`per_page`, `result: []` past the end,
`when`, `action.result` a boolean, different ids. Over the budget every call is answered 429 for five
minutes, with `retry-after`, `Ratelimit` and `Ratelimit-Policy`.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from itertools import islice
from typing import Any

import orjson

from sandbox.events import Clock, EventStore
from sandbox.scenario import SourceConfig
from sandbox.vendor import People, TokenApi, decode_token, encode_token, ip, millis, parse_rfc3339, rfc3339_ms, scan_ms
from sandbox.web import Request, Response, Route, json_response

NAME = "cloudflare"
ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353"
ACCOUNT_ID_AFTER = "9a7806061c88ada191ed06f989cc3dac"
EMAIL = "secops@northwind.example.com"
BLOCK_SECONDS = 300
_ACTIONS = [
    ("create", "Add DNS record", "dns_records", "dns_record"),
    ("update", "Update WAF rule", "firewall", "rule"),
    ("delete", "Delete API token", "api_tokens", "token"),
    ("login", "Dashboard login", "account", "session"),
    ("update", "Change zone setting", "zones", "zone_setting"),
]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        person = people.pick(rng)
        kind, description, product, resource_type = rng.choice(_ACTIONS)
        return {
            "id": event_id,
            "account": {"id": ACCOUNT_ID, "name": "Northwind"},
            "action": {
                "description": description,
                "result": rng.choice(["success", "success", "failure"]),
                "time": rfc3339_ms(millis(ts, event_id)),
                "type": kind,
            },
            "actor": {
                "id": person["uuid"][:32].lower(),
                "context": rng.choice(["api_token", "dash", "api_key"]),
                "email": person["email"],
                "ip_address": ip(rng),
                "type": "user",
            },
            "raw": {
                "cf_ray_id": f"{rng.getrandbits(64):016x}-SJC",
                "method": rng.choice(["POST", "PUT", "DELETE"]),
                "status_code": 200,
                "uri": f"/client/v4/accounts/{ACCOUNT_ID}/{product}",
            },
            "resource": {
                "id": f"{rng.getrandbits(64):016x}",
                "product": product,
                "scope": "accounts",
                "type": resource_type,
            },
            "zone": {"id": f"{rng.getrandbits(64):016x}", "name": "northwind.example.com"},
        }

    return render


def v1_of(event: dict[str, Any]) -> dict[str, Any]:
    """The v1 shape of a v2 event: `when`, a boolean `action.result`, its own id."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, event["id"])),
        "action": {"result": event["action"]["result"] == "success", "type": event["action"]["type"]},
        "actor": {
            "id": event["actor"]["id"],
            "email": event["actor"]["email"],
            "ip": event["actor"]["ip_address"],
            "type": "user",
        },
        "interface": "API" if event["actor"]["context"] != "dash" else "UI",
        "metadata": {},
        "newValue": "",
        "oldValue": "",
        "owner": {"id": ACCOUNT_ID},
        "resource": {"id": event["resource"]["id"], "type": event["resource"]["type"]},
        "when": event["action"]["time"],
    }


def failure(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        status,
        {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None},
        headers,
    )


def _ms(text: str | None) -> int | None:
    if text is None:
        return None
    if len(text) == 10:  # a date, read in UTC
        text += "T00:00:00Z"
    seconds = parse_rfc3339(text)
    if seconds is None:
        raise ValueError(text)
    return round(seconds * 1000)


class CloudflareApi(TokenApi):
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        super().__init__(config, store, clock)
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            route
            for account in (ACCOUNT_ID, ACCOUNT_ID_AFTER)
            for route in (
                Route(
                    "GET", f"/client/v4/accounts/{account}/logs/audit", lambda req, a=account: self.logs(req, a, "v2")
                ),
                Route(
                    "GET", f"/client/v4/accounts/{account}/audit_logs", lambda req, a=account: self.logs(req, a, "v1")
                ),
            )
        ]

    def reset(self) -> None:
        super().reset()
        self._blocked_until = 0.0

    def logs(self, req: Request, account: str, version: str) -> Response:
        bearer = req.headers.get("authorization", "").partition(" ")
        key = (req.headers.get("x-auth-email"), req.headers.get("x-auth-key"))
        if not ((bearer[0] == "Bearer" and bearer[2].strip() == self._token) or key == (EMAIL, self._token)):
            return failure(403, 10000, "Authentication error")
        req.auth_ok = True
        headers = {"Ratelimit": '"default";r=1199;t=300', "Ratelimit-Policy": '"default";q=1200;w=300'}
        with self._lock:
            moment = time.monotonic()
            if moment >= self._blocked_until and self._limiter.acquire(self._token) is not None:
                self._blocked_until = moment + BLOCK_SECONDS  # every call, of any kind, for five minutes
            if moment < self._blocked_until:
                wait = str(max(1, round(self._blocked_until - moment)))
                return failure(
                    429, 10429, "Rate limited", {**headers, "Retry-After": wait, "Ratelimit": f'"default";r=0;t={wait}'}
                )
        try:
            return self._v2(req, account, headers) if version == "v2" else self._v1(req, headers)
        except (ValueError, KeyError, TypeError) as exc:
            return failure(400, 10001, f"Invalid request: {exc}", headers)

    def _v2(self, req: Request, account: str, headers: dict[str, str]) -> Response:
        since, before = _ms(req.param("since")), _ms(req.param("before"))
        if since is None or before is None:
            raise ValueError("since and before are required")
        limit = int(req.param("limit") or 100)
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be within 1 and 1000")
        ascending = (req.param("direction") or "desc") == "asc"
        position = tuple(decode_token(req.param("cursor"))["p"]) if req.param("cursor") else None
        now = self._clock.now()
        page = list(islice(scan_ms(self._store, since + 1, before - 1, now, position, ascending), limit + 1))
        more, page = len(page) > limit, page[:limit]
        info: dict[str, Any] = {"count": len(page), "per_page": limit}
        if more:
            cursor = encode_token({"p": [page[-1].ts, page[-1].id]})
            if account == ACCOUNT_ID_AFTER:
                info["cursors"] = {"after": cursor}
            else:
                info["cursor"] = cursor
        body = (
            b'{"success":true,"errors":[],"messages":[],"result":['
            + b",".join(e.payload for e in page)
            + b'],"result_info":'
            + orjson.dumps(info)
            + b"}"
        )
        return Response(200, body, {"Content-Type": "application/json", **headers})

    def _v1(self, req: Request, headers: dict[str, str]) -> Response:
        since, before = _ms(req.param("since")), _ms(req.param("before"))
        per_page = int(req.param("per_page") or 25)
        number = int(req.param("page") or 1)
        if per_page < 1 or number < 1:
            raise ValueError("page and per_page must be positive")
        ascending = (req.param("direction") or "desc") == "asc"
        now = self._clock.now()
        lo = 0 if since is None else since + 1
        hi = None if before is None else before - 1
        rows = islice(scan_ms(self._store, lo, hi, now, None, ascending), (number - 1) * per_page, number * per_page)
        result = [v1_of(orjson.loads(e.payload)) for e in rows]
        info = {"page": number, "per_page": per_page, "count": len(result)}
        return json_response(
            200, {"success": True, "errors": [], "messages": [], "result": result, "result_info": info}, headers
        )

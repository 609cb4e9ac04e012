"""Duo Admin API logs (`/admin/v2/logs/authentication`, `/admin/v1/logs/administrator`,
`/admin/v2/logs/telephony`, `/admin/v2/logs/activity`).

Behaviours a collector must cope with: every request signed (v2 with SHA-1 or SHA-512, or v5) over the
`Date` header and the query re-canonicalised with RFC 3986 quoting, else 401 40103 (40101 without
`Authorization` or `Date`); `{"stat": "OK", "response": ...}` envelopes, `{"stat": "FAIL", "code": ...}`
errors; v2 logs need `mintime` < `maxtime` (ms, both inclusive), `limit` default 100 and at most 1000,
`sort=ts:asc|ts:desc` (default desc), and show nothing newer than two minutes before now; `next_offset` an
array for authentication and a `"ms,id"` string for the others, sent back comma-joined, null at the end; the
administrator log (v1) takes `mintime` in seconds only and answers its earliest 1000 rows, with same-second
bursts, so a pager that moves on to `last + 1` loses the rest of a second; 429 (code 42901) without
`Retry-After`. The streams share one store: `stream_of` tells which an event belongs to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from datetime import datetime, timezone
from itertools import islice
from typing import Any
from urllib.parse import quote

import orjson

from sandbox.events import Clock, EventStore
from sandbox.scenario import SourceConfig
from sandbox.vendor import People, TokenApi, ip, millis, part_of, scan_ms
from sandbox.web import Request, Response, Route, json_response

NAME = "duo"
STREAMS = ("authentication", "administrator", "telephony", "activity")
PATHS = {
    "authentication": "/admin/v2/logs/authentication",
    "administrator": "/admin/v1/logs/administrator",
    "telephony": "/admin/v2/logs/telephony",
    "activity": "/admin/v2/logs/activity",
}
BUFFER_MS = 120_000
ADMIN_ROWS = 1000
_EMPTY_SHA512 = hashlib.sha512(b"").hexdigest()
_FACTORS = ["duo_push", "phone_call", "passcode", "webauthn", "sms_passcode"]
_RESULTS = [
    ("success", "user_approved"),
    ("denied", "user_marked_fraud"),
    ("denied", "user_cancelled"),
    ("success", "valid_passcode"),
    ("failure", "no_response"),
]
_ADMIN_ACTIONS = [
    "admin_login",
    "user_update",
    "integration_create",
    "admin_self_activate",
    "bypass_create",
    "policy_update",
    "user_delete",
]


def stream_of(event: dict[str, Any]) -> str:
    if "telephony_id" in event:
        return "telephony"
    if "activity_id" in event:
        return "activity"
    return "authentication" if "txid" in event else "administrator"


def _iso_micro(ts: int, event_id: str) -> str:
    micro = millis(ts, event_id) * 1000 + int(event_id[9:13], 16) % 1000
    return datetime.fromtimestamp(micro // 1_000_000, timezone.utc).replace(microsecond=micro % 1_000_000).isoformat()


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        stream = STREAMS[part_of(event_id, 4)]
        person = people.pick(rng)
        if stream == "authentication":
            result, reason = rng.choice(_RESULTS)
            return {
                "access_device": {"ip": ip(rng), "os": rng.choice(["Windows", "macOS", "iOS"])},
                "application": {"key": "DIY231J8BR23QK4UKBY8", "name": rng.choice(["VPN", "Okta", "SSH bastion"])},
                "email": person["email"],
                "event_type": "authentication",
                "factor": rng.choice(_FACTORS),
                "isotimestamp": _iso_micro(ts, event_id),
                "reason": reason,
                "result": result,
                "timestamp": ts,
                "txid": event_id,
                "user": {"key": person["uuid"][:20], "name": person["login"]},
            }
        if stream == "administrator":
            # No id; same-second rows differ only in what they say.
            return {
                "action": rng.choice(_ADMIN_ACTIONS),
                "description": orjson.dumps({"n": rng.randrange(10**6)}).decode(),
                "isotimestamp": _iso_micro(ts, event_id)[:19] + "+00:00",
                "object": people.pick(rng)["login"],
                "timestamp": ts,
                "username": person["login"],
            }
        if stream == "telephony":
            return {
                "context": rng.choice(["authentication", "enrollment"]),
                "credits": rng.randint(1, 3),
                "phone": f"+1212555{rng.randrange(10**4):04d}",
                "telephony_id": event_id,
                "ts": _iso_micro(ts, event_id),
                "txid": f"{rng.getrandbits(64):016x}",
                "type": rng.choice(["sms", "phone"]),
            }
        return {
            "activity_id": event_id,
            "ts": _iso_micro(ts, event_id),
            "action": rng.choice(_ADMIN_ACTIONS),
            "actor": {"key": person["uuid"][:20], "name": person["login"], "type": "admin"},
            "target": {"key": people.pick(rng)["uuid"][:20], "type": "user"},
            "akey": "DAKSANDBOX",
        }

    return render


def canon(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((quote(k, "~"), quote(v, "~")) for k, v in params))


def signatures(skey: str, date: str, method: str, host: str, path: str, params: list[tuple[str, str]]) -> set[str]:
    """Every signature Duo accepts for the request: v2 with SHA-1 and SHA-512, and v5."""
    v2 = "\n".join([date, method.upper(), host.lower(), path, canon(params)]).encode()
    v5 = "\n".join([date, method.upper(), host.lower(), path, canon(params), _EMPTY_SHA512, _EMPTY_SHA512]).encode()
    return {
        hmac.new(skey.encode(), v2, hashlib.sha1).hexdigest(),
        hmac.new(skey.encode(), v2, hashlib.sha512).hexdigest(),
        hmac.new(skey.encode(), v5, hashlib.sha512).hexdigest(),
    }


def fail(status: int, code: int, message: str) -> Response:
    return json_response(status, {"code": code, "message": message, "stat": "FAIL"})


class DuoApi(TokenApi):
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        super().__init__(config, store, clock)
        self._ikey, _, self._skey = config.token.partition(":")  # the scenario's token is "ikey:skey"

    def routes(self) -> list[Route]:
        return [Route("GET", path, lambda req, stream=stream: self.logs(req, stream)) for stream, path in PATHS.items()]

    def logs(self, req: Request, stream: str) -> Response:
        refused = self._check_signature(req)
        if refused is not None:
            return refused
        req.auth_ok = True
        if self._limiter.acquire(self._ikey) is not None:
            return fail(429, 42901, "Too Many Requests")
        try:
            return self._admin(req) if stream == "administrator" else self._v2(req, stream)
        except ValueError:
            return fail(400, 40002, "Invalid request parameters")

    def _check_signature(self, req: Request) -> Response | None:
        scheme, _, encoded = req.headers.get("authorization", "").partition(" ")
        date = req.headers.get("date")
        if scheme != "Basic" or not date:
            return fail(401, 40101, "Missing request credentials")
        try:
            ikey, _, signature = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return fail(401, 40103, "Invalid signature in request credentials")
        params = [(k, v) for k, values in req.query.items() for v in values]
        host = req.headers.get("host", "")
        if ikey != self._ikey or signature not in signatures(self._skey, date, req.method, host, req.path, params):
            return fail(401, 40103, "Invalid signature in request credentials")
        return None

    def _v2(self, req: Request, stream: str) -> Response:
        lo, hi = int(req.param("mintime") or ""), int(req.param("maxtime") or "")
        if lo >= hi:
            raise ValueError("mintime must be less than maxtime")
        limit = int(req.param("limit") or 100)
        if not 1 <= limit <= 1000:
            raise ValueError("limit")
        ascending = {"ts:asc": True, "ts:desc": False}[req.param("sort") or "ts:desc"]
        position = None
        if req.param("next_offset"):
            ms, _, event_id = req.param("next_offset").partition(",")
            position = (int(ms) // 1000, event_id)
        now = self._clock.now()
        hi = min(hi, int(now * 1000) - BUFFER_MS)
        mine = (
            e for e in scan_ms(self._store, lo, hi, now, position, ascending) if STREAMS[part_of(e.id, 4)] == stream
        )
        page = list(islice(mine, limit + 1))
        more, page = len(page) > limit, page[:limit]
        offset: Any = None
        if more:
            last = page[-1]
            offset = [str(millis(last.ts, last.id)), last.id]
            if stream != "authentication":
                offset = ",".join(offset)
        total: Any = {"relation": "eq", "value": len(page)} if stream != "authentication" else len(page)
        key = b"authlogs" if stream == "authentication" else b"items"
        body = (
            b'{"stat":"OK","response":{"'
            + key
            + b'":['
            + b",".join(e.payload for e in page)
            + b'],"metadata":'
            + orjson.dumps({"next_offset": offset, "total_objects": total})
            + b"}}"
        )
        return Response(200, body, {"Content-Type": "application/json"})

    def _admin(self, req: Request) -> Response:
        lo = int(req.param("mintime") or "")
        now = self._clock.now()
        hi = int(now * 1000) - BUFFER_MS
        mine = (
            e for e in scan_ms(self._store, lo * 1000, hi, now, None) if STREAMS[part_of(e.id, 4)] == "administrator"
        )
        page = list(islice(mine, ADMIN_ROWS))
        body = b'{"stat":"OK","response":[' + b",".join(e.payload for e in page) + b"]}"
        return Response(200, body, {"Content-Type": "application/json"})

"""PagerDuty audit records (`GET https://api.pagerduty.com/audit/records`), the worked `type: rest` example.

As PagerDuty's REST API reference describes it (not checked against a live account): `Authorization:
Token token=<REST API key>` and `Accept: application/vnd.pagerduty+json;version=2`; `since` inclusive and
`until` exclusive, ISO 8601 (`until` without `since` is a 400); `limit` default 10, at most 1000 (more is a
400); an opaque `cursor` valid only with the same `since`/`until`; `{"records", "limit", "next_cursor"}`
with `next_cursor` null on the last page; newest first by `execution_time`; a 429 with
`ratelimit-reset` in seconds; errors as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import hashlib
import math
import random
from itertools import islice
from typing import Any

import orjson

from sandbox.vendor import People, TokenApi, decode_token, encode_token, ip, millis, parse_rfc3339, rfc3339_ms, scan_ms
from sandbox.web import Request, Response, Route, json_response

NAME = "pagerduty"
PATH = "/audit/records"
DEFAULT_LIMIT, MAX_LIMIT = 10, 1000
MEDIA_TYPE = "application/vnd.pagerduty+json;version=2"
_ACTIONS = [
    ("user", "create"),
    ("user", "update"),
    ("team", "update"),
    ("escalation_policy", "delete"),
    ("service", "update"),
    ("api_key", "create"),
    ("schedule", "update"),
    ("business_service", "create"),
]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        actor = people.pick(rng)
        kind, action = rng.choice(_ACTIONS)
        record_id = "P" + event_id.replace("-", "")[:13].upper()
        return {
            "id": record_id,
            "self": f"https://api.pagerduty.com/audit/records/{record_id}",
            "execution_time": rfc3339_ms(millis(ts, event_id)),
            "execution_context": {"request_id": event_id, "remote_address": ip(rng)},
            "actors": [{"id": "PU" + actor["uuid"][:5], "summary": actor["name"], "type": "user_reference"}],
            "method": {"type": rng.choice(["browser", "api_token", "oauth"]), "truncated_token": "3xyz"},
            "root_resource": {"id": "PR" + event_id[-5:].upper(), "type": f"{kind}_reference", "summary": kind},
            "action": action,
            "details": {"resource": {"id": "PR" + event_id[-5:].upper(), "type": kind}, "fields": []},
        }

    return render


class PagerDutyApi(TokenApi):
    def routes(self) -> list[Route]:
        return [Route("GET", PATH, self.records)]

    def records(self, req: Request) -> Response:
        if req.headers.get("authorization") != f"Token token={self._token}":
            return _error(401, 2006, "Authentication failed")
        req.auth_ok = True
        if self._limiter.acquire(self._token) is not None:
            return _error(
                429,
                2020,
                "Rate Limit Exceeded",
                {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "30"},
            )
        since, until = parse_rfc3339(req.param("since")), parse_rfc3339(req.param("until"))
        if (req.param("since") and since is None) or (req.param("until") and until is None) or (until and not since):
            return _error(400, 2001, "Invalid Input Provided: since and until must be ISO 8601, until needs since")
        limit = req.param("limit") or str(DEFAULT_LIMIT)
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            return _error(400, 2001, f"Invalid Input Provided: limit must be 1 to {MAX_LIMIT}")
        now = self._clock.now()
        since = now - 86400 if since is None else since
        binding = hashlib.sha256(f"{req.param('since')}|{req.param('until')}".encode()).hexdigest()[:12]
        position = None
        if req.param("cursor"):
            try:
                state = decode_token(req.param("cursor"))
                if state["b"] != binding:
                    raise ValueError("cursor of another query")
                position = tuple(state["p"])
            except (ValueError, KeyError, TypeError):
                return _error(400, 2001, "Invalid Input Provided: cursor")
        hi_ms = None if until is None else math.ceil(until * 1000) - 1  # until is exclusive
        events = scan_ms(self._store, math.ceil(since * 1000), hi_ms, now, position, ascending=False)
        page = list(islice(events, int(limit) + 1))
        more, page = len(page) > int(limit), page[: int(limit)]
        cursor = encode_token({"p": [page[-1].ts, page[-1].id], "b": binding}) if more else None
        body = (
            b'{"records":['
            + b",".join(e.payload for e in page)
            + b'],"limit":'
            + limit.encode()
            + b',"next_cursor":'
            + orjson.dumps(cursor)
            + b"}"
        )
        return Response(200, body, {"Content-Type": "application/json"})


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)

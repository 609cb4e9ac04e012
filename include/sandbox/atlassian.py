"""Atlassian organization audit log (`GET https://api.atlassian.com/admin/v1/orgs/{orgId}/events`).

Behaviours a collector must cope with: `Authorization: Bearer <Admin API key>`; `from`/`to` read as epoch
**milliseconds** (Grove's reading; a client sending seconds asks about January 1970 and gets an empty
200, no error), both inclusive; newest first; pages of 100 (not settable, `meta.page_size`); `links.next`
(an absolute URL with `cursor` and the filters) and `meta.next` (the bare cursor) on every page but the
last; a cursor is a position only, so one sent without the filters widens the query; `attributes.time`
sometimes without milliseconds; a 429 with `X-Ratelimit-Reset: 2026-03-01T10:05+0000` (an ISO time).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from sandbox.vendor import People, TokenApi, decode_token, encode_token, ip, millis, part_of, rfc3339_ms, scan_ms
from sandbox.web import Request, Response, Route, json_response

NAME = "atlassian"
ORG_ID = "0a1b2c3d-4e5f-6a7b-8c9d-northwind"
PAGE_SIZE = 100
_ACTIONS = [
    "user_added_to_group",
    "user_removed_from_group",
    "api_key_created",
    "policy_updated",
    "user_deactivated",
    "saml_configuration_updated",
    "user_granted_role",
    "domain_verified",
    "user_logged_in",
]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")
    base = f"https://api.atlassian.com/admin/v1/orgs/{ORG_ID}/events"

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        actor = people.pick(rng)
        ms = millis(ts, event_id)
        when = rfc3339_ms(ms) if part_of(event_id, 4) else rfc3339_ms(ts * 1000).replace(".000Z", "Z")
        return {
            "id": event_id,
            "type": "events",
            "attributes": {
                "time": when,
                "action": rng.choice(_ACTIONS),
                "actor": {
                    "id": actor["uuid"].lower()[:24],
                    "name": actor["name"],
                    "links": {"self": f"https://api.atlassian.com/users/{actor['uuid'].lower()[:24]}"},
                },
                "context": [{"id": people.pick(rng)["uuid"].lower()[:24], "type": "users", "attributes": {}}],
                "container": [{"id": ORG_ID, "type": "orgs", "attributes": {"siteName": "northwind"}}],
                "location": {"ip": ip(rng), "geo": rng.choice(["Berlin, DE", "Toronto, CA", "London, GB"])},
            },
            "links": {"self": f"{base}/{event_id}"},
        }

    return render


class AtlassianApi(TokenApi):
    def routes(self) -> list[Route]:
        return [Route("GET", f"/admin/v1/orgs/{ORG_ID}/events", self.events)]

    def events(self, req: Request) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token.strip() != self._token:
            return json_response(401, {"code": 401, "message": "Unauthorized"})
        req.auth_ok = True
        if self._limiter.acquire(self._token) is not None:
            reset = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
            return json_response(
                429,
                {"code": 429, "message": "Too Many Requests"},
                {"X-Ratelimit-Reset": reset.strftime("%Y-%m-%dT%H:%M%z")},
            )
        try:
            lo_ms = int(req.param("from") or 0)
            hi_ms = int(req.param("to")) if req.param("to") else None
            position = tuple(decode_token(req.param("cursor"))["p"]) if req.param("cursor") else None
        except (ValueError, KeyError, TypeError):
            return json_response(400, {"code": 400, "message": "Invalid query parameter"})
        now = self._clock.now()
        events = scan_ms(self._store, max(lo_ms, 0), hi_ms, now, position, ascending=False)
        page = list(islice(events, PAGE_SIZE + 1))
        more, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
        self_url = f"http://{req.headers.get('host', 'localhost')}{req.path}"
        query = {k: v[0] for k, v in req.query.items() if k != "cursor"}
        links: dict[str, str] = {
            "self": f"{self_url}?{urlencode({k: v[0] for k, v in req.query.items()}, quote_via=quote)}"
        }
        meta: dict[str, Any] = {"page_size": PAGE_SIZE}
        if more:
            cursor = encode_token({"p": [page[-1].ts, page[-1].id]})
            links["next"] = f"{self_url}?{urlencode({**query, 'cursor': cursor}, quote_via=quote)}"
            meta["next"] = cursor
        body = (
            b'{"data":['
            + b",".join(e.payload for e in page)
            + b'],"links":'
            + orjson.dumps(links)
            + b',"meta":'
            + orjson.dumps(meta)
            + b"}"
        )
        return Response(200, body, {"Content-Type": "application/json"})

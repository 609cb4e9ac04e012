"""Zendesk audit logs (`GET /api/v2/audit_logs`, also `/api/v2/audit_logs.json`).

Behaviours a collector must cope with: Basic `{email}/token:{api_token}` or `Bearer`, else 401
`{"error": "Couldn't authenticate you"}`; `filter[created_at][]` exactly twice (start, end; else 400), both
bounds inclusive at whole seconds; `sort` default `-created_at` (newest first); `page[size]` clamped to 100;
`meta.has_more`, `meta.after_cursor` and a `links.next` that carries the filters; `page[after]` accepted with
or without the filters re-sent (the cursor remembers them); `X-Rate-Limit` / `X-Rate-Limit-Remaining` on
every answer and a plain-text 429 with `Retry-After`; many events in one second; integer ids.
"""

from __future__ import annotations

import base64
import math
import random
from datetime import datetime, timezone
from itertools import islice
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from sandbox.events import Clock, EventStore
from sandbox.scenario import SourceConfig
from sandbox.vendor import People, TokenApi, decode_token, encode_token, ip
from sandbox.web import Request, Response, Route, json_response

NAME = "zendesk"
MAX_PAGE_SIZE = 100
_ACTIONS = [
    ("update", "Updated", "user", "Role changed from Agent to Administrator"),
    ("login", "Signed in", "user", ""),
    ("create", "Created", "apitoken", "API token created"),
    ("destroy", "Deleted", "rule", "Trigger deleted"),
    ("exported", "Exported", "ticket", "Ticket export"),
]


def audit_id(ts: int, uuid: str) -> int:
    """An integer id increasing with (second, uuid), as the store orders events."""
    return ts << 20 | int(uuid[:5], 16)


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, uuid: str) -> dict[str, Any]:
        actor, source = people.pick(rng), people.pick(rng)
        action, label, source_type, change = rng.choice(_ACTIONS)
        event_id = audit_id(ts, uuid)
        return {
            "action": action,
            "action_label": label,
            "actor_id": rng.randrange(10**6),
            "actor_name": actor["name"],
            "change_description": change,
            "created_at": datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "id": event_id,
            "ip_address": ip(rng),
            "source_id": rng.randrange(10**6),
            "source_label": source["name"],
            "source_type": source_type,
            "url": f"https://northwind.zendesk.com/api/v2/audit_logs/{event_id}.json",
        }

    return render


def _seconds(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp())


class ZendeskApi(TokenApi):
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        super().__init__(config, store, clock)
        self._login, _, self._api_token = config.token.partition(":")  # "email/token:api_token"

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/api/v2/audit_logs", self.audit_logs),
            Route("GET", "/api/v2/audit_logs.json", self.audit_logs),
        ]

    def _authenticated(self, req: Request) -> bool:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer":
            return value.strip() == self._api_token
        try:
            return scheme == "Basic" and base64.b64decode(value).decode() == f"{self._login}:{self._api_token}"
        except ValueError:
            return False

    def audit_logs(self, req: Request) -> Response:
        if not self._authenticated(req):
            return json_response(401, {"error": "Couldn't authenticate you"})
        req.auth_ok = True
        over = self._limiter.acquire(self._api_token)
        limit, remaining, _ = self._limiter.usage(self._api_token)
        headers = {"X-Rate-Limit": str(limit or 700), "X-Rate-Limit-Remaining": str(remaining if limit else 699)}
        if over is not None:
            return Response(
                429,
                b"Number of allowed API requests per minute exceeded",
                {"Content-Type": "text/plain", "Retry-After": str(max(1, math.ceil(over))), **headers},
            )
        try:
            state = self._state(req)
        except (ValueError, KeyError, TypeError):
            return json_response(
                400,
                {"error": "InvalidPaginationParameter", "description": "filter[created_at] needs a start and an end"},
                headers,
            )
        size = min(int(req.param("page[size]") or MAX_PAGE_SIZE), MAX_PAGE_SIZE)
        now = self._clock.now()
        ascending = state["sort"] == "created_at"
        scan = self._store.iter_asc if ascending else self._store.iter_desc
        position = tuple(state["p"]) if state.get("p") else None
        page = list(islice(scan(state["lo"], state["hi"], now, position), size + 1))
        more, page = len(page) > size, page[:size]
        meta: dict[str, Any] = {"has_more": more, "after_cursor": None, "before_cursor": None}
        links: dict[str, Any] = {"prev": None, "next": None}
        if more:
            meta["after_cursor"] = encode_token({**state, "p": [page[-1].ts, page[-1].id]})
            query = [(k, v) for k, values in req.query.items() if k != "page[after]" for v in values]
            base = f"http://{req.headers.get('host', 'localhost')}{req.path}"
            links["next"] = f"{base}?{urlencode(query + [('page[after]', meta['after_cursor'])], quote_via=quote)}"
        body = (
            b'{"audit_logs":['
            + b",".join(e.payload for e in page)
            + b'],"meta":'
            + orjson.dumps(meta)
            + b',"links":'
            + orjson.dumps(links)
            + b"}"
        )
        return Response(200, body, {"Content-Type": "application/json; charset=utf-8", **headers})

    @staticmethod
    def _state(req: Request) -> dict[str, Any]:
        """The query's filters, or those the cursor remembers (`page[after]` alone is enough)."""
        if req.param("page[after]"):
            return decode_token(req.param("page[after]"))
        bounds = req.query.get("filter[created_at][]", [])
        if len(bounds) != 2:
            raise ValueError("filter[created_at] needs exactly two values")
        sort = req.param("sort") or "-created_at"
        if sort not in ("created_at", "-created_at"):
            raise ValueError("sort")
        return {"lo": _seconds(bounds[0]), "hi": _seconds(bounds[1]), "sort": sort}

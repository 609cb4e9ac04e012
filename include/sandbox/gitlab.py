"""GitLab audit events (`/api/v4/groups/:id/audit_events`, `/projects/:id/audit_events`, `/audit_events`).

Behaviours a collector must cope with: `PRIVATE-TOKEN` or `Authorization: Bearer`; a group or project
named by numeric id or by its URL-encoded full path (an unencoded path is a 404); the instance endpoint
refuses more than 30 days per query; `created_after` / `created_before` both inclusive, whole seconds
only (`created_before=12:00:00Z` excludes `12:00:00.500Z`: the strict reading of an undocumented case);
keyset paging (`pagination=keyset`, only `order_by=id` and `sort=desc`, newest first) whose Link
rel="next" is sent while a page is full and carries the filters, so a window of a multiple of `per_page`
ends with an empty page without a Link; deprecated offset paging (`page`, `x-next-page`, Link); `per_page`
default 20, clamped to 100; a 429 with the plain-text body `Retry later` and `Retry-After`; `RateLimit-*`
on every answer; `{"message": "401 Unauthorized"}`.
"""

from __future__ import annotations

import math
import random
import time
from datetime import datetime
from itertools import islice
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.vendor import People, TokenApi, decode_token, encode_token, ip, millis, rfc3339_ms, scan_ms, take_page
from sandbox.web import Request, Response, Route, json_response

NAME = "gitlab"
GROUP_ID, GROUP_PATH = 4242, "northwind/security"
PROJECT_ID, PROJECT_PATH = 7777, "northwind/security/infra"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100
INSTANCE_MAX_DAYS = 30
_EVENTS = [
    ("user_access_locked", "User access locked"),
    ("member_created", "Added member"),
    ("member_destroyed", "Removed member"),
    ("project_feature_updated", "Changed project feature"),
    ("personal_access_token_created", "Created personal access token"),
    ("protected_branch_updated", "Changed protected branch"),
    ("group_saml_provider_updated", "Changed SAML provider"),
    ("audit_events_streaming_instance_headers_create", "Created streaming header"),
    ("user_impersonation", "Started impersonation"),
]


def event_id(ts: int, uuid: str) -> int:
    """GitLab's integer id, increasing with (second, uuid) as the store orders events (keyset pages by it)."""
    return ts << 32 | int(uuid[:8], 16)


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, uuid: str) -> dict[str, Any]:
        author, target = people.pick(rng), people.pick(rng)
        event_type, message = rng.choice(_EVENTS)
        address = ip(rng) if rng.random() > 0.1 else None
        target_id = rng.choice([rng.randrange(1, 10**6), target["login"]])  # sometimes a string, sometimes an integer
        return {
            "id": event_id(ts, uuid),
            "author_id": rng.randrange(1, 10**5),
            "entity_id": GROUP_ID,
            "entity_type": "Group",
            "event_type": event_type,
            "ip_address": address,
            "author_name": author["name"],
            "entity_path": GROUP_PATH,
            "target_details": target["login"],
            "target_type": "User",
            "target_id": target_id,
            "details": {
                "custom_message": message,
                "author_name": author["name"],
                "author_email": author["email"],
                "target_id": target_id,
                "target_type": "User",
                "target_details": target["login"],
                "ip_address": address,
                "entity_path": GROUP_PATH,
            },
            "created_at": rfc3339_ms(millis(ts, uuid)),
        }

    return render


class _BadRequest(Exception):
    pass


class GitLabApi(TokenApi):
    def routes(self) -> list[Route]:
        scopes = [
            f"groups/{GROUP_ID}",
            f"groups/{quote(GROUP_PATH, safe='')}",
            f"projects/{PROJECT_ID}",
            f"projects/{quote(PROJECT_PATH, safe='')}",
        ]
        routes = [Route("GET", f"/api/v4/{scope}/audit_events", self.audit_events) for scope in scopes]
        return routes + [Route("GET", "/api/v4/audit_events", lambda req: self.audit_events(req, instance=True))]

    def audit_events(self, req: Request, instance: bool = False) -> Response:
        token = req.headers.get("private-token")
        if token is None:
            scheme, _, token = req.headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else None
        if token != self._token:
            return json_response(401, {"message": "401 Unauthorized"})
        req.auth_ok = True
        over = self._limiter.acquire(self._token)
        limit, remaining, reset_in = self._limiter.usage(self._token)
        headers = {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(limit or 2000),
            "RateLimit-Remaining": str(remaining if limit else 1999),
            "RateLimit-Reset": str(math.ceil(time.time()) + reset_in),
        }
        if over is not None:
            return Response(
                429,
                b"Retry later",
                {"Content-Type": "text/plain", "Retry-After": str(max(1, math.ceil(over))), **headers},
            )
        try:
            return self._page(req, instance, headers)
        except _BadRequest as exc:
            return json_response(400, {"error": str(exc)}, headers)

    def _page(self, req: Request, instance: bool, headers: dict[str, str]) -> Response:
        now = self._clock.now()
        lo = _time(req.param("created_after"), "created_after")
        hi = _time(req.param("created_before"), "created_before")
        if instance and lo is not None and (hi if hi is not None else now) - lo > INSTANCE_MAX_DAYS * 86400:
            raise _BadRequest("Instance audit events are limited to a maximum of 30 days for each query")
        try:
            per_page = min(int(req.param("per_page") or DEFAULT_PER_PAGE), MAX_PER_PAGE)
        except ValueError:
            raise _BadRequest("per_page is invalid") from None
        lo_ms = 0 if lo is None else lo * 1000
        hi_ms = None if hi is None else hi * 1000
        base = f"http://{req.headers.get('host', 'localhost')}{req.path}"
        query = {k: v[0] for k, v in req.query.items()}
        if req.param("pagination") == "keyset":
            if (req.param("order_by") or "id") != "id" or (req.param("sort") or "desc") != "desc":
                raise _BadRequest("audit events support keyset pagination only with order_by=id and sort=desc")
            position = None
            if req.param("cursor"):
                try:
                    position = tuple(decode_token(req.param("cursor"))["p"])
                except (ValueError, KeyError, TypeError):
                    raise _BadRequest("cursor is invalid") from None
            page = list(islice(scan_ms(self._store, lo_ms, hi_ms, now, position, ascending=False), per_page))
            if len(page) == per_page:  # GitLab links on while pages are full; the end is an empty page
                query["cursor"] = encode_token({"p": [page[-1].ts, page[-1].id]})
                headers["Link"] = f'<{base}?{urlencode(query, quote_via=quote)}>; rel="next"'
        else:
            number = int(req.param("page") or 1)
            newest_first = scan_ms(self._store, lo_ms, hi_ms, now, None, ascending=False)
            page, more = take_page(islice(newest_first, (number - 1) * per_page, None), per_page)
            headers.update(
                {"x-page": str(number), "x-per-page": str(per_page), "x-next-page": str(number + 1) if more else ""}
            )
            if more:
                headers["Link"] = f'<{base}?{urlencode({**query, "page": number + 1}, quote_via=quote)}>; rel="next"'
        body = b"[" + b",".join(e.payload for e in page) + b"]"
        return Response(200, body, {"Content-Type": "application/json", **headers})


def _time(value: str | None, name: str) -> int | None:
    """Whole seconds, as documented (`YYYY-MM-DDTHH:MM:SSZ`)."""
    if value is None:
        return None
    try:
        return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp())
    except ValueError:
        raise _BadRequest(f"{name} is invalid") from None

"""Zoom report APIs (`https://api.zoom.us/v2/report/activities`, `.../operationlogs`) and Zoom's
Server-to-Server OAuth token endpoint, as the fact sheet's checklist has it:

* `POST /oauth/token` with `grant_type=account_credentials` and `account_id` (query or form) and the client
  id and secret as HTTP Basic; a Bearer token issued there on every call, else 401 code 124.
* `from`/`to` are dates (`yyyy-mm-dd`), inclusive, UTC days; a range over 30 days or a `from` more than
  180 days back is 400 code 300. Newest first, `page_size` 1..300 (default 30).
* `next_page_token` is opaque, re-sent with the same filters, and expires 15 minutes after it was issued
  (400 code 300); `""` on the last page.
* Records have no id; some lack `ip_address`, `client_type`, `version` (activities) or `action`,
  `operator` (operation logs); bursts put several in the same second.
* Throttling: 429 `{"code": 429, ...}` with `Retry-After` as an absolute timestamp, after
  `rate_limit_per_minute`.

The scenario's `token` is `client_id:client_secret`; the account id is ACCOUNT.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson

from sandbox.events import Clock, EventStore
from sandbox.oauth import TokenIssuer
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.vendor import decode_token, encode_token, ip, part_of, take_page
from sandbox.web import Request, Response, Route, json_response

NAME = "zoom"
ACCOUNT = "zAcc0untSandb0x42"
REPORTS = {"/v2/report/activities": "activity_logs", "/v2/report/operationlogs": "operation_logs"}
MAX_PAGE_SIZE = 300
TOKEN_MINUTES = 15
_OPERATIONS = [
    ("Update", "User", "Activate User {}"),
    ("Add", "User", "Add User {}"),
    ("Delete", "Role", "Remove {} from role Admin"),
    ("Update", "Account", "Changed setting for {}"),
    ("Update", "Billing", "Updated billing contact {}"),
]


def report_of(event: dict[str, Any]) -> str:
    return "activity_logs" if "email" in event else "operation_logs"


def make_renderer(seed: int):
    users = [f"user{n}@example.com" for n in range(25)]

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        when = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if part_of(event_id, 2) == 0:
            record = {"email": rng.choice(users), "time": when, "type": rng.choice(["Sign in", "Sign out"])}
            if rng.random() < 0.8:
                record.update(
                    {
                        "ip_address": ip(rng),
                        "client_type": rng.choice(["Browser", "Windows", "Mac", "iOS"]),
                        "version": rng.choice(["6.0.0.1000", "5.17.11.34827", "-"]),
                    }
                )
            return record
        action, category, detail = rng.choice(_OPERATIONS)
        record = {"category_type": category, "operation_detail": detail.format(rng.choice(users)), "time": when}
        if rng.random() < 0.85:
            record.update({"action": action, "operator": rng.choice(users[:5])})
        return record

    return render


def zoom_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"code": code, "message": message}, headers)


class ZoomApi:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.issuer = TokenIssuer(config.token, clock, "account_credentials", required={"account_id": ACCOUNT})
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)

    def routes(self) -> list[Route]:
        return [Route("POST", "/oauth/token", self.issuer.token)] + [
            Route("GET", path, lambda req, key=key: self.report(req, key)) for path, key in REPORTS.items()
        ]

    def reset(self) -> None:
        self.issuer.reset()
        self._limiter.reset()

    def report(self, req: Request, key: str) -> Response:
        if not self.issuer.valid(req):
            return zoom_error(401, 124, "Invalid access token.")
        req.auth_ok = True
        now = self._clock.now()
        if self._limiter.acquire(ACCOUNT) is not None:
            reset = datetime.fromtimestamp(now + 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            return zoom_error(
                429,
                429,
                "You have reached the maximum per-second rate limit for this API. Try again later.",
                {"Retry-After": reset, "X-RateLimit-Category": "Heavy"},
            )
        try:
            first, last = date.fromisoformat(req.param("from") or ""), date.fromisoformat(req.param("to") or "")
            size = int(req.param("page_size") or 30)
        except ValueError:
            return zoom_error(400, 300, "Invalid from, to or page_size.")
        today = datetime.fromtimestamp(now, timezone.utc).date()
        if (
            last < first
            or (last - first).days > 30
            or first < today - timedelta(days=180)
            or not 1 <= size <= MAX_PAGE_SIZE
        ):
            return zoom_error(400, 300, "The date range should be within one month and the last six months.")
        position = None
        token = req.param("next_page_token")
        if token:
            try:
                state = decode_token(token)
                if state["q"] != [first.isoformat(), last.isoformat(), key] or now > state["at"] + TOKEN_MINUTES * 60:
                    raise ValueError(token)
                position = tuple(state["p"])
            except (ValueError, KeyError, TypeError):
                return zoom_error(400, 300, "The next page token is invalid or expired.")
        lo = int(datetime.combine(first, datetime.min.time(), timezone.utc).timestamp())
        hi = int(datetime.combine(last, datetime.min.time(), timezone.utc).timestamp()) + 86399
        part = 0 if key == "activity_logs" else 1  # as the renderer split them
        scan = (e for e in self._store.iter_desc(lo, hi, now, position) if part_of(e.id, 2) == part)
        page, more = take_page(scan, size)
        next_token = (
            encode_token({"q": [first.isoformat(), last.isoformat(), key], "p": [page[-1].ts, page[-1].id], "at": now})
            if more
            else ""
        )
        head = {"from": first.isoformat(), "to": last.isoformat(), "page_size": size, "next_page_token": next_token}
        body = orjson.dumps(head)[:-1] + b',"' + key.encode() + b'":[' + b",".join(e.payload for e in page) + b"]}"
        return Response(200, body, {"Content-Type": "application/json;charset=UTF-8"})

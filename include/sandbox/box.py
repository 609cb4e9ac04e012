"""Box enterprise events (`GET https://api.box.com/2.0/events`) and its token endpoint, as the fact sheet's
checklist has it:

* `POST /oauth2/token`, a form with `grant_type=client_credentials`, the client id and secret,
  `box_subject_type=enterprise` and `box_subject_id=ENTERPRISE`; 60-minute tokens (sandbox clock); a wrong
  secret is 400 `invalid_client`. Without a valid Bearer token the API answers 401 `ClientError`.
* `stream_type=admin_logs`: `created_after`/`created_before` filter on `created_at`, after exclusive and
  before inclusive (undocumented: knobs `after_inclusive`, `before_inclusive`), oldest first, no repeats,
  365 days kept (the scenario's `retention_days`). Other stream types ignore the dates (trap 3).
* `limit` default 100, max 500 (`over_limit`: `clamp` or `reject`). A chunk is short while more remain
  whenever its first event's second is a multiple of `short_every` (Box's warning).
* `next_stream_position` is an integer beyond 2**53 (the second times 10**9, the count of that second's
  events passed, a check): a number on some answers, a string on others; one that went through a float
  fails the check (400). The end: `chunk_size: 0`, `entries: []` and the position unchanged.
* Over `rate_limit_per_minute`: 429 with `retry-after` and code `too_many_requests`.

The scenario's `token` is `client_id:client_secret`.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from sandbox.events import Clock, Event, EventStore
from sandbox.oauth import TokenIssuer
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.vendor import People, ip, parse_rfc3339, take_page
from sandbox.web import Request, Response, Route, json_response

NAME = "box"
ENTERPRISE = "917463"
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_SCALE = 10**9
_EVENT_TYPES = [
    "LOGIN",
    "FAILED_LOGIN",
    "DOWNLOAD",
    "PREVIEW",
    "SHARE",
    "COLLABORATION_INVITE",
    "ADD_LOGIN_ACTIVITY_DEVICE",
    "GROUP_ADD_USER",
    "CHANGE_ADMIN_ROLE",
    "SHIELD_ALERT",
    "FILE_MARKED_MALICIOUS",
    "DELETE",
]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        offset = rng.choice([-480, -420, 0, 60])  # Box answers in the enterprise's zone
        created = datetime.fromtimestamp(ts, timezone(timedelta(minutes=offset))).isoformat()
        recorded = datetime.fromtimestamp(ts + rng.randrange(1, 90), timezone(timedelta(minutes=offset))).isoformat()
        user = people.pick(rng)
        event = {
            "type": "event",
            "event_id": event_id.replace("-", "") + f"{rng.getrandbits(32):08x}",
            "event_type": rng.choice(_EVENT_TYPES),
            "created_at": created,
            "recorded_at": recorded,
            "created_by": {
                "type": "user",
                "id": str(rng.randrange(10**7, 10**8)),
                "name": user["name"],
                "login": user["email"],
            },
            "session_id": f"{rng.getrandbits(88):022x}",
            "ip_address": ip(rng),
            "source": {"type": "file", "id": str(rng.randrange(10**11, 10**12))},
        }
        if rng.random() < 0.6:
            event["additional_details"] = {"size": rng.randrange(10**7), "version_id": str(rng.randrange(10**11))}
        return event

    return render


def _check(ts: int, passed: int) -> int:
    return (ts * 31 + passed * 7) % 1000


def position(ts: int, passed: int) -> int:
    return ts * _SCALE + passed * 1000 + _check(ts, passed)


def client_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        status,
        {
            "type": "error",
            "status": status,
            "code": code,
            "message": message,
            "help_url": "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/",
            "request_id": "sbx0box0req",
        },
        headers,
    )


class BoxApi:
    after_inclusive = False
    before_inclusive = True
    over_limit = "clamp"
    short_every = 4

    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.issuer = TokenIssuer(
            config.token,
            clock,
            "client_credentials",
            lifetime=3600,
            refused_status=400,
            required={"box_subject_type": "enterprise", "box_subject_id": ENTERPRISE},
        )
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)

    def routes(self) -> list[Route]:
        return [Route("POST", "/oauth2/token", self.issuer.token), Route("GET", "/2.0/events", self.events)]

    def reset(self) -> None:
        self.issuer.reset()
        self._limiter.reset()

    def events(self, req: Request) -> Response:
        if not self.issuer.valid(req):
            return client_error(401, "unauthorized", "Unauthorized", {"WWW-Authenticate": 'Bearer realm="Service"'})
        req.auth_ok = True
        wait = self._limiter.acquire(ENTERPRISE)
        if wait is not None:
            return client_error(429, "too_many_requests", "Request rate limit exceeded", {"retry-after": str(wait)})
        try:
            limit = int(req.param("limit") or DEFAULT_LIMIT)
            if limit < 1 or limit > MAX_LIMIT and self.over_limit == "reject":
                raise ValueError("limit")
            limit = min(limit, MAX_LIMIT)
            lo, hi, resume = self._query(req)
        except ValueError as exc:
            return client_error(400, "bad_request", f"Invalid value for {exc}")
        now = self._clock.now()
        scan = self._store.iter_asc(lo, hi, now, resume[1] if resume else None)
        page, _ = take_page(scan, limit)
        if page and self.short_every and page[0].ts % self.short_every == 0:
            page = page[: max(1, limit // 3)]
        if page:
            last = page[-1]
            same_second = [e.id for e in self._store.bucket(last.ts // 3600) if e.ts == last.ts]
            next_position: int | None = position(last.ts, same_second.index(last.id) + 1)
        else:
            next_position = resume[0] if resume else position(int(now), 0)
        exact = orjson.dumps(next_position)
        text = exact if next_position % 2 else b'"' + exact + b'"'
        body = b'{"chunk_size":%d,"next_stream_position":%s,"entries":[%s]}' % (
            len(page),
            text,
            b",".join(e.payload for e in page),
        )
        return Response(200, body, {"Content-Type": "application/json"})

    def _query(self, req: Request) -> tuple[int, int, tuple[int, tuple[int, str] | None] | None]:
        """(lo, hi) seconds and the (position, resume-after) of `stream_position`; ValueError names the field."""
        now = int(self._clock.now())
        lo, hi = 0, now
        if req.param("stream_type") == "admin_logs":
            after, before = (
                parse_rfc3339(req.param(name)) if req.param(name) else None
                for name in ("created_after", "created_before")
            )
            if (req.param("created_after") and after is None) or (req.param("created_before") and before is None):
                raise ValueError("created_after or created_before")
            if after is not None:
                lo = math.ceil(after) if after != int(after) or self.after_inclusive else int(after) + 1
            if before is not None:
                hi = math.floor(before) if before != int(before) or self.before_inclusive else int(before) - 1
        raw = req.param("stream_position")
        if raw in (None, "", "0"):
            return lo, hi, None
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("stream_position") from None
        ts, rest = divmod(value, _SCALE)
        passed, check = divmod(rest, 1000)
        same_second: list[Event] = [e for e in self._store.bucket(ts // 3600) if e.ts == ts]
        if check != _check(ts, passed) or passed > len(same_second):
            raise ValueError("stream_position")
        if passed == 0:
            return max(lo, ts), hi, (value, None)
        return lo, hi, (value, (ts, same_second[passed - 1].id))

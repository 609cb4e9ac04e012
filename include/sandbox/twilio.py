"""Twilio Monitor Events API (https://monitor.twilio.com/v1/Events): event bodies and the endpoint.

Mirrors what a collector must cope with: HTTP Basic auth (Account SID or API key SID + secret, given in
the scenario's `token` as "user:secret"), inclusive StartDate/EndDate (a bare date or a full ISO
datetime), newest first, PageSize default 50 and at most 1000, an absolute `meta.next_page_url` that
carries the filters, PageSize, Page and an opaque PageToken (null on the last page), Twilio JSON errors
(20003 authenticate, 21481 invalid PageToken, 20001 invalid parameter, 20429 too many requests).
"""

from __future__ import annotations

import base64
import binascii
import random
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import orjson

from sandbox.events import Clock, EventStore
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.web import Request, Response, Route, json_response

NAME = "twilio"
PATH = "/v1/Events"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
FILTERS = {
    "ActorSid": "actor_sid",
    "EventType": "event_type",
    "ResourceSid": "resource_sid",
    "SourceIpAddress": "source_ip_address",
}

_EVENT_TYPES = [
    ("account.updated", "account"),
    ("phone-number.created", "phone-number"),
    ("phone-number.deleted", "phone-number"),
    ("phone-number.updated", "phone-number"),
    ("api-key.created", "api-key"),
    ("api-key.deleted", "api-key"),
    ("user.logged-in", "user"),
    ("user.logged-out", "user"),
    ("user.failed-login", "user"),
    ("user.password-changed", "user"),
    ("user.two-factor-updated", "user"),
    ("role.assigned", "user"),
    ("subaccount.created", "account"),
    ("webhook.updated", "application"),
    ("application.created", "application"),
]


def _sid(rng: random.Random, prefix: str) -> str:
    return prefix + f"{rng.getrandbits(128):032x}"


def make_renderer(seed: int):
    org = random.Random(f"{seed}:{NAME}:org")
    account = _sid(org, "AC")
    users = [_sid(org, "US") for _ in range(40)]
    resources = {
        kind: [_sid(org, prefix) for _ in range(30)]
        for kind, prefix in (
            ("account", "AC"),
            ("phone-number", "PN"),
            ("api-key", "SK"),
            ("user", "US"),
            ("application", "AP"),
        )
    }

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        sid = "AE" + event_id.replace("-", "")
        event_type, resource_type = rng.choice(_EVENT_TYPES)
        source = rng.choices(["web", "api", "twilio"], [5, 4, 1])[0]
        actor_type = "twilio-admin" if source == "twilio" else rng.choice(["user", "user", "account"])
        actor_sid = (
            None if actor_type == "twilio-admin" else (account if actor_type == "account" else rng.choice(users))
        )
        resource_sid = account if resource_type == "account" else rng.choice(resources[resource_type])
        return {
            "sid": sid,
            "account_sid": account,
            "actor_sid": actor_sid,
            "actor_type": actor_type,
            "description": rng.choice([None, None, f"{event_type} via {source}"]),
            "event_data": {
                "friendly_name": {
                    "previous": f"Resource {rng.randrange(1000)}",
                    "updated": f"Resource {rng.randrange(1000)}",
                }
            }
            if event_type.endswith("updated")
            else {},
            "event_date": _iso(ts),
            "event_type": event_type,
            "resource_sid": resource_sid,
            "resource_type": resource_type,
            "source": source,
            "source_ip_address": None
            if source == "twilio"
            else f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "url": f"https://monitor.twilio.com/v1/Events/{sid}",
            "links": {
                "actor": f"https://api.twilio.com/2010-04-01/Accounts/{actor_sid}" if actor_sid else None,
                "resource": f"https://api.twilio.com/2010-04-01/Accounts/{resource_sid}",
            },
        }

    return render


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: int, message: str, detail: str | None = None) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    if detail:
        body["detail"] = detail
    return json_response(status, body)


class _Invalid(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def encode_token(ts: int, event_id: str) -> str:
    return "PA" + base64.urlsafe_b64encode(f"{ts}:{event_id}".encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, str]:
    try:
        if not token.startswith("PA"):
            raise ValueError(token)
        raw = token[2:]
        ts, event_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(":")
        return int(ts), event_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _Invalid(error(400, 21481, "Invalid PageToken")) from None


def _date(name: str, raw: str, end: bool) -> int:
    """A bare date (its first or last second) or an ISO datetime (naive means GMT), as Unix seconds."""
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            return int(day.timestamp()) + (86399 if end else 0)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(error(400, 20001, f"Invalid {name}", f"{raw!r} is not an ISO 8601 date")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    return int(seconds) if end else -int(-seconds // 1)  # inclusive: whole seconds inside [start, end]


class TwilioApi:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._credentials = "Basic " + base64.b64encode(config.token.encode()).decode()
        self._user = config.token.partition(":")[0]
        self._store = store
        self._clock = clock
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)

    def routes(self) -> list[Route]:
        return [Route("GET", PATH, self.events)]

    def reset(self) -> None:
        self._limiter.reset()

    def events(self, req: Request) -> Response:
        if req.headers.get("authorization", "") != self._credentials:
            return error(401, 20003, "Authenticate", "Your AccountSid or AuthToken was incorrect.")
        req.auth_ok = True
        if self._limiter.acquire(self._user) is not None:
            return error(429, 20429, "Too Many Requests")
        try:
            return self._page(req)
        except _Invalid as exc:
            return exc.response

    def _page(self, req: Request) -> Response:
        now = self._clock.now()
        lo = _date("StartDate", req.param("StartDate"), end=False) if req.param("StartDate") else 0
        hi = _date("EndDate", req.param("EndDate"), end=True) if req.param("EndDate") else int(now)
        size = req.param("PageSize") or str(DEFAULT_PAGE_SIZE)
        if not size.isdigit() or not 1 <= int(size) <= MAX_PAGE_SIZE:
            raise _Invalid(error(400, 20001, "Invalid PageSize", f"PageSize must be between 1 and {MAX_PAGE_SIZE}"))
        size = int(size)
        page_number = int(req.param("Page")) if (req.param("Page") or "").isdigit() else 0
        token = req.param("PageToken")
        before = decode_token(token) if token else None
        wanted = {field: req.param(param) for param, field in FILTERS.items() if req.param(param)}
        page, more = [], False
        for event in self._store.iter_desc(lo, hi, now, before):
            if wanted:
                body = orjson.loads(event.payload)
                if any(body.get(field) != value for field, value in wanted.items()):
                    continue
            if len(page) == size:
                more = True
                break
            page.append(event)
        filters = [(name, req.param(name)) for name in ("StartDate", "EndDate", *FILTERS) if req.param(name)]
        base = f"http://{req.headers.get('host', 'monitor.twilio.com')}{PATH}?"
        url = base + urlencode(
            [*filters, ("PageSize", size), ("Page", page_number)] + ([("PageToken", token)] if token else [])
        )
        next_url = (
            base
            + urlencode(
                [
                    *filters,
                    ("PageSize", size),
                    ("Page", page_number + 1),
                    ("PageToken", encode_token(page[-1].ts, page[-1].id)),
                ]
            )
            if more
            else None
        )
        meta = {
            "first_page_url": base + urlencode([*filters, ("PageSize", size), ("Page", 0)]),
            "key": "events",
            "next_page_url": next_url,
            "page": page_number,
            "page_size": size,
            "previous_page_url": None,
            "url": url,
        }
        body = b"".join((b'{"events":[', b",".join(e.payload for e in page), b'],"meta":', orjson.dumps(meta), b"}"))
        return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})

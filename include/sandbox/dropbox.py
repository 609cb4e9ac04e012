"""Dropbox team events (`POST https://api.dropboxapi.com/2/team_log/get_events` and `.../continue`) and its
token endpoint, as the fact sheet's checklist has it:

* `POST /dropbox/oauth2/token` (the real one is `/oauth2/token`, which Box's fake holds here): a form with
  `grant_type=refresh_token`, `refresh_token=REFRESH_TOKEN`, the app key and secret; 4-hour tokens; a wrong
  secret is 400 `invalid_grant`. Without a valid Bearer token: 401 `invalid_access_token`.
* `get_events` takes a JSON body: `limit` 1..1000 (default 1000; otherwise 400 with a plain-text body),
  `time` `{start_time (inclusive), end_time (exclusive)}` in whole UTC seconds, `category` or `event_type`
  (both: 409 `invalid_filters`; start after end: 409 `invalid_time_range`).
* The query lives in an opaque cursor; `continue` takes only `{"cursor"}`. The cursor changes on every
  answer, the last included. Pages are **not sorted** (each is shuffled), every `empty_every`-th page is empty
  with `has_more: true`, and once per query (until `reset()`) the `reset_at`-th `continue` is refused with
  409 `reset` and the timestamp of the most recent event returned; cursors older than `CURSOR_DAYS` too.
* Events have no id; bursts put several in one second; the scenario's `lag` holds events back (up to 24 h
  for the default scenario, as Dropbox documents).
* Over `rate_limit_per_minute`: 429 in both forms in turn, JSON `error.retry_after` without a header, and
  plain text with `Retry-After`.

The scenario's `token` is `app_key:app_secret`.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from typing import Any

import orjson

from sandbox.events import Clock, EventStore
from sandbox.oauth import TokenIssuer
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.vendor import PLACES, People, decode_token, encode_token, ip, take_page
from sandbox.web import Request, Response, Route, json_response

NAME = "dropbox"
REFRESH_TOKEN = "sbx-dropbox-refresh-0f9e8d7c6b5a"
TOKEN_PATH = "/dropbox/oauth2/token"
MAX_LIMIT = 1000
CURSOR_DAYS = 3
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_EVENTS = [
    ("logins", "login_fail", "Failed to sign in"),
    ("logins", "login_success", "Signed in"),
    ("sharing", "shared_content_download", "Downloaded shared file"),
    ("sharing", "shared_link_create", "Created shared link"),
    ("file_operations", "file_download", "Downloaded files and/or folders"),
    ("members", "member_change_admin_role", "Changed team member admin role"),
    ("tfa", "tfa_remove_backup_phone", "Removed backup phone for two-step verification"),
    ("devices", "device_link_success", "Linked device"),
]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        category, kind, description = rng.choice(_EVENTS)
        user = people.pick(rng)
        country, region, city, _, _ = rng.choice(PLACES)
        event: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(ts, timezone.utc).strftime(_FORMAT),
            "event_category": {".tag": category},
            "event_type": {".tag": kind, "description": description},
            "details": {".tag": f"{kind}_details"},
            "actor": {
                ".tag": "user",
                "user": {
                    ".tag": "team_member",
                    "account_id": f"dbid:AA{rng.getrandbits(120):030x}",
                    "display_name": user["name"],
                    "email": user["email"],
                    "team_member_id": f"dbmid:AA{rng.getrandbits(120):030x}",
                },
            },
            "origin": {
                "access_method": {
                    ".tag": "end_user",
                    "end_user": {".tag": "web", "session_id": f"dbwsid:{rng.getrandbits(40)}"},
                },
                "geo_location": {"ip_address": ip(rng), "city": city, "region": region, "country": country},
            },
            "involve_non_team_member": rng.random() < 0.1,
            "context": {".tag": "team"},
        }
        if kind == "login_fail":
            event["details"]["login_method"] = {".tag": "password"}
        return event

    return render


def route_error(
    status: int, tag: str, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, {"error_summary": f"{tag}/..", "error": {".tag": tag, **(extra or {})}}, headers)


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


class DropboxApi:
    empty_every = 5
    reset_at = 4

    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.issuer = TokenIssuer(
            config.token,
            clock,
            "refresh_token",
            lifetime=14400,
            refused_status=400,
            refused_code="invalid_grant",
            required={"refresh_token": REFRESH_TOKEN},
        )
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)
        self._lock = threading.Lock()
        self._reset_queries: set[str] = set()
        self._limited = 0

    def routes(self) -> list[Route]:
        return [
            Route("POST", TOKEN_PATH, self.issuer.token),
            Route("POST", "/2/team_log/get_events", lambda req: self.handle(req, False)),
            Route("POST", "/2/team_log/get_events/continue", lambda req: self.handle(req, True)),
        ]

    def reset(self) -> None:
        self.issuer.reset()
        self._limiter.reset()
        with self._lock:
            self._reset_queries.clear()
            self._limited = 0

    def handle(self, req: Request, continuing: bool) -> Response:
        if not self.issuer.valid(req):
            return route_error(401, "invalid_access_token")
        req.auth_ok = True
        wait = self._limiter.acquire("team")
        if wait is not None:
            with self._lock:
                self._limited += 1
                as_json = self._limited % 2
            if as_json:
                return route_error(
                    429, "too_many_requests", {"reason": {".tag": "too_many_requests"}, "retry_after": wait}
                )
            return _text(429, "Too many requests", {"Retry-After": str(wait)})
        if "application/json" not in req.headers.get("content-type", ""):
            return _text(400, 'Error in call to API function "team_log/get_events": Bad HTTP "Content-Type" header')
        try:
            body = orjson.loads(req.body or b"null")
        except orjson.JSONDecodeError:
            return _text(
                400, 'Error in call to API function "team_log/get_events": request body: could not decode input as JSON'
            )
        if not isinstance(body, dict):
            return _text(400, 'Error in call to API function "team_log/get_events": request body: expected an object')
        now = self._clock.now()
        if continuing:
            if set(body) != {"cursor"}:
                return _text(400, 'Error in call to API function "team_log/get_events/continue": unknown field')
            try:
                state = decode_token(body["cursor"] if isinstance(body["cursor"], str) else "")
            except ValueError:
                return route_error(409, "bad_cursor")
            if self._resets(state, now):
                return route_error(409, "reset", {"reset": state["last"] or state["q"][0]})
        else:
            state = self._query(body)
            if isinstance(state, Response):
                return state
            state["at"] = now
        return self._page(state, now)

    def _resets(self, state: dict[str, Any], now: float) -> bool:
        """Whether this continuation is refused with `reset`: an old cursor, or the query's planned reset."""
        if now > state["at"] + CURSOR_DAYS * 86400:
            return True
        key = repr(state["q"])
        with self._lock:
            if self.reset_at and state["n"] == self.reset_at and key not in self._reset_queries:
                self._reset_queries.add(key)
                return True
        return False

    def _query(self, body: dict[str, Any]) -> dict[str, Any] | Response:
        limit = body.get("limit", MAX_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            return _text(
                400,
                'Error in call to API function "team_log/get_events": request body: limit: '
                f"{limit!r} is not within [1, 1000]",
            )
        if body.get("category") and body.get("event_type"):
            return route_error(409, "invalid_filters")
        window = body.get("time") or {}
        try:
            start = _seconds(window.get("start_time")) if window.get("start_time") else 0
            end = _seconds(window.get("end_time")) if window.get("end_time") else None
        except ValueError:
            return _text(
                400,
                'Error in call to API function "team_log/get_events": request body: time: '
                f"expected a timestamp in the format {_FORMAT}",
            )
        if end is not None and start > end:
            return route_error(409, "invalid_time_range")
        category = (body.get("category") or {}).get(".tag")
        kind = (body.get("event_type") or {}).get(".tag")
        return {"q": [start, end, category, kind, limit], "after": None, "n": 0, "last": None}

    def _page(self, state: dict[str, Any], now: float) -> Response:
        start, end, category, kind, limit = state["q"]
        hi = int(now) if end is None else end - 1  # end_time is exclusive
        page: list = []
        more = False
        if not (self.empty_every and state["n"] % self.empty_every == self.empty_every - 1):
            scan = (
                e
                for e in self._store.iter_asc(start, hi, now, tuple(state["after"]) if state["after"] else None)
                if self._matches(e.payload, category, kind)
            )
            page, more = take_page(scan, limit)
        else:
            more = True  # an empty page that still says there is more
        after, last = state["after"], state["last"]
        if page:
            after = [page[-1].ts, page[-1].id]
            last = datetime.fromtimestamp(page[-1].ts, timezone.utc).strftime(_FORMAT)
        shuffled = list(page)
        random.Random(f"{state['q']}:{state['n']}").shuffle(shuffled)  # "not guaranteed to be sorted"
        cursor = encode_token({**state, "after": after, "last": last, "n": state["n"] + 1})
        body = b'{"events":[%s],"cursor":%s,"has_more":%s}' % (
            b",".join(e.payload for e in shuffled),
            orjson.dumps(cursor),
            b"true" if more else b"false",
        )
        return Response(200, body, {"Content-Type": "application/json"})

    @staticmethod
    def _matches(payload: bytes, category: str | None, kind: str | None) -> bool:
        if not category and not kind:
            return True
        event = orjson.loads(payload)
        return (not category or event["event_category"][".tag"] == category) and (
            not kind or event["event_type"][".tag"] == kind
        )


def _seconds(text: Any) -> int:
    """Whole UTC seconds of `%Y-%m-%dT%H:%M:%SZ`, the only form Dropbox accepts."""
    if not isinstance(text, str):
        raise ValueError(text)
    return int(datetime.strptime(text, _FORMAT).replace(tzinfo=timezone.utc).timestamp())

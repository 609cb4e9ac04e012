"""Office 365 Management Activity API (`https://manage.office.com/api/v1.0/{tenant}/activity/feed/...`) and
its Microsoft identity platform token endpoint, as the fact sheet's checklist has it:

* `POST /{tenant}/oauth2/v2.0/token` (client credentials; `expires_in` a string, as in Microsoft's sample);
  a Bearer token issued there on every API call, else 401 AF10001.
* `GET subscriptions/list`, `POST subscriptions/start` (`{"status": "enabled"}` the first time, 400 AF20024
  after); no subscription is on at the start, and listing content without one is 400 AF20022.
* `GET subscriptions/content`: the blobs whose `contentCreated` is in `[startTime, endTime)` (both needed,
  at most 24 h apart, start at most 7 days back, else 400 AF20055), oldest first, PAGE_BLOBS a page, the next
  page in the `NextPageUri` header (an `/api/v1/` path, `endtime` downcased on every other page, `nextPage=`;
  an unknown one is AF20031); a blob is listed once its `contentCreated` has passed, or, for the scenario's
  `listing_lag` fraction of blobs, 1..max_lag_seconds later (Microsoft lists some blobs late).
* `GET {contentUri}`: a bare array of records in random order: the records whose availability (their time,
  the scenario's lag, LATENCY) falls in the blob's BLOB_SECONDS; a record repeated inside every blob (its
  last), and every record whose id ends in '0' again in the next blob. Blob ids contain `$`; an expired
  blob is 404 AF20051. `CreationTime` has no zone; `ClientIP` is sometimes null or carries a port.
* `PublisherIdentifier` is recorded (the request log), throttling is a 403 AF429 without Retry-After.

The scenario's `token` is `client_id:client_secret`; `rate_limit_per_minute` throttles per tenant.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from sandbox.events import Clock, Event, EventStore
from sandbox.oauth import TokenIssuer
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.vendor import decode_token, encode_token, ip, part_of
from sandbox.web import Request, Response, Route, json_response

NAME = "microsoft365"
TENANT = "7f3c1a52-9d4e-4b8a-a1c6-0e5d2f9b8c31"
CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
BLOB_SECONDS = 300
#: Microsoft's usual delivery delay: a record becomes available this long after it happened (plus its lag).
LATENCY = 3600
PAGE_BLOBS = 5
RETENTION = 7 * 86400
FEED = f"/api/v1.0/{TENANT}/activity/feed/"
_WORKLOADS = {
    "Audit.AzureActiveDirectory": (
        "AzureActiveDirectory",
        15,
        ["UserLoggedIn", "UserLoginFailed", "Add member to role."],
    ),
    "Audit.Exchange": ("Exchange", 2, ["MailItemsAccessed", "Send", "Set-Mailbox", "New-InboxRule"]),
    "Audit.SharePoint": ("SharePoint", 6, ["FileAccessed", "FileDownloaded", "SharingSet", "FileDeleted"]),
    "Audit.General": ("MicrosoftTeams", 25, ["TeamCreated", "MemberAdded", "ChannelAdded"]),
    "DLP.All": ("Exchange", 13, ["DlpRuleMatch"]),
}


def content_type_of(event_id: str) -> str:
    return CONTENT_TYPES[part_of(event_id, len(CONTENT_TYPES))]


def make_renderer(seed: int):
    users = [f"user{n}@contoso.onmicrosoft.com" for n in range(40)]
    org = random.Random(f"{seed}:{NAME}:org")
    organization = f"{org.getrandbits(128):032x}"

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        workload, record_type, operations = _WORKLOADS[content_type_of(event_id)]
        user = rng.choice(users)
        address = rng.choice([ip(rng), f"{ip(rng)}:{rng.randrange(1024, 65535)}", None])
        return {
            "CreationTime": datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "Id": event_id,
            "Operation": rng.choice(operations),
            "OrganizationId": organization,
            "RecordType": record_type,
            "ResultStatus": rng.choice(["Succeeded", "Failed", "PartiallySucceeded"]),
            "UserKey": f"{rng.getrandbits(60)}@contoso.onmicrosoft.com",
            "UserType": 0,
            "Version": 1,
            "Workload": workload,
            "ClientIP": address,
            "ObjectId": rng.choice(users),
            "UserId": user,
        }

    return render


def _text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def created(slot: int) -> int:
    """A blob's `contentCreated` (epoch seconds): when its slot of availability closes."""
    return (slot + 1) * BLOB_SECONDS


def listed_at(store: EventStore, content_type: str, slot: int) -> int:
    """When a blob becomes listable (and fetchable): its `contentCreated`, later for a late-listed one."""
    lag = store.config.listing_lag
    if lag is None:
        return created(slot)
    rng = random.Random(f"{store.seed}:{content_type}:{slot}:listed")
    return created(slot) + (rng.randint(1, lag.max_lag_seconds) if rng.random() < lag.p_late else 0)


def _slot_events(store: EventStore, slot: int, now: float) -> list[Event]:
    max_lag = store.config.lag.max_lag_seconds if store.config.lag else 0
    lo, hi = slot * BLOB_SECONDS, (slot + 1) * BLOB_SECONDS
    scan = store.iter_asc(lo - LATENCY - max_lag, hi - LATENCY, now)
    return [e for e in scan if lo <= e.ts + e.lag + LATENCY < hi]


def blob(store: EventStore, content_type: str, slot: int, now: float) -> list[Event]:
    """The records of the blob of `content_type` and `slot`, repeats included, in served order."""
    events = [e for e in _slot_events(store, slot, now) if content_type_of(e.id) == content_type]
    events += [
        e for e in _slot_events(store, slot - 1, now) if content_type_of(e.id) == content_type and e.id.endswith("0")
    ]
    if not events:
        return []
    random.Random(f"{store.seed}:{content_type}:{slot}").shuffle(events)
    return events + events[-1:]


def slots(content_type: str, store: EventStore, start: float, end: float, now: float) -> Iterator[int]:
    """Slots of the non-empty blobs listed as available in [start, end) at `now`, oldest first."""
    first = -(-int(start) // BLOB_SECONDS) - 1
    slot = first
    while created(slot) < end and created(slot) <= now:
        if (
            created(slot) >= start
            and listed_at(store, content_type, slot) <= now
            and blob(store, content_type, slot, now)
        ):
            yield slot
        slot += 1


def records(store: EventStore, content_type: str, start: float, end: float, now: float) -> list[Event]:
    """Ground truth: every record (repeats included) of the blobs listed as available in [start, end)."""
    return [e for slot in slots(content_type, store, start, end, now) for e in blob(store, content_type, slot, now)]


def af_error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


class Microsoft365Api:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.issuer = TokenIssuer(config.token, clock, "client_credentials", lifetime_as_text=True)
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)
        self._enabled: set[str] = set()
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        content = [
            Route("GET", f"/api/{v}/{TENANT}/activity/feed/subscriptions/content", self._api(self.content))
            for v in ("v1.0", "v1")
        ]
        return content + [
            Route("POST", f"/{TENANT}/oauth2/v2.0/token", self.issuer.token),
            Route("GET", FEED + "subscriptions/list", self._api(self.list)),
            Route("POST", FEED + "subscriptions/start", self._api(self.start)),
            Route("GET", FEED + "audit/*", self._api(self.fetch)),
        ]

    def reset(self) -> None:
        self.issuer.reset()
        self._limiter.reset()
        with self._lock:
            self._enabled.clear()

    def _api(self, handler):
        def checked(req: Request) -> Response:
            if not self.issuer.valid(req):
                return af_error(
                    401,
                    "AF10001",
                    "The permission set () sent in the request does not include the expected permission.",
                )
            req.auth_ok = True
            if self._limiter.acquire(TENANT) is not None:
                method, publisher = req.path.rsplit("/", 1)[-1], req.param("PublisherIdentifier")
                return af_error(403, "AF429", f"Too many requests. Method={method}, PublisherId={publisher}")
            return handler(req)

        return checked

    def list(self, req: Request) -> Response:
        with self._lock:
            return json_response(
                200, [{"contentType": t, "status": "enabled", "webhook": None} for t in sorted(self._enabled)]
            )

    def start(self, req: Request) -> Response:
        content_type = req.param("contentType")
        if content_type not in CONTENT_TYPES:
            return af_error(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            if content_type in self._enabled:
                return af_error(400, "AF20024", "The subscription is already enabled. No property change.")
            self._enabled.add(content_type)
        return json_response(200, {"contentType": content_type, "status": "enabled", "webhook": None})

    def content(self, req: Request) -> Response:
        now = self._clock.now()
        content_type = req.param("contentType")
        if content_type not in CONTENT_TYPES:
            return af_error(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            if content_type not in self._enabled:
                return af_error(400, "AF20022", "No subscription found for the specified content type.")
        start, end = _moment(req.param("startTime")), _moment(req.param("endTime") or req.param("endtime"))
        if start is None or end is None or not start < end or end - start > 86400 or start < now - RETENTION:
            return af_error(
                400,
                "AF20055",
                "Start time and end time must both be specified (or both omitted) and "
                "must be less than or equal to 24 hours apart, with the start time prior to end time and "
                "start time no more than 7 days in the past.",
            )
        first = -(-int(start) // BLOB_SECONDS) - 1
        if req.param("nextPage") is not None:
            try:
                first = int(decode_token(req.param("nextPage"))["slot"])
            except (ValueError, KeyError, TypeError):
                return af_error(400, "AF20031", "Invalid nextPage Input: " + req.param("nextPage"))
        found = list(islice(slots(content_type, self._store, max(start, created(first)), end, now), PAGE_BLOBS + 1))
        page, more = found[:PAGE_BLOBS], found[PAGE_BLOBS:]
        host = f"http://{req.headers.get('host', 'localhost')}"
        body = [
            {
                "contentType": content_type,
                "contentId": self._content_id(content_type, s),
                "contentUri": f"{host}{FEED}audit/{self._content_id(content_type, s)}",
                "contentCreated": _text(created(s)),
                "contentExpiration": _text(created(s) + RETENTION),
            }
            for s in page
        ]
        headers = {}
        if more:
            end_name = "endtime" if len(req.query) % 2 else "endTime"
            query = {
                "contentType": content_type,
                "startTime": req.param("startTime"),
                end_name: req.param("endTime") or req.param("endtime"),
                "nextPage": encode_token({"slot": more[0]}),
            }
            headers["NextPageUri"] = f"{host}/api/v1/{TENANT}/activity/feed/subscriptions/content?{urlencode(query)}"
        return json_response(200, body, headers)

    def fetch(self, req: Request) -> Response:
        content_id = req.path.rsplit("/", 1)[-1]
        try:
            slot_text, tenant, content_type, _ = content_id.split("$")
            slot = int(slot_text)
        except ValueError:
            return af_error(400, "AF20052", "Content ID in the request is invalid.")
        if tenant != TENANT.replace("-", "") or content_type not in CONTENT_TYPES:
            return af_error(400, "AF20052", "Content ID in the request is invalid.")
        now = self._clock.now()
        if created(slot) + RETENTION <= now:
            return af_error(404, "AF20051", "Content requested with the key has already expired.")
        if listed_at(self._store, content_type, slot) > now:
            return af_error(404, "AF20050", "The specified content does not exist.")
        events = blob(self._store, content_type, slot, now)
        return Response(200, b"[" + b",".join(e.payload for e in events) + b"]", {"Content-Type": "application/json"})

    @staticmethod
    def _content_id(content_type: str, slot: int) -> str:
        return f"{slot}${TENANT.replace('-', '')}${content_type}${slot * 7919 % 100000:05d}"


def _moment(text: str | None) -> float | None:
    """`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (UTC), as documented, or with a `Z`."""
    if not text:
        return None
    for form in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.removesuffix("Z"), form).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None

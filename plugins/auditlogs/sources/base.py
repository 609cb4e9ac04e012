"""What a source is: declarative data about one API, read by the one shared paging and collecting loop.

A source module fills in a `SourceSpec`: how to authenticate, the first request of a window, the paging
strategy, where the events sit in a page, their id and time fields, the order they come in and the
documented limits. Functions appear only where an API is truly odd.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from pydantic import ConfigDict, Field, field_validator

from auditlogs import exact_json
from auditlogs.client.api import ApiClient, ApiRequest, RateLimitFloor, RateLimitTest, RefusalTest
from auditlogs.client.pagination import Paginator
from auditlogs.config import SourceConfig
from auditlogs.errors import IncompleteWindowError, MalformedEventError, MalformedResponseError, excerpt
from auditlogs.window import Window

#: How far a bound whose inclusiveness the vendor does not document is moved outward: an exclusive bound
#: then still includes an event at the window's exact edge, and the collector trims the extra.
OUTWARD = timedelta(milliseconds=1)


class ChosenStreams(SourceConfig):
    """A source type whose config key `streams` picks some of its `streams`, one task each (default: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    selected_streams: tuple[str, ...] | None = Field(None, alias="streams", min_length=1)

    @field_validator("selected_streams")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [name for name in value or () if name not in cls.streams]
        if unknown:
            raise ValueError(f"{unknown} are not streams of this type; allowed: {', '.join(cls.streams)}")
        if value and len(set(value)) != len(value):
            raise ValueError("lists a stream twice")
        return value

    def stream_names(self) -> tuple[str, ...]:
        return self.selected_streams or self.streams


class Order(enum.Enum):
    NEWEST_FIRST = "newest_first"
    OLDEST_FIRST = "oldest_first"
    #: No order at all (Dropbox: "events are not guaranteed to be sorted"): repeats are dropped by id over
    #: the whole window, and every new event counts as progress wherever it sits.
    UNSORTED = "unsorted"


class BadEventError(ValueError):
    """An event lacks its id or time, or the time does not parse: never dropped silently."""


def page_events(spec: SourceSpec, client: ApiClient, response: Any) -> Iterable[dict]:
    """The events of an answer (a page, a source's own check), or the error for a page without them."""
    try:
        return spec.events(response.body)
    except BadEventError as exc:
        raise MalformedResponseError(str(exc), where=client.where, status=response.status) from None


def malformed_event(
    exc: BadEventError, position: str, event: dict, client: ApiClient, status: int | None
) -> MalformedEventError:
    """The task's error for a bad event wherever its time is read (a page, a source's own check): where it sat
    and the event, scrubbed. The same answer comes back on a retry, so it is not retried."""
    return MalformedEventError(
        f"{position}: {exc}",
        where=client.where,
        status=status,
        body_excerpt=excerpt(exact_json.line(event), client.secrets),
    )


@dataclass(frozen=True)
class SourceSpec:
    type: str
    #: (`builtins.type`: the field above shadows the builtin in this class's annotations.)
    config: builtins.type[SourceConfig]
    #: Sets the credential from the Airflow connection on the requests session.
    auth: Callable[[Any, Any], None]
    #: Its config parameter (here and below) is the type's own `SourceConfig` subclass.
    first_request: Callable[[Any, str, Window], ApiRequest]
    paginator: Paginator
    events: Callable[[Any], Iterable[dict]]
    event_id: Callable[[dict], str]
    event_time: Callable[[dict], datetime]
    order: Order
    max_page_size: int
    #: The API's documented limit, the default request budget.
    requests_per_minute: int
    #: What a user must grant the token, named in authentication errors.
    permission: str
    #: Extra request headers the API wants (media type, API version).
    headers: Mapping[str, str] = dataclass_field(default_factory=dict)
    #: For APIs that signal rate limits with more than 429: tells such a response from a refusal.
    is_rate_limited: RateLimitTest | None = None
    #: For APIs whose documentation or rate-limit body asks for a longer wait than their headers do.
    rate_limit_floor: RateLimitFloor | None = None
    #: For APIs whose order is a request parameter the config chooses (GitHub's `order`).
    config_order: Callable[[Any], Order] | None = None
    #: The API's base URL when the connection has no host (a connection host always wins).
    default_base_url: str | None = None
    #: Set for an API that shows only a recent snapshot: the window is checked to be within its reach.
    snapshot: Snapshot | None = None
    #: The API's documented hourly limit besides the minute's (1Password: 30,000), 0: none documented.
    requests_per_hour: int = 0
    #: For APIs whose 401/403 can mean more than a bad credential: what to tell the user instead.
    refusal: RefusalTest | None = None
    #: A path below the connection's host that the connection decides (O365's `api/v1.0/{tenant}/...`).
    connection_path: Callable[[Any], str] | None = None
    #: The longest window one request may ask for: longer windows are collected in consecutive pieces.
    max_window: timedelta | None = None
    #: Called once per task before the first page (O365: start the content type's subscription if missing).
    prepare: Callable[[ApiClient, Any, str], None] | None = None
    #: For APIs that list content blobs (O365): the records of one listed entry, fetched with the client.
    #: `event_time` then reads the listed entry (when the blob became available), `event_id` the record.
    blob: Callable[[ApiClient, Any, dict], Iterable[dict]] | None = None
    #: Set when the same event may come back anywhere in a window, not only at the edge reached so far
    #: (O365 repeats records across blobs): repeats are then dropped by id over the whole window.
    repeats_anywhere: bool = False
    #: For APIs that can only be asked for more than the window (Zoom's whole, padded days): the range a
    #: request for the window really covers. Events there but outside the window are expected, trimmed, and
    #: count as paging progress, so the no-progress guard does not mistake the padding for a runaway.
    asked_window: Callable[[Any, Window], Window] | None = None
    #: For APIs whose filters can be misread silently: `(client, config, stream, window, events in the window)`
    #: is called after paging and raises instead of letting a wrong answer be written as complete.
    check_window: Callable[[Any, Any, str, Window, int], None] | None = None
    #: For APIs that show events only this long after they happen and answer empty before (Duo's deliberate
    #: 2 minutes): a window ending closer to now than that is waited for, never asked for early.
    visible_after: Callable[[SourceConfig], timedelta] | None = None
    #: How late the vendor documents events can reach the API (Dropbox: up to 24 hours): the delay advisor
    #: measures what runs see, and says what a `delay` (or `sweep`) shorter than this means.
    documented_lateness: timedelta | None = None

    def order_for(self, config: SourceConfig) -> Order:
        return self.config_order(config) if self.config_order else self.order

    def key(self, event: dict) -> str:
        """The event's id as the text that de-duplication and the manifests compare (see `id_text`)."""
        return id_text(self.event_id(event))


_JSON_TYPES = {bool: "boolean", int: "number", float: "number", dict: "object", list: "array"}


def id_text(value: Any) -> str:
    """An id as comparable text that keeps its JSON type: a string as it is (the keys of existing manifests),
    anything else tagged with its type, so the number `1` and the string `"1"` are two ids."""
    if isinstance(value, str):
        return value
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    return f"\0{kind}:{exact_json.canonical(value).decode()}"


@dataclass(frozen=True)
class Snapshot:
    """An API with no time filter and no paging that shows only its most recent `limit` rows.

    It cannot answer for the past, so a window it cannot cover fails loudly instead of being written as an
    empty or short "complete" interval: a window starting more than `horizon` ago fails before any request,
    and a full answer (`limit` rows, so older ones may have been cut off) whose oldest row is not older than
    the window's start fails after it.
    """

    horizon: Callable[[SourceConfig], timedelta]
    limit: Callable[[SourceConfig], int]

    def check_reach(self, config: SourceConfig, window: Window, now: datetime, where: str) -> None:
        horizon = self.horizon(config)
        if window.start < now - horizon:
            raise IncompleteWindowError(
                f"the window starts more than the snapshot horizon of {horizon} before now ({now.isoformat()}): "
                "the API only shows recent rows and cannot answer for it; nothing was written",
                where=where,
                hint="this source cannot be backfilled or caught up; run it on a short schedule without catchup, "
                "or raise 'horizon' if the API really keeps rows longer",
            )

    def check_complete(
        self, config: SourceConfig, window: Window, rows: int, oldest: datetime | None, where: str
    ) -> None:
        limit = self.limit(config)
        if rows >= limit and oldest is not None and oldest >= window.start:
            raise IncompleteWindowError(
                f"the snapshot is full ({rows} rows, the limit) and its oldest row ({oldest.isoformat()}) is not "
                "older than the window's start, so rows of this window may have been cut off; nothing was written",
                where=where,
                hint="raise the source's 'limit', or run it more often",
            )


def field(*path: str) -> Callable[[dict], Any]:
    """Read a (nested) field of an event; a missing one is a bad event, not a silent None."""

    def read(event: dict) -> Any:
        value: Any = event
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                raise BadEventError(f"event has no '{'.'.join(path)}'")
            value = value[key]
        return value

    return read


def unix_seconds(*path: str) -> Callable[[dict], datetime]:
    read = field(*path)

    def parse(event: dict) -> datetime:
        value = read(event)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, expected Unix seconds")
        return _in_range(path, value, lambda: datetime.fromtimestamp(value, timezone.utc))

    return parse


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def rfc3339(*path: str) -> Callable[[dict], datetime]:
    """A strict RFC 3339 timestamp with a time zone ('2014-10-03T16:48:25Z', '...:25.123+02:00'), as UTC."""
    read = field(*path)

    def parse(event: dict) -> datetime:
        value = read(event)
        match = _RFC3339.match(value) if isinstance(value, str) else None
        if not match:
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, expected an RFC 3339 timestamp with a time zone")
        text = value.replace("Z", "+00:00")
        if match.group(1) and len(match.group(1)) > 7:  # Python reads at most microseconds
            text = text.replace(match.group(1), match.group(1)[:7])
        return _in_range(path, value, lambda: datetime.fromisoformat(text).astimezone(timezone.utc))

    return parse


def _in_range(path: tuple[str, ...], value: Any, convert: Callable[[], datetime]) -> datetime:
    """A time field converted, or a bad event when it names no instant Python can hold (year 1 at +01:00,
    epoch milliseconds of 10**18, Unix seconds of 1e300): never a raw ValueError or OverflowError."""
    try:
        return convert()
    except (ValueError, OverflowError, OSError):
        raise BadEventError(
            f"'{'.'.join(path)}' is {value!r}, not a real date and time within the years 1 to 9999 UTC"
        ) from None


def event_key(*paths: tuple[str, ...]) -> Callable[[dict], str]:
    """The event's id: one field, or several joined with '|' when the API's id is a tuple.

    An event lacking any of them is keyed by 'sha256:' and the SHA-256 of its canonical JSON (sorted keys),
    which is the same on every page and every run, so such an event is still de-duplicated, never dropped.
    """
    readers = [field(*path) for path in paths]

    def key(event: dict) -> str:
        try:
            return "|".join(id_text(read(event)) for read in readers)
        except BadEventError:
            return content_key(event)

    return key


def content_key(event: dict) -> str:
    """The key of an event without an id (Zoom's): 'sha256:' and the SHA-256 of its canonical JSON (sorted
    keys), the same on every page and every run. Two identical events in the same instant share it."""
    return "sha256:" + hashlib.sha256(exact_json.canonical(event)).hexdigest()


def epoch_millis(*path: str) -> Callable[[dict], datetime]:
    read = field(*path)

    def parse(event: dict) -> datetime:
        value = read(event)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, expected integer epoch milliseconds")
        return _in_range(
            path,
            value,
            lambda: datetime.fromtimestamp(value // 1000, timezone.utc) + timedelta(milliseconds=value % 1000),
        )

    return parse


def rfc3339_text(moment: datetime) -> str:
    """A UTC instant as RFC 3339 APIs want it, `2026-03-01T04:00:00Z`, with a fraction only when it has one."""
    micro = moment.microsecond
    precision = "seconds" if not micro else "milliseconds" if micro % 1000 == 0 else "microseconds"
    text = moment.astimezone(timezone.utc).isoformat(timespec=precision)
    return text.replace("+00:00", "Z")


def whole_seconds(window: Window) -> Window:
    """The window widened to whole seconds (start floored, end ceiled), for APIs whose bounds take no
    fraction (Box, Dropbox); the collector trims to the exact window."""
    end = window.end.replace(microsecond=0)
    return Window(window.start.replace(microsecond=0), end + timedelta(seconds=1) if end < window.end else end)


def events_at(*path: str, omitted_when_empty: bool = False) -> Callable[[Any], list]:
    """The event list of a page (no path: the body is the list); a page without it is malformed, unless
    the API omits an empty list (`omitted_when_empty`, as Google's do) and the page is a JSON object."""
    read = field(*path)
    name = f"'{'.'.join(path)}'" if path else "body"

    def extract(body: Any) -> list:
        try:
            events = read(body)
        except BadEventError:
            if omitted_when_empty and isinstance(body, dict) and _absent(body, path):
                return []
            raise BadEventError(f"page has no {name} list") from None
        if not isinstance(events, list):
            raise BadEventError(f"page's {name} is not a list")
        return events

    return extract


def _absent(body: dict, path: tuple[str, ...]) -> bool:
    for key in path:
        if key not in body:
            return True
        body = body[key]
        if not isinstance(body, dict):
            return False
    return False


def error_code(content: bytes | bytearray, *path: str) -> str | None:
    """The error code an API put in its JSON error body (Microsoft's `error.code`), or None."""
    try:
        value: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None

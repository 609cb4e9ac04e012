"""What a source is: declarative data about one API, read by the one shared paging and collecting loop.

A source module fills in a `SourceSpec`: how to authenticate, the first request of a window, the paging
strategy, where the events sit in a page, their id and time fields, the order they come in and the
documented limits. Functions appear only where an API is truly odd.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime, timedelta, timezone
from typing import Any

from auditlogs.client.api import ApiRequest, RateLimitTest
from auditlogs.client.pagination import Paginator
from auditlogs.config import SourceConfig
from auditlogs.window import Window


class Order(enum.Enum):
    NEWEST_FIRST = "newest_first"
    OLDEST_FIRST = "oldest_first"


class BadEventError(ValueError):
    """An event lacks its id or time, or the time does not parse: never dropped silently."""


@dataclass(frozen=True)
class SourceSpec:
    type: str
    config: type[SourceConfig]
    #: Sets the credential from the Airflow connection on the requests session.
    auth: Callable[[Any, Any], None]
    first_request: Callable[[SourceConfig, str, Window], ApiRequest]
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
    #: For APIs whose order is a request parameter the config chooses (GitHub's `order`).
    config_order: Callable[[SourceConfig], Order] | None = None

    def order_for(self, config: SourceConfig) -> Order:
        return self.config_order(config) if self.config_order else self.order


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
        return datetime.fromtimestamp(value, timezone.utc)

    return parse


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE)


def rfc3339(*path: str) -> Callable[[dict], datetime]:
    """A strict RFC 3339 date-time with a zone ('Z' or an offset), as UTC; anything else is a bad event."""
    read = field(*path)

    def parse(event: dict) -> datetime:
        value = read(event)
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, expected an RFC 3339 date-time with a zone")
        try:
            return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(timezone.utc)
        except ValueError:
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, not a valid date-time") from None

    return parse


def epoch_millis(*path: str) -> Callable[[dict], datetime]:
    read = field(*path)

    def parse(event: dict) -> datetime:
        value = read(event)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadEventError(f"'{'.'.join(path)}' is {value!r}, expected integer epoch milliseconds")
        return datetime.fromtimestamp(value // 1000, timezone.utc) + timedelta(milliseconds=value % 1000)

    return parse


def rfc3339_text(moment: datetime) -> str:
    """A UTC instant as RFC 3339 APIs want it, `2026-03-01T04:00:00Z`, with a fraction only when it has one."""
    micro = moment.microsecond
    precision = "seconds" if not micro else "milliseconds" if micro % 1000 == 0 else "microseconds"
    text = moment.astimezone(timezone.utc).isoformat(timespec=precision)
    return text.replace("+00:00", "Z")


def events_at(*path: str) -> Callable[[Any], list]:
    """The event list of a page (no path: the body is the list); a page without it is malformed."""
    read = field(*path)
    name = f"'{'.'.join(path)}'" if path else "body"

    def extract(body: Any) -> list:
        try:
            events = read(body)
        except BadEventError:
            raise BadEventError(f"page has no {name} list") from None
        if not isinstance(events, list):
            raise BadEventError(f"page's {name} is not a list")
        return events

    return extract

"""What a source is: declarative data about one API, read by the one shared paging and collecting loop.

A source module fills in a `SourceSpec`: how to authenticate, the first request of a window, the paging
strategy, where the events sit in a page, their id and time fields, the order they come in and the
documented limits. Functions appear only where an API is truly odd.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from auditlogs.client.api import ApiRequest
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


def events_at(*path: str) -> Callable[[Any], list]:
    """The event list of a page; a page without it is malformed."""
    read = field(*path)

    def extract(body: Any) -> list:
        try:
            events = read(body)
        except BadEventError:
            raise BadEventError(f"page has no '{'.'.join(path)}' list") from None
        if not isinstance(events, list):
            raise BadEventError(f"page's '{'.'.join(path)}' is not a list")
        return events

    return extract

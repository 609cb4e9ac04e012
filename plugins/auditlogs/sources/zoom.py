"""Zoom report APIs (Server-to-Server OAuth): `activities` (sign-in/sign-out, `/v2/report/activities`) and
`operation_logs` (`/v2/report/operationlogs`).

The API filters by whole days only (`from`/`to` as `yyyy-mm-dd`, inclusiveness and the day's time zone not
documented), so each request asks for the window's days padded by `window_pad_days` on each side and the
collector trims to the exact window on `time`. At most a month per request (windows are asked for in pieces
of MAX_WINDOW), at most 6 months back (`retention`). `next_page_token` is sent back with the same filters.
Records have no id: the key is the SHA-256 of the record's canonical JSON (two identical records in the same
second collapse into one, counted as a repeat). Newest first.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyCursor
from auditlogs.sources.auth import zoom_server_to_server
from auditlogs.sources.base import BadEventError, ChosenStreams, Order, SourceSpec, content_key, events_at, rfc3339
from auditlogs.window import Window

MAX_PAGE_SIZE = 300
#: stream -> (report path, where its records are)
REPORTS = {
    "activities": ("v2/report/activities", "activity_logs"),
    "operation_logs": ("v2/report/operationlogs", "operation_logs"),
}
#: One month per request: 27 days of window plus two padded days and the partial days at its ends.
MAX_WINDOW = timedelta(days=27)
CATEGORY_TYPES = (
    "all",
    "user",
    "user_settings",
    "account",
    "billing",
    "im",
    "recording",
    "phone_contacts",
    "webinar",
    "sub_account",
    "role",
    "zoom_rooms",
)


class ZoomConfig(ChosenStreams):
    type: Literal["zoom"]
    page_size: int = Field(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    #: Whole days asked for before and after the window: the API's day boundary may not be UTC.
    window_pad_days: int = Field(1, ge=0, le=2)
    #: Operation logs only: which category (`all` by default).
    category_type: Literal[CATEGORY_TYPES] = "all"  # type: ignore[valid-type]  # a Literal of the documented names
    retention: timedelta | None = timedelta(days=180)
    streams = tuple(REPORTS)


def asked_days(config: ZoomConfig, window: Window) -> Window:
    """The whole days a request for `window` asks for: its own days padded by `window_pad_days` each side."""
    pad = timedelta(days=config.window_pad_days)
    first = (window.start - pad).replace(hour=0, minute=0, second=0, microsecond=0)
    last = (window.end - timedelta(microseconds=1) + pad).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(first, last + timedelta(days=1))


def first_request(config: ZoomConfig, stream: str, window: Window) -> ApiRequest:
    days = asked_days(config, window)
    params: dict[str, Any] = {
        "from": f"{days.start:%Y-%m-%d}",
        "to": f"{days.end - timedelta(days=1):%Y-%m-%d}",
        "page_size": config.page_size,
    }
    if stream == "operation_logs":
        params["category_type"] = config.category_type
    return ApiRequest("GET", REPORTS[stream][0], params=params)


_LISTS = {key: events_at(key) for _, key in REPORTS.values()}


def events(body: Any) -> list:
    """The page's `activity_logs` or `operation_logs`."""
    key = next((key for key in _LISTS if isinstance(body, dict) and key in body), None)
    if key is None:
        raise BadEventError(f"page has none of {', '.join(_LISTS)}")
    return _LISTS[key](body)


SPEC = SourceSpec(
    type="zoom",
    config=ZoomConfig,
    auth=zoom_server_to_server,
    first_request=first_request,
    paginator=BodyCursor(cursor_path=("next_page_token",), cursor_param="next_page_token"),
    events=events,
    event_id=content_key,
    event_time=rfc3339("time"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_PAGE_SIZE,
    requests_per_minute=20,  # Heavy APIs: 30,000 a day on Pro, shared with every app of the account
    permission="the report:read:admin scope of a Server-to-Server OAuth app (Pro plan or higher)",
    default_base_url="https://api.zoom.us",
    max_window=MAX_WINDOW,
    asked_window=asked_days,
)

"""Slack Audit Logs API (Enterprise Grid): `GET /audit/v1/logs`, newest first, inclusive second bounds."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyCursor
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import Order, SourceSpec, events_at, field, unix_seconds
from auditlogs.window import Window

MAX_LIMIT = 9999


class SlackConfig(SourceConfig):
    type: Literal["slack"]
    #: Events per page; Slack may return more when events share a second.
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    streams = ("audit",)


def first_request(config: SlackConfig, stream: str, window: Window) -> ApiRequest:
    # Both bounds are inclusive seconds; the collector trims to the exact half-open window.
    params = {
        "oldest": math.floor(window.start.timestamp()),
        "latest": math.ceil(window.end.timestamp()),
        "limit": config.limit,
    }
    return ApiRequest("GET", "audit/v1/logs", params=params)


SPEC = SourceSpec(
    type="slack",
    config=SlackConfig,
    auth=bearer_token,
    first_request=first_request,
    paginator=BodyCursor(cursor_path=("response_metadata", "next_cursor"), cursor_param="cursor"),
    events=events_at("entries"),
    event_id=field("id"),
    event_time=unix_seconds("date_create"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=50,
    permission="the auditlogs:read user scope of an Enterprise org owner",
)

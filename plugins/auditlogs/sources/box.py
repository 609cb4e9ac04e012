"""Box enterprise events (`GET /2.0/events?stream_type=admin_logs`, the Enterprise Event History API).

`created_after`/`created_before` bound the window (RFC 3339; whether either bound is inclusive is not
documented, so the start is asked for one second early and the collector trims to `[start, end)` on
`created_at`, which carries a local offset). Paging: `next_stream_position` goes back as `stream_position`
with every filter re-sent. Box warns that a chunk can be shorter than `limit` while more remain, so only an
empty chunk ends a window, never a short one; the last answer repeats the position. Positions exceed 2**53
and come as a JSON number or a string: kept exact (exact_json) and sent back as their digits. Oldest first,
without duplicates; `event_id` is the id. Tokens: Client Credentials Grant (auth.box_client_credentials).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import PositionUntilEmpty
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import box_client_credentials
from auditlogs.sources.base import Order, SourceSpec, events_at, field, rfc3339, rfc3339_text, whole_seconds
from auditlogs.window import Window

MAX_LIMIT = 500
#: The start asked for one second early: `created_after`'s inclusiveness is not documented.
EARLY = timedelta(seconds=1)


class BoxConfig(SourceConfig):
    type: Literal["box"]
    #: Events per chunk (Box: default 100, maximum 500).
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    #: Only these event types (`event_type`, comma-separated), e.g. [LOGIN, DOWNLOAD]; default all.
    event_types: tuple[str, ...] | None = Field(None, min_length=1)
    retention: timedelta | None = timedelta(days=365)
    streams = ("admin_logs",)


def first_request(config: BoxConfig, stream: str, window: Window) -> ApiRequest:
    asked = whole_seconds(window)
    params = {
        "stream_type": "admin_logs",
        "limit": config.limit,
        "created_after": rfc3339_text(asked.start - EARLY),
        "created_before": rfc3339_text(asked.end),
    }
    if config.event_types:
        params["event_type"] = ",".join(config.event_types)
    return ApiRequest("GET", "2.0/events", params=params)


SPEC = SourceSpec(
    type="box",
    config=BoxConfig,
    auth=box_client_credentials,
    first_request=first_request,
    paginator=PositionUntilEmpty(
        position_path=("next_stream_position",), position_param="stream_position", events_path=("entries",)
    ),
    events=events_at("entries"),
    event_id=field("event_id"),
    event_time=rfc3339("created_at"),
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=600,  # Box: about 1,000 calls/minute per user, shared with every app of that user
    permission="the 'manage enterprise properties' scope of a Box Platform app (Client Credentials Grant) "
    "authorised in the Admin Console, acting for an admin or a co-admin who may run reports",
    default_base_url="https://api.box.com",
)

"""1Password Events API: `POST {host}/api/v2/<stream>`, a reset cursor with the window first, then the
returned cursor while `has_more`; oldest first; RFC 3339 times. The region's host (events.1password.com,
.ca, .eu, events.ent.1password.com) is the connection's host."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import PostedCursor
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import OUTWARD, Order, SourceSpec, events_at, field, rfc3339, rfc3339_text
from auditlogs.window import Window

MAX_LIMIT = 1000
Stream = Literal["auditevents", "itemusages", "signinattempts"]
STREAMS: tuple[Stream, ...] = ("auditevents", "itemusages", "signinattempts")


class OnePasswordConfig(SourceConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["onepassword"]
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    #: The config key `streams`: which event types to collect, one parallel task each.
    selected_streams: tuple[Stream, ...] = Field(STREAMS, alias="streams", min_length=1)
    streams = STREAMS

    @field_validator("selected_streams")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a stream twice")
        return value

    def stream_names(self) -> tuple[str, ...]:
        return self.selected_streams


def first_request(config: OnePasswordConfig, stream: str, window: Window) -> ApiRequest:
    # Whether start_time/end_time are inclusive is not documented: start_time is sent 1 ms early, end_time at
    # the end (an inclusive end only adds events the collector trims to [start, end)).
    reset_cursor = {
        "limit": config.limit,
        "start_time": rfc3339_text(window.start - OUTWARD),
        "end_time": rfc3339_text(window.end),
    }
    return ApiRequest("POST", f"api/v2/{stream}", json=reset_cursor)


SPEC = SourceSpec(
    type="onepassword",
    config=OnePasswordConfig,
    auth=bearer_token,
    first_request=first_request,
    paginator=PostedCursor(),
    events=events_at("items"),
    event_id=field("uuid"),
    event_time=rfc3339("timestamp"),
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=600,
    requests_per_hour=30_000,  # and 600 a minute: both enforced
    permission=(
        "an Events Reporting integration bearer token whose events include this stream "
        "(auditevents, itemusages or signinattempts; 1Password Business)"
    ),
)

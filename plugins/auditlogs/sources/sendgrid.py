"""SendGrid "recent access attempts" (`GET /v3/access_settings/activity`): a snapshot, not a log.

The API has no time filter and no paging, only `limit`: it answers with the most recent rows, one per IP
and authentication method, each with the first and the most recent attempt (`first_at`, `last_at`, Unix
seconds). A run keeps the rows whose `last_at` falls in its window, keyed by
`ip|auth_method|first_at|last_at` (a row seen again with a later `last_at` is a new observation). The
rows are written unchanged. The snapshot cannot answer for the past: a window starting more than
`horizon` ago, or a full snapshot (`limit` rows) that does not reach back past the window's start, fails
the task loudly (see `Snapshot`) instead of writing a short interval as complete.
"""

from __future__ import annotations

from datetime import timedelta
from operator import attrgetter
from typing import Any, Literal

from pydantic import Field, field_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import SinglePage
from auditlogs.config import SourceConfig, parse_duration
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import Order, Snapshot, SourceSpec, event_key, events_at, unix_seconds
from auditlogs.window import Window


class SendGridConfig(SourceConfig):
    type: Literal["sendgrid"]
    #: Rows asked for (SendGrid's default is 20; no maximum is documented).
    limit: int = Field(1000, ge=1)
    #: How far back the snapshot is trusted to reach; older windows fail.
    horizon: timedelta = timedelta(hours=24)
    streams = ("access_attempts",)

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon(cls, value: Any) -> timedelta:
        return parse_duration(value)


def first_request(config: SendGridConfig, stream: str, window: Window) -> ApiRequest:
    return ApiRequest("GET", "v3/access_settings/activity", params={"limit": config.limit})


SPEC = SourceSpec(
    type="sendgrid",
    config=SendGridConfig,
    auth=bearer_token,
    first_request=first_request,
    paginator=SinglePage(),
    events=events_at("result"),
    event_id=event_key(("ip",), ("auth_method",), ("first_at",), ("last_at",)),
    event_time=unix_seconds("last_at"),
    order=Order.NEWEST_FIRST,
    max_page_size=0,  # no paging: the whole snapshot is one answer of at most `limit` rows
    requests_per_minute=0,  # not documented per endpoint: X-RateLimit-* headers and 429 are honoured
    permission="the access_settings.activity.read API key scope",
    default_base_url="https://api.sendgrid.com",
    snapshot=Snapshot(horizon=attrgetter("horizon"), limit=attrgetter("limit")),
)

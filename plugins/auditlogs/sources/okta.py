"""Okta System Log: `GET {host}/api/v1/logs` in bounded mode (both `since` and `until`, which filters on
`published` and ends with a last page without a next link), oldest first, following Link rel="next"."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import LinkHeaderNext
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import ssws_or_bearer_token
from auditlogs.sources.base import OUTWARD, Order, SourceSpec, events_at, field, rfc3339, rfc3339_text
from auditlogs.window import Window

MAX_LIMIT = 1000


class OktaConfig(SourceConfig):
    type: Literal["okta"]
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    streams = ("systemlog",)


def first_request(config: OktaConfig, stream: str, window: Window) -> ApiRequest:
    # Bounded mode: the next links carry since/until. Whether `since` is inclusive is not documented, so it
    # is sent 1 ms early (Okta's precision); the collector trims to [start, end).
    params = {
        "since": rfc3339_text(window.start - OUTWARD),
        "until": rfc3339_text(window.end),
        "sortOrder": "ASCENDING",
        "limit": config.limit,
    }
    return ApiRequest("GET", "api/v1/logs", params=params)


SPEC = SourceSpec(
    type="okta",
    config=OktaConfig,
    auth=ssws_or_bearer_token,
    first_request=first_request,
    paginator=LinkHeaderNext(),
    events=events_at(),
    event_id=field("uuid"),
    event_time=rfc3339("published"),
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=120,
    permission="the okta.logs.read scope (OAuth) or an API token of an admin who may read the System Log",
)

"""Twilio Monitor events: `GET /v1/Events`, HTTP Basic, inclusive StartDate/EndDate, newest first, and an
absolute `meta.next_page_url` that carries every parameter and is followed verbatim."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyNextUrl
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import basic_auth
from auditlogs.sources.base import Order, SourceSpec, event_key, events_at, rfc3339
from auditlogs.window import Window

MAX_PAGE_SIZE = 1000


class TwilioConfig(SourceConfig):
    type: Literal["twilio"]
    #: Events per page (Twilio's default is 50).
    page_size: int = Field(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    streams = ("events",)


def _second(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_request(config: TwilioConfig, stream: str, window: Window) -> ApiRequest:
    # Both bounds are inclusive and event times whole seconds, so the last second before the window's end
    # is the exact inclusive end (asking for the end second itself costs an extra page at page boundaries).
    params = {
        "StartDate": _second(math.floor(window.start.timestamp())),
        "EndDate": _second(math.ceil(window.end.timestamp()) - 1),
        "PageSize": config.page_size,
    }
    return ApiRequest("GET", "v1/Events", params=params)


SPEC = SourceSpec(
    type="twilio",
    config=TwilioConfig,
    auth=basic_auth,
    first_request=first_request,
    paginator=BodyNextUrl(url_path=("meta", "next_page_url")),
    events=events_at("events"),
    event_id=event_key(("sid",)),
    event_time=rfc3339("event_date"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_PAGE_SIZE,
    requests_per_minute=0,  # not documented: Twilio limits concurrent requests (429, code 20429)
    permission="read access to Monitor events (the Account SID with its Auth Token, or an API key SID with its secret)",
    default_base_url="https://monitor.twilio.com",
)

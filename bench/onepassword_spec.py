"""A 1Password Events (auditevents) spec for the benchmark only, so the collector runs on the second shape.

The product has no 1Password source on this branch yet; when `auditlogs.sources.SPECS` has one, the
benchmark uses that instead. This module only declares what differs (POST with a JSON cursor, oldest first,
RFC 3339 times) and plugs into the same paging loop, collector and sink as Slack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from auditlogs.client.api import ApiRequest, ApiResponse
from auditlogs.config import SourceConfig
from auditlogs.sources import SPECS
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import BadEventError, Order, SourceSpec, events_at, field


class OnePasswordBenchConfig(SourceConfig):
    type: Literal["onepassword"]
    streams = ("audit",)


@dataclass(frozen=True)
class JsonBodyCursor:
    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        if not response.body.get("has_more"):
            return None
        return replace(previous, json={"cursor": response.body["cursor"]})


def _first_request(config, stream, window) -> ApiRequest:
    end = window.end - timedelta(seconds=1)
    return ApiRequest("POST", "api/v2/auditevents", json={
        "limit": 1000, "start_time": f"{window.start:%Y-%m-%dT%H:%M:%SZ}", "end_time": f"{end:%Y-%m-%dT%H:%M:%SZ}",
    })


_timestamp = field("timestamp")


def _event_time(event: dict) -> datetime:
    try:
        return datetime.fromisoformat(_timestamp(event))
    except (TypeError, ValueError):
        raise BadEventError(f"'timestamp' is {event.get('timestamp')!r}, expected RFC 3339") from None


SPEC = SourceSpec(
    type="onepassword", config=OnePasswordBenchConfig, auth=bearer_token, first_request=_first_request,
    paginator=JsonBodyCursor(), events=events_at("items"), event_id=field("uuid"), event_time=_event_time,
    order=Order.OLDEST_FIRST, max_page_size=1000, requests_per_minute=600, permission="the auditevents feature",
)


def onepassword_source(common: dict) -> SourceConfig:
    spec = SPECS.setdefault("onepassword", SPEC)
    return spec.config.model_validate({"name": "onepassword", "type": "onepassword", **common})

"""Dropbox team events (`POST /2/team_log/get_events`, then `/2/team_log/get_events/continue`).

The window goes in the body as `time` (`start_time` inclusive, `end_time` exclusive, UTC whole seconds):
the window rule exactly. `continue` takes only `{"cursor"}` (the query lives in it) until `has_more` is
false; a page can be empty while `has_more` is true, and the cursor changes on every answer. Events are
not sorted and have no id: the key is `sha256:` of the event's canonical JSON, repeats are dropped over the
whole window, and page order is never relied on. A 409 `reset` on `continue` (Dropbox invalidated the
cursor) pages the window again from its start: Dropbox's "resume from this timestamp" would skip the
unsorted events before it that had not come yet. Events can reach the log up to 24 hours late.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import PostedCursor
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import dropbox_refresh_token
from auditlogs.sources.base import Order, SourceSpec, content_key, events_at, rfc3339, rfc3339_text, whole_seconds
from auditlogs.window import Window

MAX_LIMIT = 1000
GET_EVENTS = "2/team_log/get_events"
#: "Generally ... a few hours. At most, actions appear within twenty-four hours" (Dropbox help).
LATENESS = timedelta(hours=24)


class DropboxConfig(SourceConfig):
    type: Literal["dropbox"]
    #: Events per call (Dropbox: 1 to 1000, default 1000).
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    #: One event category (`logins`, `sharing`, `file_operations`, ...); default every category.
    category: str | None = Field(None, min_length=1)
    #: One event type (`login_fail`, ...); Dropbox refuses it together with `category`.
    event_type: str | None = Field(None, min_length=1)
    streams = ("team_events",)

    @model_validator(mode="after")
    def _one_filter(self) -> DropboxConfig:
        if self.category and self.event_type:
            raise ValueError(
                "set 'category' or 'event_type', not both: Dropbox refuses them together (invalid_filters)"
            )
        return self


def first_request(config: DropboxConfig, stream: str, window: Window) -> ApiRequest:
    asked = whole_seconds(window)
    body: dict[str, Any] = {
        "limit": config.limit,
        "time": {"start_time": rfc3339_text(asked.start), "end_time": rfc3339_text(asked.end)},
    }
    if config.category:
        body["category"] = {".tag": config.category}
    if config.event_type:
        body["event_type"] = {".tag": config.event_type}
    return ApiRequest("POST", GET_EVENTS, json=body)


def cursor_reset(status: int | None, body: Any) -> bool:
    """Dropbox's 409 `{"error": {".tag": "reset", "reset": "<timestamp>"}}` on `continue`."""
    error = body.get("error") if isinstance(body, dict) else None
    return status == 409 and isinstance(error, dict) and error.get(".tag") == "reset"


SPEC = SourceSpec(
    type="dropbox",
    config=DropboxConfig,
    auth=dropbox_refresh_token,
    first_request=first_request,
    paginator=PostedCursor(continue_url=f"{GET_EVENTS}/continue", restart_when=cursor_reset),
    events=events_at("events"),
    event_id=content_key,
    event_time=rfc3339("timestamp"),
    order=Order.UNSORTED,
    max_page_size=MAX_LIMIT,
    requests_per_minute=60,  # not documented for team_log
    permission="the events.read scope of a team-linked app, authorised by a team admin with Team Auditing",
    default_base_url="https://api.dropboxapi.com",
    documented_lateness=LATENESS,
)

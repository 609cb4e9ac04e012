"""GitLab audit events of one group, one project or the whole instance (self-managed and Dedicated):
`GET /api/v4/{groups/:id|projects/:id|}/audit_events`, keyset pagination (`pagination=keyset`, newest
first by id, the Link rel="next" followed as given), both time bounds inclusive at whole seconds."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, model_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import LinkHeaderNext
from auditlogs.config import SourceConfig
from auditlogs.errors import ConfigError
from auditlogs.sources.auth import token_header
from auditlogs.sources.base import Order, SourceSpec, events_at, field, rfc3339
from auditlogs.window import Window

MAX_PER_PAGE = 100
#: The instance endpoint refuses a query spanning more than 30 days.
INSTANCE_MAX_WINDOW = timedelta(days=30)


class GitLabConfig(SourceConfig):
    type: Literal["gitlab"]
    #: Exactly one of the three: a group or project (numeric id or full path such as `northwind/security`),
    #: or the whole instance (self-managed and Dedicated, administrators only).
    group: str | None = Field(None, min_length=1)
    project: str | None = Field(None, min_length=1)
    instance: bool = False
    #: keyset (GitLab 15.2+ groups, 15.10+ projects, 15.11+ instance; offset is removed in 19.0) or offset.
    pagination: Literal["keyset", "offset"] = "keyset"
    per_page: int = Field(MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    streams = ("audit_events",)

    @model_validator(mode="before")
    @classmethod
    def _ids_as_text(cls, data: Any) -> Any:
        """`group: 4242` in YAML is an id, as `group: "4242"` is."""
        if isinstance(data, dict):
            data = {**data, **{key: str(data[key]) for key in ("group", "project") if isinstance(data.get(key), int)}}
        return data

    @model_validator(mode="after")
    def _one_scope(self) -> GitLabConfig:
        if [self.group is not None, self.project is not None, self.instance].count(True) != 1:
            raise ValueError(
                "set exactly one of 'group' (id or full path), 'project' (id or full path) and 'instance: true'"
            )
        if self.instance and self.period + self.delay > INSTANCE_MAX_WINDOW:
            raise ValueError("instance audit events are queried at most 30 days at a time: use a shorter 'schedule'")
        return self

    @property
    def scope_path(self) -> str:
        """The endpoint below /api/v4; a path is URL-encoded (`group%2Fsub`), else GitLab answers 404."""
        if self.instance:
            return "audit_events"
        kind, ref = ("groups", self.group) if self.group is not None else ("projects", self.project)
        return f"{kind}/{quote(str(ref).strip('/'), safe='')}/audit_events"


def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_request(config: GitLabConfig, stream: str, window: Window) -> ApiRequest:
    # Both bounds are inclusive and take whole seconds, while created_at has milliseconds: the upper bound
    # is a second past the window's end (whether 12:00:00Z includes 12:00:00.500 is undocumented); the
    # collector trims to [start, end).
    if config.instance and window.end - window.start > INSTANCE_MAX_WINDOW:
        raise ConfigError(
            f"the window {window} is longer than the 30 days GitLab's instance audit events allow per query",
            hint="use a schedule whose intervals plus 'delay' stay within 30 days",
        )
    params: dict[str, Any] = {
        "created_after": _second(math.floor(window.start.timestamp())),
        "created_before": _second(math.floor(window.end.timestamp()) + 1),
        "per_page": config.per_page,
    }
    if config.pagination == "keyset":
        params.update(pagination="keyset", order_by="id", sort="desc")
    return ApiRequest("GET", f"api/v4/{config.scope_path}", params=params)


def auth(connection: Any, session: Any) -> None:
    """`PRIVATE-TOKEN` (personal, group or project access token, the default) or `Authorization: Bearer`
    (an OAuth token), as the connection extra `{"auth_header": "PRIVATE-TOKEN" | "Bearer"}` says."""
    scheme = (connection.extra_dejson or {}).get("auth_header", "PRIVATE-TOKEN")
    if scheme not in ("PRIVATE-TOKEN", "Bearer"):
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra auth_header {scheme!r}",
            hint='set the extra to {"auth_header": "PRIVATE-TOKEN"} for an access token or {"auth_header": "Bearer"} '
            "for an OAuth token",
        )
    put = token_header("Authorization", "Bearer ") if scheme == "Bearer" else token_header("PRIVATE-TOKEN")
    put(connection, session)


SPEC = SourceSpec(
    type="gitlab",
    config=GitLabConfig,
    auth=auth,
    first_request=first_request,
    paginator=LinkHeaderNext(),  # keyset and offset modes both send Link rel="next"
    events=events_at(),
    event_id=field("id"),
    event_time=rfc3339("created_at"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_PER_PAGE,
    requests_per_minute=200,  # the audit-events limit of self-managed (GitLab.com allows 2,000 per user)
    permission=(
        "the read_api scope, on a token of a group Owner, a project Maintainer or an instance administrator "
        "(a Developer's token silently sees only its own events); Premium or Ultimate"
    ),
    default_base_url="https://gitlab.com",
)

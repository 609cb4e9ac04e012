"""Zendesk audit logs (Enterprise plans): `GET /api/v2/audit_logs` with cursor pagination.

The window is `filter[created_at][]` sent twice (start, then end) as whole seconds; whether the bounds are
inclusive is not documented, so the start is sent a second early and the collector trims to `[start, end)`.
`sort=created_at` asks oldest first (the default is newest first). Pages follow `meta.has_more` and
`meta.after_cursor`, sent back as `page[after]` with the filters re-sent, so a `links.next` that dropped
them could not widen the query. An account whose plan lacks the API (or a user who is not an admin) is
answered 403 or 404: that fails the task saying so, never as an empty interval.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import FlaggedCursor
from auditlogs.config import SourceConfig
from auditlogs.errors import ConfigError
from auditlogs.sources.auth import basic_auth, bearer_token
from auditlogs.sources.base import Order, SourceSpec, events_at, field, rfc3339
from auditlogs.window import Window

MAX_PAGE_SIZE = 100
PERMISSION = "an admin's API token or OAuth token (scope read) on a Zendesk Suite or Support Enterprise plan"


class ZendeskConfig(SourceConfig):
    type: Literal["zendesk"]
    page_size: int = Field(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    streams = ("audit_logs",)


def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_request(config: ZendeskConfig, stream: str, window: Window) -> ApiRequest:
    bounds = [_second(math.floor(window.start.timestamp()) - 1), _second(math.ceil(window.end.timestamp()))]
    params = {"filter[created_at][]": bounds, "sort": "created_at", "page[size]": config.page_size}
    return ApiRequest("GET", "api/v2/audit_logs", params=params)


def auth(connection: Any, session: Any) -> None:
    """An API token (default): login `agent@example.com/token` (the `/token` suffix is added when missing),
    password the token, as HTTP Basic. Extra `{"auth": "oauth"}`: the password is an OAuth bearer token."""
    mode = (connection.extra_dejson or {}).get("auth", "api_token")
    if mode == "oauth":
        bearer_token(connection, session)
        return
    if mode != "api_token":
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra auth {mode!r}",
            hint='set the extra to {"auth": "api_token"} (login email/token, password the API token) or '
            '{"auth": "oauth"} (password the OAuth access token)',
        )
    if not connection.login:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has no login",
            hint="put the admin's email followed by /token (agent@example.com/token) in the login field",
        )
    login = connection.login if connection.login.endswith("/token") else f"{connection.login}/token"
    basic_auth(_WithLogin(connection, login), session)


class _WithLogin:
    def __init__(self, connection: Any, login: str):
        self._connection, self.login = connection, login

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def refusal(status: int, content: bytes | bytearray) -> tuple[str, str] | None:
    """403/404: the plan has no audit log API, or the user is no admin (a wrong token is a 401)."""
    if status not in (403, 404):
        return None
    what = (
        f"Zendesk refused the audit log API (HTTP {status}): the account's plan does not include audit logs "
        "(Enterprise only) or the user is not an admin; nothing was written, not even an empty interval"
    )
    return what, "use an admin's token on an Enterprise account, or remove this source; the task is not retried"


SPEC = SourceSpec(
    type="zendesk",
    config=ZendeskConfig,
    auth=auth,
    first_request=first_request,
    paginator=FlaggedCursor(
        more_path=("meta", "has_more"), cursor_path=("meta", "after_cursor"), cursor_param="page[after]"
    ),
    events=events_at("audit_logs"),
    event_id=field("id"),
    event_time=rfc3339("created_at"),
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_PAGE_SIZE,
    requests_per_minute=200,  # the account's 700/min (Enterprise) is shared with every other integration
    permission=PERMISSION,
    refusal=refusal,
)

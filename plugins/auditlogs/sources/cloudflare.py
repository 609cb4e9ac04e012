"""Cloudflare account audit logs: v2 (`GET /accounts/{account_id}/logs/audit`, the default) or v1
(`GET /accounts/{account_id}/audit_logs`).

Both take `since`/`before` ("newer than" / "older than": exclusive, undocumented), so `since` is sent a
millisecond early and the collector trims to `[start, end)`; `direction=asc`. v2 pages by an opaque cursor
that the API has put in `result_info.cursor` or in `result_info.cursors.after` (the SDKs disagree): both
are read, and a full page that carries neither is not taken as the end. The next request then asks from
the page's last event time (its repeats are dropped), so a cursor in a third place costs requests but
never stops the window after page 1. v1 pages by number until an empty page. v2 keeps 30 days in beta
(18 months at GA, unsettled): `retention` defaults to 30 days for v2 and 18 months for v1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from auditlogs.client.api import ApiRequest, ApiResponse
from auditlogs.client.pagination import BadPage, PageNumber
from auditlogs.config import SourceConfig
from auditlogs.errors import ConfigError
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import (
    OUTWARD,
    BadEventError,
    Order,
    SourceSpec,
    events_at,
    field,
    rfc3339,
    rfc3339_text,
)
from auditlogs.window import Window

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
RETENTION = {"v2": timedelta(days=30), "v1": timedelta(days=548)}


class CloudflareConfig(SourceConfig):
    type: Literal["cloudflare"]
    account_id: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$")
    api_version: Literal["v2", "v1"] = "v2"
    #: v2 `limit` (1-1000) or v1 `per_page` (its maximum is not documented).
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    streams = ("audit_logs",)

    @model_validator(mode="before")
    @classmethod
    def _retention(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("retention") is None:
            data = {**data, "retention": RETENTION.get(data.get("api_version", "v2"), RETENTION["v2"])}
        return data


def first_request(config: CloudflareConfig, stream: str, window: Window) -> ApiRequest:
    params: dict[str, Any] = {
        "since": rfc3339_text(window.start - OUTWARD),
        "before": rfc3339_text(window.end),
        "direction": "asc",
    }
    if config.api_version == "v1":
        return ApiRequest(
            "GET", f"accounts/{config.account_id}/audit_logs", params={**params, "per_page": config.limit, "page": 1}
        )
    return ApiRequest("GET", f"accounts/{config.account_id}/logs/audit", params={**params, "limit": config.limit})


_V1_PAGES = PageNumber("page", ("result",))
_V2_TIME = rfc3339("action", "time")


@dataclass(frozen=True)
class CloudflarePaging:
    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        if "per_page" in (previous.params or {}):
            return _V1_PAGES.next_request(previous, response)
        body = response.body if isinstance(response.body, dict) else {}
        result = body.get("result")
        if not isinstance(result, list):
            raise BadPage("page has no 'result' list")
        if not result:
            return None
        info: dict[str, Any] = body["result_info"] if isinstance(body.get("result_info"), dict) else {}
        cursors: dict[str, Any] = info["cursors"] if isinstance(info.get("cursors"), dict) else {}
        cursor = info.get("cursor") or cursors.get("after")
        params = {k: v for k, v in (previous.params or {}).items() if k != "cursor"}
        if cursor:
            if not isinstance(cursor, str):
                raise BadPage(f"result_info's cursor is {cursor!r}, not a string")
            return replace(previous, params={**params, "cursor": cursor})
        if len(result) < int(params["limit"]):
            return None
        try:
            last = _V2_TIME(result[-1])
        except BadEventError as exc:
            raise BadPage(str(exc)) from None
        log.warning(
            "a full page of %d came without a cursor in result_info.cursor or result_info.cursors.after "
            "(result_info keys: %s); asking again from its last event time instead of stopping",
            len(result),
            sorted(info)[:10],
        )
        return replace(previous, params={**params, "since": rfc3339_text(last - OUTWARD)})


def event_time(event: dict) -> datetime:
    """v1: `when`; v2: `action.time`."""
    return _V1_TIME(event) if "when" in event else _V2_TIME(event)


_V1_TIME = rfc3339("when")


def auth(connection: Any, session: Any) -> None:
    """An API token as `Bearer` (default), or extra `{"auth": "api_key"}`: login = email, password = the
    Global API key, as `X-Auth-Email` / `X-Auth-Key`."""
    mode = (connection.extra_dejson or {}).get("auth", "api_token")
    if mode == "api_token":
        bearer_token(connection, session)
        return
    if mode != "api_key" or not connection.login or not connection.password:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra auth {mode!r} without an email login and key",
            hint='use an API token in the password (extra {"auth": "api_token"}), or {"auth": "api_key"} with the '
            "account email as login and the Global API key as password",
        )
    session.headers["X-Auth-Email"] = connection.login
    session.headers["X-Auth-Key"] = connection.password


SPEC = SourceSpec(
    type="cloudflare",
    config=CloudflareConfig,
    auth=auth,
    first_request=first_request,
    paginator=CloudflarePaging(),
    events=events_at("result"),
    event_id=field("id"),
    event_time=event_time,
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=120,  # half of 1,200 per 5 minutes per user, which a 429 then blocks for 5 minutes
    permission="the Account Settings Read (or Write) permission of an API token for the account",
    default_base_url="https://api.cloudflare.com/client/v4",
)

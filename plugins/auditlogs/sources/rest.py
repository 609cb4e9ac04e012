"""`type: rest`: a paged JSON audit API declared in the YAML config alone.

The config names, in the words the built-in sources use, what a source module would otherwise say in
code: the auth scheme (sources/auth.py), the first request with the window's bounds in a chosen format,
the paging strategy (client/pagination.py), where the events are, their id and time fields, their order
and the page size. `spec_of(config)` turns it into the same `SourceSpec` the one collecting loop reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyCursor, BodyNextUrl, LinkHeaderNext, Paginator, PostedCursor, SinglePage
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import basic_auth, bearer_token, token_header
from auditlogs.sources.base import (
    Order,
    SourceSpec,
    epoch_millis,
    event_key,
    events_at,
    field,
    rfc3339,
    rfc3339_text,
    unix_seconds,
)
from auditlogs.window import Window

TimeFormat = Literal["rfc3339", "unix_seconds", "unix_millis"]
_PATH = r"^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*$"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RestAuth(_Part):
    #: bearer: `Authorization: Bearer <password>`; basic: login and password; header: `<header>: <prefix><password>`.
    scheme: Literal["bearer", "basic", "header"]
    header: str | None = Field(None, min_length=1)
    prefix: str = ""

    @model_validator(mode="after")
    def _header(self) -> RestAuth:
        if (self.scheme == "header") != (self.header is not None):
            raise ValueError("'header' names the request header for scheme 'header', and only for it")
        return self


class RestWindow(_Part):
    """How the window's bounds go into the first request."""

    start_param: str = Field(min_length=1)
    end_param: str = Field(min_length=1)
    format: TimeFormat = "rfc3339"
    #: exclusive: the window's end as is; inclusive: the last instant before it in the format's unit.
    end: Literal["exclusive", "inclusive"] = "exclusive"


class RestPaging(_Part):
    #: body_cursor: `cursor` in the body, sent back as query `param` with the filters; link_header: Link
    #: rel="next"; next_url: an absolute URL at `url` in the body; posted_cursor: `{cursor: ...}` POSTed back
    #: while `more` is true; single_page: no paging.
    strategy: Literal["body_cursor", "link_header", "next_url", "posted_cursor", "single_page"]
    cursor: str | None = Field(None, pattern=_PATH)
    param: str | None = Field(None, min_length=1)
    url: str | None = Field(None, pattern=_PATH)
    more: str | None = Field(None, pattern=_PATH)

    @model_validator(mode="after")
    def _fields(self) -> RestPaging:
        needs = {"body_cursor": {"cursor", "param"}, "next_url": {"url"}, "posted_cursor": {"cursor", "more"}}
        wanted = needs.get(self.strategy, set())
        given = {name for name in ("cursor", "param", "url", "more") if getattr(self, name) is not None}
        if given != wanted:
            names = ", ".join(f"'{name}'" for name in sorted(wanted)) or "none of cursor, param, url, more"
            raise ValueError(f"paging strategy '{self.strategy}' takes {names}")
        return self


class RestTime(_Part):
    field: str = Field(pattern=_PATH)
    format: TimeFormat = "rfc3339"


class RestConfig(SourceConfig):
    type: Literal["rest"]
    #: The stream's name: its task and GCS folder.
    stream: str = Field("events", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    #: The API's base URL when the connection has no host.
    base_url: str | None = Field(None, pattern=r"^https?://")
    path: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    auth: RestAuth
    headers: dict[str, str] = {}
    #: Fixed parameters of the first request (query for GET, JSON body for POST).
    params: dict[str, str | int | bool] = {}
    window: RestWindow
    page_size: int = Field(100, ge=1)
    page_size_param: str | None = Field(None, min_length=1)
    paging: RestPaging
    #: Dotted path of the event list in a page; "" when the page is the list.
    events: str = Field("", pattern=r"^$|" + _PATH)
    #: The id field, or several whose values joined with '|' are the id.
    id: str | tuple[str, ...]
    time: RestTime
    order: Literal["newest_first", "oldest_first"]
    #: Named in authentication errors.
    permission: str = "read access to the audit log"

    def stream_names(self) -> tuple[str, ...]:
        return (self.stream,)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        paths = (value,) if isinstance(value, str) else value
        if not paths or not all(re.match(_PATH, path) for path in paths):
            raise ValueError("name the id field (dotted path such as 'id' or 'meta.uuid'), or a list of them")
        return value


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split(".")) if dotted else ()


def _bound(moment: datetime, unit: TimeFormat, rounding: Callable[[float], int]) -> str | int:
    if unit == "unix_seconds":
        return rounding(moment.timestamp())
    millis = rounding(moment.timestamp() * 1000)
    return millis if unit == "unix_millis" else rfc3339_text(datetime.fromtimestamp(millis / 1000, timezone.utc))


def _first_request(config: RestConfig, stream: str, window: Window) -> ApiRequest:
    bounds = config.window
    end: str | int = _bound(window.end, bounds.format, math.ceil)
    if bounds.end == "inclusive":
        step = timedelta(seconds=1) if bounds.format == "unix_seconds" else timedelta(milliseconds=1)
        end = _bound(window.end - step, bounds.format, math.ceil)
    params = {
        **config.params,
        bounds.start_param: _bound(window.start, bounds.format, math.floor),
        bounds.end_param: end,
    }
    if config.page_size_param:
        params[config.page_size_param] = config.page_size
    if config.method == "POST":
        return ApiRequest("POST", config.path, json=params)
    return ApiRequest("GET", config.path, params=params)


def _paginator(paging: RestPaging) -> Paginator:
    if paging.strategy == "body_cursor":
        return BodyCursor(cursor_path=_path(paging.cursor or ""), cursor_param=paging.param or "")
    if paging.strategy == "next_url":
        return BodyNextUrl(_path(paging.url or ""))
    if paging.strategy == "posted_cursor":
        return PostedCursor(cursor_field=paging.cursor or "", more_field=paging.more or "")
    return LinkHeaderNext() if paging.strategy == "link_header" else SinglePage()


def _auth(auth: RestAuth) -> Callable[[Any, Any], None]:
    if auth.scheme == "header":
        return token_header(auth.header or "", auth.prefix)
    return basic_auth if auth.scheme == "basic" else bearer_token


_TIMES = {"rfc3339": rfc3339, "unix_seconds": unix_seconds, "unix_millis": epoch_millis}


def spec_of(config: RestConfig) -> SourceSpec:
    ids = (config.id,) if isinstance(config.id, str) else config.id
    return SourceSpec(
        type="rest",
        config=RestConfig,
        auth=_auth(config.auth),
        first_request=_first_request,
        paginator=_paginator(config.paging),
        events=events_at(*_path(config.events)),
        event_id=field(*_path(ids[0])) if len(ids) == 1 else event_key(*map(_path, ids)),
        event_time=_TIMES[config.time.format](*_path(config.time.field)),
        order=Order(config.order),
        max_page_size=config.page_size,
        requests_per_minute=0,  # the config's requests_per_minute, else the default budget
        permission=config.permission,
        headers=config.headers,
        default_base_url=config.base_url,
    )

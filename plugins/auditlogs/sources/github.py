"""GitHub audit log of an enterprise or an organization (GitHub.com / Enterprise Cloud, or Enterprise
Server with the connection host `https://HOST/api/v3`): `GET .../audit-log` with the documented inclusive
range `created:START..END` in `phrase`, Link rel="next" cursors, epoch-millisecond times; rate limits come
as 429 or as 403."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Literal

import orjson
from pydantic import Field, model_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import LinkHeaderNext
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import Order, SourceSpec, epoch_millis, events_at, field
from auditlogs.window import Window

MAX_PER_PAGE = 100


class GitHubConfig(SourceConfig):
    type: Literal["github"]
    #: Exactly one of the two: the enterprise slug, or the organization login.
    enterprise: str | None = Field(None, min_length=1)
    org: str | None = Field(None, min_length=1)
    #: web (GitHub's default), git (Git events, kept 7 days) or all.
    include: Literal["web", "git", "all"] = "web"
    order: Literal["asc", "desc"] = "asc"
    per_page: int = Field(MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    streams = ("audit",)

    @model_validator(mode="after")
    def _one_owner(self) -> GitHubConfig:
        if (self.enterprise is None) == (self.org is None):
            raise ValueError("set exactly one of 'enterprise' (enterprise slug) and 'org' (organization login)")
        return self


def _second(moment: datetime, rounding) -> str:
    """`created:` takes whole seconds: the window is rounded outward and the collector trims it."""
    return datetime.fromtimestamp(rounding(moment.timestamp()), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_request(config: GitHubConfig, stream: str, window: Window) -> ApiRequest:
    owner = f"enterprises/{config.enterprise}" if config.enterprise else f"orgs/{config.org}"
    phrase = f"created:{_second(window.start, math.floor)}..{_second(window.end, math.ceil)}"
    params = {"phrase": phrase, "include": config.include, "order": config.order, "per_page": config.per_page}
    return ApiRequest("GET", f"{owner}/audit-log", params=params)


def is_rate_limited(status: int, headers: Any, content: bytes | bytearray) -> bool:
    """GitHub answers 403 both for a missing permission and for rate limits: a limit has
    x-ratelimit-remaining 0 (primary), or retry-after or a "rate limit" message (secondary)."""
    if status != 403:
        return False
    if headers.get("x-ratelimit-remaining") == "0" or headers.get("retry-after") is not None:
        return True
    return "rate limit" in _message(content)


#: GitHub's documentation: after a secondary rate limit without a usable reset, wait at least a minute
#: (its body says "wait a few minutes" while `retry-after` may say 1 s).
SECONDARY_LIMIT_WAIT = 60.0


def rate_limit_floor(status: int, headers: Any, content: bytes | bytearray) -> float | None:
    """A secondary limit waits at least a minute, whatever its `retry-after` says; a primary one (remaining
    0) waits for its reset, which the client reads from the headers."""
    message = _message(content)
    if "secondary rate limit" in message or "wait a few minutes" in message:
        return SECONDARY_LIMIT_WAIT
    return None


def _message(content: bytes | bytearray) -> str:
    try:
        message = orjson.loads(content).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return message.lower() if isinstance(message, str) else ""


SPEC = SourceSpec(
    type="github",
    config=GitHubConfig,
    auth=bearer_token,
    first_request=first_request,
    paginator=LinkHeaderNext(),
    events=events_at(),
    event_id=field("_document_id"),
    event_time=epoch_millis("@timestamp"),
    order=Order.OLDEST_FIRST,
    config_order=lambda config: Order.OLDEST_FIRST if config.order == "asc" else Order.NEWEST_FIRST,
    max_page_size=MAX_PER_PAGE,
    requests_per_minute=29,  # 1,750 per hour per user, IP and entity
    requests_per_hour=1_750,
    permission=(
        "the read:audit_log scope (classic token of an enterprise admin or organization owner; GitHub App: "
        "organization administration read; the enterprise endpoint of GitHub Enterprise Server needs admin:enterprise)"
    ),
    headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
    is_rate_limited=is_rate_limited,
    rate_limit_floor=rate_limit_floor,
)

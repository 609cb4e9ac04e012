"""Microsoft 365 (Office 365 Management Activity API): one stream per content type.

`GET {host}/api/v1.0/{tenant}/activity/feed/subscriptions/content?contentType=..&startTime=..&endTime=..`
lists the content blobs that became available in `[startTime, endTime)` (their `contentCreated`, not the
records' time), at most 24 h per request, at most 7 days back; further pages are the `NextPageUri` header's
URL, followed verbatim. Each listed `contentUri` is then fetched: a bare array of records, in no order, with
repeats (also across blobs) by `Id`. So an interval holds the records of the blobs listed as available in
it, whatever their `CreationTime`; the time the collector windows, de-duplicates across intervals and
measures lateness on is the blob's `contentCreated`. `PublisherIdentifier` (the tenant, or the extra
`publisher_identifier`) goes on every request, blob fetches included, to stay in the tenant's own quota.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Literal

from pydantic import field_validator

from auditlogs.client.api import ApiClient, ApiRequest
from auditlogs.client.pagination import HeaderNextUrl
from auditlogs.config import SourceConfig
from auditlogs.errors import IncompleteWindowError, MalformedResponseError, RequestRejectedError
from auditlogs.sources.auth import microsoft_identity, microsoft_tenant
from auditlogs.sources.base import Order, SourceSpec, error_code, events_at, field, rfc3339
from auditlogs.window import Window

log = logging.getLogger(__name__)

CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
DEFAULT_CONTENT_TYPES = CONTENT_TYPES[:4]
#: The API keeps content 7 days; Elastic's margin of 5 minutes keeps a slow first request inside it.
REACH = timedelta(days=7) - timedelta(minutes=5)
MAX_WINDOW = timedelta(hours=24)
#: Microsoft's undocumented answer to starting a subscription that is already on (a 400).
ALREADY_ENABLED = "AF20024"


def stream_of(content_type: str) -> str:
    """`Audit.Exchange` -> `audit_exchange`: the stream (task and GCS folder) of a content type."""
    return content_type.lower().replace(".", "_")


class Microsoft365Config(SourceConfig):
    type: Literal["microsoft365"]
    #: Content types to collect, one stream each (DLP.All also needs ActivityFeed.ReadDlp).
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    #: Start a content type's subscription when it is not on (content before that is never available).
    start_subscription: bool = True
    retention: timedelta | None = REACH

    @field_validator("content_types")
    @classmethod
    def _content_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in CONTENT_TYPES]
        if not value or unknown:
            raise ValueError(f"{unknown or 'an empty list'}: list content types out of {', '.join(CONTENT_TYPES)}")
        if len(set(value)) != len(value):
            raise ValueError("each content type may appear only once")
        return value

    def stream_names(self) -> tuple[str, ...]:
        return tuple(stream_of(name) for name in self.content_types)

    def content_type(self, stream: str) -> str:
        return next(name for name in self.content_types if stream_of(name) == stream)


def _time(moment) -> str:
    # The documented forms stop at seconds and carry no zone; intervals are whole seconds.
    return f"{moment:%Y-%m-%dT%H:%M:%S}"


def first_request(config: Microsoft365Config, stream: str, window: Window) -> ApiRequest:
    params = {
        "contentType": config.content_type(stream),
        "startTime": _time(window.start),
        "endTime": _time(window.end),
    }
    return ApiRequest("GET", "subscriptions/content", params=params)


def start_subscription(client: ApiClient, config: Microsoft365Config, stream: str) -> None:
    """Listing content needs the content type's subscription on: start it when it is not (one extra request
    per task to check). A subscription started now yields no content from before now."""
    content_type = config.content_type(stream)
    listed = client.send(ApiRequest("GET", "subscriptions/list")).body
    if any(
        isinstance(s, dict) and s.get("contentType") == content_type and s.get("status") == "enabled"
        for s in listed or []
    ):
        return
    if not config.start_subscription:
        raise IncompleteWindowError(
            f"the tenant has no enabled subscription for {content_type}, so no content can be listed",
            where=client.where,
            hint="set 'start_subscription: true' or start it with POST subscriptions/start",
        )
    try:
        client.send(ApiRequest("POST", "subscriptions/start", params={"contentType": content_type}))
    except RequestRejectedError as exc:
        if ALREADY_ENABLED not in (exc.body_excerpt or ""):
            raise
    log.warning(
        "%s: started the subscription for %s; Microsoft makes no content from before now available, "
        "and the first blobs can take up to 12 hours",
        client.where,
        content_type,
    )


def blob_records(client: ApiClient, config: Microsoft365Config, entry: dict) -> list[dict]:
    """The records of one listed blob: its `contentUri` fetched as given (its `$`s intact, on the API's host)."""
    uri = entry.get("contentUri") if isinstance(entry, dict) else None
    if not isinstance(uri, str) or not uri:
        raise MalformedResponseError(f"a listed content blob has no contentUri: {str(entry)[:200]}", where=client.where)
    records = client.send(ApiRequest("GET", uri)).body
    if not isinstance(records, list):
        raise MalformedResponseError("a content blob is not a JSON array of records", where=client.where)
    return records


def is_rate_limited(status: int, headers: Any, content: bytes | bytearray) -> bool:
    """Throttling is the body's AF429, whatever the status (the FAQ shows it on a 403)."""
    return error_code(content, "error", "code") == "AF429"


def microsoft365_auth(connection: Any, session: Any) -> None:
    """App-only tokens for manage.office.com, and the PublisherIdentifier on every request (the session's)."""
    microsoft_identity("https://manage.office.com")(connection, session)
    extra = connection.extra_dejson or {}
    session.params["PublisherIdentifier"] = extra.get("publisher_identifier") or microsoft_tenant(connection)


SPEC = SourceSpec(
    type="microsoft365",
    config=Microsoft365Config,
    auth=microsoft365_auth,
    first_request=first_request,
    paginator=HeaderNextUrl("NextPageUri"),
    events=events_at(),
    event_id=field("Id"),
    event_time=rfc3339("contentCreated"),
    order=Order.OLDEST_FIRST,
    max_page_size=0,  # the API sets the listing's page size; it takes no parameter
    requests_per_minute=2000,
    permission="the ActivityFeed.Read application permission (and ActivityFeed.ReadDlp for DLP.All), admin-consented",
    is_rate_limited=is_rate_limited,
    default_base_url="https://manage.office.com",
    connection_path=lambda connection: f"api/v1.0/{microsoft_tenant(connection)}/activity/feed/",
    max_window=MAX_WINDOW,
    prepare=start_subscription,
    blob=blob_records,
    repeats_anywhere=True,
)

"""Microsoft Entra ID audit logs through Microsoft Graph: `directory_audits` and `sign_ins`.

`GET {host}/v1.0/auditLogs/{directoryAudits|signIns}` with `$filter=<time> ge <start> and <time> le <end>`
(only `ge`, `le` and `eq` are documented, so the end is inclusive and the collector trims it), `$top`, both
newest first (sign-ins always are; directory audits are asked `$orderby=activityDateTime desc`). Further
pages are `@odata.nextLink`, followed verbatim, also past empty pages. Times carry 7 fractional digits.
A tenant without Entra ID P1/P2 gets 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant` on
sign-ins: that is a licence, not a credential, problem and fails at once saying so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyNextUrl
from auditlogs.sources.auth import microsoft_identity
from auditlogs.sources.base import (
    BadEventError,
    ChosenStreams,
    Order,
    SourceSpec,
    error_code,
    events_at,
    field,
    rfc3339,
    rfc3339_text,
)
from auditlogs.window import Window

MAX_TOP = 1000
STREAMS = ("directory_audits", "sign_ins")
#: stream -> (Graph path, time field, extra parameters)
ENDPOINTS = {
    "directory_audits": ("v1.0/auditLogs/directoryAudits", "activityDateTime", {"$orderby": "activityDateTime desc"}),
    "sign_ins": ("v1.0/auditLogs/signIns", "createdDateTime", {}),
}
LICENCE_REFUSAL = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


class EntraIdConfig(ChosenStreams):
    type: Literal["entra_id"]
    page_size: int = Field(MAX_TOP, ge=1, le=MAX_TOP)
    streams = STREAMS


def first_request(config: EntraIdConfig, stream: str, window: Window) -> ApiRequest:
    path, time_field, extra = ENDPOINTS[stream]
    time_filter = f"{time_field} ge {rfc3339_text(window.start)} and {time_field} le {rfc3339_text(window.end)}"
    return ApiRequest("GET", path, params={"$filter": time_filter, "$top": config.page_size, **extra})


_TIMES = {name: rfc3339(name) for _, name, _ in ENDPOINTS.values()}


def event_time(event: dict) -> datetime:
    """A directory audit's `activityDateTime` or a sign-in's `createdDateTime`."""
    name = next((name for name in _TIMES if name in event), None)
    if name is None:
        raise BadEventError(f"event has none of {', '.join(_TIMES)}")
    return _TIMES[name](event)


def licence_refusal(status: int, content: bytes | bytearray) -> tuple[str, str] | None:
    if status == 403 and error_code(content, "error", "code") == LICENCE_REFUSAL:
        return (
            "the tenant has no Microsoft Entra ID P1 or P2 licence, which Graph requires to read sign-in logs",
            "license the tenant (P1 or P2), or remove 'sign_ins' from the source's streams; the credential is "
            "fine and the task is not retried",
        )
    return None


SPEC = SourceSpec(
    type="entra_id",
    config=EntraIdConfig,
    auth=microsoft_identity("https://graph.microsoft.com"),
    first_request=first_request,
    paginator=BodyNextUrl(("@odata.nextLink",)),
    events=events_at("value"),
    event_id=field("id"),
    event_time=event_time,
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_TOP,
    requests_per_minute=30,  # 5 requests per 10 s per app and tenant
    permission="the AuditLog.Read.All and Directory.Read.All application permissions, admin-consented",
    default_base_url="https://graph.microsoft.com",
    refusal=licence_refusal,
)

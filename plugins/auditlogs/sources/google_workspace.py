"""Google Workspace Admin SDK Reports: `activities.list` per application (each a stream), RFC 3339
`startTime`/`endTime` (sent outward), newest first, `nextPageToken` sent back as `pageToken` with the same
parameters re-sent. OAuth tokens of a service account with domain-wide delegation.

An activity's id is the tuple `id.time`, `id.uniqueQualifier`, `id.applicationName`, `id.customerId`;
its key here is those four values as the API sent them, joined with '|'.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Literal

from pydantic import Field, field_validator

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyCursor
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import google_service_account
from auditlogs.sources.base import Order, SourceSpec, event_key, events_at, rfc3339
from auditlogs.window import Window

MAX_RESULTS = 1000
SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
#: Every `applicationName` of activities.list (the API's discovery document, as google-api-python-client has it).
APPLICATIONS = (
    "access_transparency",
    "admin",
    "calendar",
    "chat",
    "chrome",
    "context_aware_access",
    "data_studio",
    "drive",
    "gcp",
    "gplus",
    "groups",
    "groups_enterprise",
    "jamboard",
    "keep",
    "login",
    "meet",
    "mobile",
    "rules",
    "saml",
    "token",
    "user_accounts",
)
#: The security-relevant ones (README: Google Workspace): who signed in, what admins changed, which apps got
#: tokens, what left through Drive, devices and browsers, access decisions and Google's own access.
DEFAULT_APPLICATIONS = (
    "admin",
    "login",
    "token",
    "saml",
    "user_accounts",
    "context_aware_access",
    "access_transparency",
    "groups_enterprise",
    "rules",
    "drive",
    "mobile",
    "chrome",
    "gcp",
)
_APPLICATION = re.compile(r"^[a-z][a-z_]{0,62}$")


class GoogleWorkspaceConfig(SourceConfig):
    type: Literal["google_workspace"]
    #: Reports applications to collect, one stream (task and GCS folder) each; `all` for every one.
    applications: tuple[str, ...] = DEFAULT_APPLICATIONS
    max_results: int = Field(MAX_RESULTS, ge=1, le=MAX_RESULTS)

    @field_validator("applications", mode="before")
    @classmethod
    def _all(cls, value: object) -> object:
        return APPLICATIONS if value == "all" else value

    @field_validator("applications")
    @classmethod
    def _applications(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one application, such as admin or login")
        bad = [name for name in value if not _APPLICATION.match(name)]
        if bad:
            raise ValueError(
                f"{bad} are not Reports application names (lower-case letters and '_', such as 'user_accounts')"
            )
        if len(set(value)) != len(value):
            raise ValueError("each application may appear only once")
        return value

    def stream_names(self) -> tuple[str, ...]:
        return self.applications


def _millis(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def first_request(config: GoogleWorkspaceConfig, stream: str, window: Window) -> ApiRequest:
    # `startTime` is inclusive. `endTime` is the window's end itself, not 1 ms before it: were it exclusive,
    # an event in the last millisecond would fall between two windows. The collector trims to [start, end).
    params = {
        "startTime": _millis(math.floor(window.start.timestamp() * 1000)),
        "endTime": _millis(math.ceil(window.end.timestamp() * 1000)),
        "maxResults": config.max_results,
    }
    return ApiRequest("GET", f"admin/reports/v1/activity/users/all/applications/{stream}", params=params)


SPEC = SourceSpec(
    type="google_workspace",
    config=GoogleWorkspaceConfig,
    auth=google_service_account(SCOPE),
    first_request=first_request,
    paginator=BodyCursor(cursor_path=("nextPageToken",), cursor_param="pageToken"),
    events=events_at("items", omitted_when_empty=True),
    event_id=event_key(("id", "time"), ("id", "uniqueQualifier"), ("id", "applicationName"), ("id", "customerId")),
    event_time=rfc3339("id", "time"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_RESULTS,
    requests_per_minute=0,  # the Reports API quota is not documented: 429 is honoured
    permission=(
        f"domain-wide delegation of {SCOPE} to the service account, acting for an admin with the Reports privilege"
    ),
    default_base_url="https://admin.googleapis.com",
)

"""Atlassian organization audit log: `GET /admin/v1/orgs/{org_id}/events` with `from`/`to` as Unix epoch
times, newest first, `links.next` followed as given (it carries the cursor and the filters).

Whether `from`/`to` are seconds or milliseconds is disputed (go-atlassian sends seconds, Grove
milliseconds), and either mistake gives an empty window without an error. So the unit is configurable,
and a window that comes back empty is asked once more in the other unit before it is written empty.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiClient, ApiRequest
from auditlogs.client.pagination import BodyNextUrl
from auditlogs.config import SourceConfig
from auditlogs.errors import IncompleteWindowError
from auditlogs.sources.auth import bearer_token
from auditlogs.sources.base import (
    BadEventError,
    Order,
    SourceSpec,
    events_at,
    field,
    malformed_event,
    page_events,
    rfc3339,
)
from auditlogs.window import Window

#: Padding on both bounds, in case the API's unit or inclusiveness is coarser than assumed; trimmed locally.
PAD_SECONDS = 1
_FACTOR = {"ms": 1000, "s": 1}


class AtlassianConfig(SourceConfig):
    type: Literal["atlassian"]
    org_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")
    #: The unit of `from`/`to`: `ms` (Grove's reading) or `s` (go-atlassian's).
    epoch_unit: Literal["ms", "s"] = "ms"
    streams = ("org_events",)


def _epoch(config: AtlassianConfig, seconds: float) -> int:
    return int(seconds) * _FACTOR[config.epoch_unit]


def _events_path(config: AtlassianConfig) -> str:
    return f"admin/v1/orgs/{config.org_id}/events"


def first_request(config: AtlassianConfig, stream: str, window: Window) -> ApiRequest:
    params = {
        "from": _epoch(config, math.floor(window.start.timestamp()) - PAD_SECONDS),
        "to": _epoch(config, math.ceil(window.end.timestamp()) + PAD_SECONDS),
    }
    return ApiRequest("GET", _events_path(config), params=params)


def check_empty_window(client: ApiClient, config: AtlassianConfig, stream: str, window: Window, in_window: int) -> None:
    """An empty window is written only once the other unit's reading of it is empty too.

    The same window is asked once more with `from`/`to` in the other unit. Read in the unit the API does
    not use, bounds land in 1970 or in the far future and match nothing; so events in the window from
    that request mean the configured unit is the wrong one, and the task fails naming it.
    """
    if in_window:
        return
    other = "s" if config.epoch_unit == "ms" else "ms"
    probe = first_request(config.model_copy(update={"epoch_unit": other}), stream, window)
    answer = client.send(probe)
    found = 0
    for number, event in enumerate(page_events(SPEC, client, answer), 1):
        try:
            found += window.contains(SPEC.event_time(event))
        except BadEventError as exc:
            position = f"the check in epoch_unit '{other}', event {number}"
            raise malformed_event(exc, position, event, client, answer.status) from None
    if found:
        raise IncompleteWindowError(
            f"the window came back empty with 'from'/'to' in the configured epoch_unit '{config.epoch_unit}', but "
            f"asked in '{other}' the API returned {found} events of it: the API reads epoch "
            f"{'milliseconds' if other == 'ms' else 'seconds'}; nothing was written",
            where=client.where,
            hint=f"set 'epoch_unit: {other}' for this source and rerun the interval",
        )


SPEC = SourceSpec(
    type="atlassian",
    config=AtlassianConfig,
    auth=bearer_token,
    first_request=first_request,
    paginator=BodyNextUrl(("links", "next")),
    events=events_at("data"),
    event_id=field("id"),
    event_time=rfc3339("attributes", "time"),  # with or without milliseconds
    order=Order.NEWEST_FIRST,
    max_page_size=100,  # not controllable; the API reports meta.page_size
    requests_per_minute=0,  # not documented: 429 is honoured
    permission="an organization Admin API key (Atlassian Guard); keys expire within a year",
    default_base_url="https://api.atlassian.com",
    check_window=check_empty_window,
)

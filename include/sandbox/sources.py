"""Registry of the SaaS APIs the sandbox can impersonate: one module per API.

Adding an API = a module with `make_renderer(seed)` and an API class taking
(config, store, clock) with `routes()` and `reset()`, registered below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sandbox import (
    atlassian,
    box,
    cloudflare,
    dropbox,
    duo,
    entra_id,
    github,
    gitlab,
    google_workspace,
    microsoft365,
    okta,
    onepassword,
    pagerduty,
    sendgrid,
    slack,
    twilio,
    zendesk,
    zoom,
)
from sandbox.events import Clock, EventStore, Renderer
from sandbox.scenario import Scenario, SourceConfig
from sandbox.web import Route


class Api(Protocol):
    def routes(self) -> list[Route]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class SourceType:
    make_renderer: Callable[[int], Renderer]
    make_api: Callable[[SourceConfig, EventStore, Clock], Api]


SOURCE_TYPES: dict[str, SourceType] = {
    slack.NAME: SourceType(slack.make_renderer, slack.SlackApi),
    onepassword.NAME: SourceType(onepassword.make_renderer, onepassword.OnePasswordApi),
    github.NAME: SourceType(github.make_renderer, github.GitHubApi),
    okta.NAME: SourceType(okta.make_renderer, okta.OktaApi),
    twilio.NAME: SourceType(twilio.make_renderer, twilio.TwilioApi),
    sendgrid.NAME: SourceType(sendgrid.make_renderer, sendgrid.SendGridApi),
    google_workspace.NAME: SourceType(google_workspace.make_renderer, google_workspace.GoogleWorkspaceApi),
    microsoft365.NAME: SourceType(microsoft365.make_renderer, microsoft365.Microsoft365Api),
    entra_id.NAME: SourceType(entra_id.make_renderer, entra_id.EntraIdApi),
    zoom.NAME: SourceType(zoom.make_renderer, zoom.ZoomApi),
    gitlab.NAME: SourceType(gitlab.make_renderer, gitlab.GitLabApi),
    atlassian.NAME: SourceType(atlassian.make_renderer, atlassian.AtlassianApi),
    box.NAME: SourceType(box.make_renderer, box.BoxApi),
    dropbox.NAME: SourceType(dropbox.make_renderer, dropbox.DropboxApi),
    pagerduty.NAME: SourceType(pagerduty.make_renderer, pagerduty.PagerDutyApi),
    duo.NAME: SourceType(duo.make_renderer, duo.DuoApi),
    zendesk.NAME: SourceType(zendesk.make_renderer, zendesk.ZendeskApi),
    cloudflare.NAME: SourceType(cloudflare.make_renderer, cloudflare.CloudflareApi),
}


def event_store(scenario: Scenario, source: str) -> EventStore:
    """The EventStore of `source` as configured by `scenario`."""
    if source not in SOURCE_TYPES:
        raise ValueError(f"unknown source {source!r}; known: {sorted(SOURCE_TYPES)}")
    if source not in scenario.sources:
        raise ValueError(f"source {source!r} is not configured in the scenario")
    return EventStore(
        scenario.seed, source, scenario.sources[source], SOURCE_TYPES[source].make_renderer(scenario.seed)
    )

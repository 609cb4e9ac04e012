"""The registry of source types: one module per API, each exporting a `SPEC` (one line per source)."""

from __future__ import annotations

from auditlogs.config import SourceConfig
from auditlogs.sources import slack
from auditlogs.sources import onepassword
from auditlogs.sources import github
from auditlogs.sources import okta
from auditlogs.sources import twilio
from auditlogs.sources import sendgrid
from auditlogs.sources import google_workspace
from auditlogs.sources import microsoft365
from auditlogs.sources import entra_id
from auditlogs.sources import zoom
from auditlogs.sources import gitlab
from auditlogs.sources import atlassian
from auditlogs.sources import box
from auditlogs.sources import dropbox
from auditlogs.sources import rest
from auditlogs.sources.base import SourceSpec

SPECS: dict[str, SourceSpec] = {
    spec.type: spec
    for spec in (
        slack.SPEC,
        onepassword.SPEC,
        github.SPEC,
        okta.SPEC,
        twilio.SPEC,
        sendgrid.SPEC,
        google_workspace.SPEC,
        microsoft365.SPEC,
        entra_id.SPEC,
        zoom.SPEC,
        gitlab.SPEC,
        atlassian.SPEC,
        box.SPEC,
        dropbox.SPEC,
    )
}
#: Every source type's config model; `rest` has no fixed spec, its config declares one.
SOURCE_TYPES: dict[str, type[SourceConfig]] = {**{name: spec.config for name, spec in SPECS.items()}, "rest": rest.RestConfig}


def spec_for(config: SourceConfig) -> SourceSpec:
    """The spec a configured source runs with: its type's, or the one a `type: rest` config declares."""
    if isinstance(config, rest.RestConfig):
        return rest.spec_of(config)
    return SPECS[config.type]

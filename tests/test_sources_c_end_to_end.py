"""The generated GitLab, Atlassian, Google Workspace (default applications) and `type: rest` DAGs run for
real (`airflow dags test`, SQLite) against the sandbox and the GCS emulator: exactly the sandbox's events
of the widened window land in GCS, once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditlogs.sources import SPECS
from auditlogs.sources.google_workspace import DEFAULT_APPLICATIONS
from harness import (
    E2eInterval,
    Stack,
    assert_interval_holds,
    readme_rest_example,
    stack_fixture,
)
from sandbox.atlassian import ORG_ID
from sandbox.gitlab import GROUP_PATH

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "e2e-bucket"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
START, END = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
TOKENS = {
    "gitlab": "glpat-e2eToken0123456789abcdef",
    "atlassian": "ATATT3xE2eAdminKey0123456789",
    "google_workspace": "ya29.e2e-default-applications-token",
    "pagerduty": "u+e2ePagerDutyKey0123456789",
}
SCENARIO = {
    "seed": 31,
    "sources": {
        name: {
            "events_per_hour": 900,
            "burst_fraction": 0.3,
            "token": token,
            "rate_limit_per_minute": 0,
            "retention_days": 120,
        }
        for name, token in TOKENS.items()
    },
}
SOURCES = {
    "gitlab": {"type": "gitlab", "conn_id": "gitlab_audit", "group": GROUP_PATH},
    "atlassian": {"type": "atlassian", "conn_id": "atlassian_org", "org_id": ORG_ID},
    "gws": {"type": "google_workspace", "conn_id": "gws_reports"},  # the default applications
    **readme_rest_example(),
}


INTERVAL = E2eInterval(SCENARIO, START, END, NOW, tuple(TOKENS.values()))
stack = stack_fixture(INTERVAL, BUCKET, SOURCES)
folder, truth = INTERVAL.folder, INTERVAL.truth


def run(stack: Stack, source: str) -> list[dict]:
    return INTERVAL.run(stack, f"auditlogs_{source}").requests


def test_gitlab_collects_the_groups_window_with_keyset_pages(stack):
    sent = run(stack, "gitlab")
    expected = {str(e["id"]) for e in truth("gitlab")}
    manifest = assert_interval_holds(
        stack.gcs, BUCKET, folder("gitlab", "audit_events"), lambda e: str(e["id"]), expected
    )
    assert len(sent) == manifest["requests"]["count"] == manifest["pages"] > 5
    assert {r["path"] for r in sent} == {"/api/v4/groups/northwind%2Fsecurity/audit_events"}
    assert sent[0]["query"]["pagination"] == ["keyset"] and sent[0]["query"]["created_after"] == [
        "2026-03-01T03:30:00Z"
    ]


def test_atlassian_collects_the_orgs_window_following_links_next(stack):
    sent = run(stack, "atlassian")
    expected = {e["id"] for e in truth("atlassian")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("atlassian", "org_events"), "id", expected)
    assert len(sent) == manifest["requests"]["count"] == manifest["pages"] > 5
    assert sent[0]["query"] == {"from": ["1772335799000"], "to": ["1772341201000"]}


def test_google_workspace_collects_every_default_application_in_its_own_stream(stack):
    sent = run(stack, "gws")
    key = SPECS["google_workspace"].event_id
    everything = truth("google_workspace")
    for app in DEFAULT_APPLICATIONS:
        expected = {key(e) for e in everything if e["id"]["applicationName"] == app}
        assert expected, app
        assert_interval_holds(stack.gcs, BUCKET, folder("gws", app), key, expected)
    assert {r["path"].rsplit("/", 1)[1] for r in sent} == set(DEFAULT_APPLICATIONS)


def test_the_readme_rest_example_collects_pagerduty_audit_records(stack):
    sent = run(stack, "pagerduty")
    expected = {e["id"] for e in truth("pagerduty")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("pagerduty", "audit_records"), "id", expected)
    assert len(sent) == manifest["pages"] == -(-len(expected) // 1000) > 1  # the minimum at limit 1000
    assert sent[0]["query"] == {"since": ["2026-03-01T03:30:00Z"], "until": ["2026-03-01T05:00:00Z"], "limit": ["1000"]}
    assert sent[0]["headers"]["accept"] == "application/vnd.pagerduty+json;version=2"
    assert all(r["auth_ok"] for r in sent)

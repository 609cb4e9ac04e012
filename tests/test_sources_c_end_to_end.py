"""The generated GitLab, Atlassian, Google Workspace (default applications) and `type: rest` DAGs run for
real (`airflow dags test`, SQLite) against the sandbox and the GCS emulator: exactly the sandbox's events
of the widened window land in GCS, once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from auditlogs.sources.google_workspace import DEFAULT_APPLICATIONS
from harness import (
    Stack,
    assert_interval_holds,
    connection_env,
    dags_test,
    interval_folder,
    readme_rest_example,
    running_stack,
    write_config,
)
from sandbox import ground_truth
from sandbox.atlassian import ORG_ID
from sandbox.gitlab import GROUP_PATH

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "e2e-bucket"
DELAY = timedelta(minutes=30)
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        SOURCES,
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=0,
    )

    def connections(url: str) -> dict:
        return {
            **connection_env("gitlab_audit", host=url, password=TOKENS["gitlab"]),
            **connection_env("atlassian_org", host=url, password=TOKENS["atlassian"]),
            **connection_env("gws_reports", "google_cloud_platform", host=url, password=TOKENS["google_workspace"]),
            **connection_env("pagerduty_api", host=url, password=TOKENS["pagerduty"]),
        }

    with running_stack(SCENARIO, BUCKET, connections, clock=NOW, config=config) as running:
        yield running


def run_dag(stack: Stack, source: str) -> list[dict]:
    stack.api.admin.clear_requests()
    result = dags_test(f"auditlogs_{source}", END.isoformat(), stack.env)
    assert result.returncode == 0, result.output[-3000:]
    assert not [token for token in TOKENS.values() if token in result.output]
    return stack.api.admin.requests()


def folder(source: str, stream: str) -> str:
    return interval_folder("raw", source, stream, START, END)


def truth(source: str) -> list[dict]:
    return ground_truth(source, START - DELAY, END, SCENARIO, now=NOW)


def test_gitlab_collects_the_groups_window_with_keyset_pages(stack):
    sent = run_dag(stack, "gitlab")
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
    sent = run_dag(stack, "atlassian")
    expected = {e["id"] for e in truth("atlassian")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("atlassian", "org_events"), "id", expected)
    assert len(sent) == manifest["requests"]["count"] == manifest["pages"] > 5
    assert sent[0]["query"] == {"from": ["1772335799000"], "to": ["1772341201000"]}


def test_google_workspace_collects_every_default_application_in_its_own_stream(stack):
    sent = run_dag(stack, "gws")
    key = SPECS["google_workspace"].event_id
    everything = truth("google_workspace")
    for app in DEFAULT_APPLICATIONS:
        expected = {key(e) for e in everything if e["id"]["applicationName"] == app}
        assert expected, app
        assert_interval_holds(stack.gcs, BUCKET, folder("gws", app), key, expected)
    assert {r["path"].rsplit("/", 1)[1] for r in sent} == set(DEFAULT_APPLICATIONS)


def test_the_readme_rest_example_collects_pagerduty_audit_records(stack):
    sent = run_dag(stack, "pagerduty")
    expected = {e["id"] for e in truth("pagerduty")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("pagerduty", "audit_records"), "id", expected)
    assert len(sent) == manifest["pages"] == -(-len(expected) // 1000) > 1  # the minimum at limit 1000
    assert sent[0]["query"] == {"since": ["2026-03-01T03:30:00Z"], "until": ["2026-03-01T05:00:00Z"], "limit": ["1000"]}
    assert sent[0]["headers"]["accept"] == "application/vnd.pagerduty+json;version=2"
    assert all(r["auth_ok"] for r in sent)

"""The generated 1Password, GitHub and Okta DAGs run for real (`airflow dags test`, SQLite) against the
sandbox and the GCS emulator: exactly the sandbox's events of the widened window land in GCS, once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from harness import (
    E2eInterval,
    Stack,
    assert_interval_holds,
    connection_env,
    interval_folders,
    stack_fixture,
)
from sandbox.github import ORG
from sandbox.onepassword import stream_of_item

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "e2e-bucket"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
TOKENS = {
    "onepassword": "eyJhbGciOiJFUzI1NiJ9.eyJlMmUiOnRydWV9.ZTJlLXNpZ25hdHVyZQ",
    "github": "ghp_e2eToken0123456789abcdefXYZ",
    "okta": "00e2eOktaToken0123456789abcdefXYZ",
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
START, END = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)


SOURCES = {
    "onepassword": {
        "type": "onepassword",
        "conn_id": "op_events",
        "limit": 250,
        "streams": ["auditevents", "signinattempts"],
    },
    "github": {"type": "github", "conn_id": "gh_audit", "org": ORG, "include": "all", "per_page": 100},
    "okta": {"type": "okta", "conn_id": "okta_logs", "limit": 200},
}


def connections(url: str) -> dict:
    """Not the sandbox's usual ones: GitHub through a GHES-style base URL, Okta with a Bearer token."""
    return {
        **connection_env("op_events", host=url, password=TOKENS["onepassword"]),
        **connection_env("gh_audit", host=url + "/api/v3", password=TOKENS["github"]),  # a GHES-style base URL
        **connection_env("okta_logs", host=url, password=TOKENS["okta"], extra={"auth_scheme": "Bearer"}),
    }


INTERVAL = E2eInterval(SCENARIO, START, END, NOW, tuple(TOKENS.values()))
stack = stack_fixture(INTERVAL, BUCKET, SOURCES, connections)
folder, truth = INTERVAL.folder, INTERVAL.truth


def run(stack: Stack, source: str) -> list[dict]:
    return INTERVAL.run(stack, f"auditlogs_{source}").requests


def test_onepassword_collects_the_selected_streams_in_parallel_tasks(stack):
    run(stack, "onepassword")
    api, gcs = stack.api, stack.gcs
    for stream in ("auditevents", "signinattempts"):
        expected = {i["uuid"] for i in truth("onepassword") if stream_of_item(i) == stream}
        manifest = assert_interval_holds(gcs, BUCKET, folder("onepassword", stream), "uuid", expected)
        assert manifest["pages"] > 1
    assert not interval_folders(gcs, BUCKET, "raw/onepassword/itemusages/")  # not selected: no task, no folder
    assert {r["path"] for r in api.admin.requests()} == {"/api/v2/auditevents", "/api/v2/signinattempts"}


def test_github_collects_the_window_through_a_ghes_base_url(stack):
    run(stack, "github")
    api, gcs = stack.api, stack.gcs
    expected = {e["_document_id"] for e in truth("github")}
    manifest = assert_interval_holds(gcs, BUCKET, folder("github", "audit"), "_document_id", expected)
    sent = api.admin.requests()
    assert len(sent) == manifest["requests"]["count"] == manifest["pages"] > 5
    assert {r["path"] for r in sent} == {f"/api/v3/orgs/{ORG}/audit-log"}
    assert sent[0]["query"]["phrase"] == ["created:2026-03-01T03:30:00Z..2026-03-01T05:00:00Z"]


def test_okta_collects_the_window_with_a_bearer_token(stack):
    run(stack, "okta")
    api, gcs = stack.api, stack.gcs
    expected = {e["uuid"] for e in truth("okta")}
    manifest = assert_interval_holds(gcs, BUCKET, folder("okta", "systemlog"), "uuid", expected)
    sent = api.admin.requests()
    assert len(sent) == manifest["pages"] > 5 and {r["auth_scheme"] for r in sent} == {"Bearer"}
    assert sent[0]["query"]["since"] == ["2026-03-01T03:29:59.999Z"] and sent[0]["query"]["until"] == [
        "2026-03-01T05:00:00Z"
    ]

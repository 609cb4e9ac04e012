"""The Google Workspace source against the sandbox, without Airflow: exact requests per application,
page tokens with the same parameters re-sent, derived keys, strict times, and the production auth path
(a service-account key with domain-wide delegation, through the google provider) against the sandbox's
token endpoint."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditlogs.errors import AuthError, MalformedResponseError
from auditlogs.sources.google_workspace import SCOPE, SPEC, GoogleWorkspaceConfig
from auditlogs.window import Window
from harness import Connection, api_client, run_collector, sandbox_fixtures
from sandbox import ground_truth

TOKEN = "ya29.client-static-token"
NOW = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
SCENARIO = {
    "seed": 13,
    "sources": {
        "google_workspace": {"events_per_hour": 900, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}
    },
}
WINDOW = Window(NOW - timedelta(hours=3, minutes=30), NOW - timedelta(hours=2))
PATH = "/admin/reports/v1/activity/users/all/applications/"


server, api = sandbox_fixtures(SCENARIO, NOW)


def config(**overrides) -> GoogleWorkspaceConfig:
    return GoogleWorkspaceConfig(
        name="gws", type="google_workspace", conn_id="gws", bucket="bkt", start_date=NOW, **overrides
    )


def truth(app: str) -> list[dict]:
    return [
        e
        for e in ground_truth("google_workspace", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)
        if e["id"]["applicationName"] == app
    ]


def static_client(api):
    return api_client(SPEC, Connection("gws", host=api.url, password=TOKEN))


def test_each_application_pages_with_the_same_parameters_re_sent(api, tmp_path):
    for app in ("login", "admin"):
        api.requests.clear()
        result, events = run_collector(SPEC, config(max_results=25), app, static_client(api), WINDOW, tmp_path / app)
        assert events == truth(app) and result.pages > 2
        sent = api.requests.entries()
        assert {r["path"] for r in sent} == {PATH + app}
        first = {
            "startTime": ["2025-06-02T08:30:00.000Z"],
            "endTime": ["2025-06-02T10:00:00.000Z"],
            "maxResults": ["25"],
        }
        assert sent[0]["query"] == first
        for request in sent[1:]:
            assert {k: v for k, v in request["query"].items() if k != "pageToken"} == first and request["query"][
                "pageToken"
            ]


def test_an_empty_window_is_zero_events_not_an_error(api, tmp_path):
    quiet = Window(NOW - timedelta(seconds=2), NOW - timedelta(seconds=1))
    result, events = run_collector(SPEC, config(), "groups", static_client(api), quiet, tmp_path)
    assert events == [] and result.pages == 1


def test_config_streams_are_the_applications():
    assert config(applications=["admin", "drive"]).stream_names() == ("admin", "drive")
    with pytest.raises(ValueError, match="only once"):
        config(applications=["admin", "admin"])


def activity(**id_fields) -> dict:
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2025-06-02T09:00:00.123Z",
            "uniqueQualifier": "-42",
            "applicationName": "login",
            "customerId": "C0abc",
            **id_fields,
        },
    }


def test_key_is_the_id_tuple_and_falls_back_to_a_content_hash():
    assert SPEC.event_id(activity()) == "2025-06-02T09:00:00.123Z|-42|login|C0abc"
    assert SPEC.event_id(activity(uniqueQualifier=None)).startswith("sha256:")
    assert SPEC.event_time(activity()) == datetime(2025, 6, 2, 9, 0, 0, 123000, tzinfo=timezone.utc)


def test_a_bad_id_time_is_a_clear_error(api, tmp_path):
    body = {"kind": "admin#reports#activities", "items": [activity(), activity(time="2025-06-02T09:00:00.123")]}
    api.admin.add_faults({"kind": "status", "status": 200, "body": json.dumps(body)})
    with pytest.raises(
        MalformedResponseError, match=r"event 2: 'id.time' is '2025-06-02T09:00:00.123', expected an RFC 3339"
    ):
        run_collector(SPEC, config(), "login", static_client(api), WINDOW, tmp_path)


def service_account_connection(monkeypatch, api, subject: str) -> Connection:
    """A google_cloud_platform connection holding a (throw-away) service-account key whose token_uri is the sandbox."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    keyfile = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "collector@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": api.url + "/token",
    }
    extra = {"keyfile_dict": json.dumps(keyfile), "subject": subject}
    monkeypatch.setenv(
        "AIRFLOW_CONN_GWS_SA", json.dumps({"conn_type": "google_cloud_platform", "host": api.url, "extra": extra})
    )
    return Connection("gws_sa", host=api.url, extra_dejson=extra)


def test_production_path_delegates_to_the_subject_with_the_reports_scope(monkeypatch, api, tmp_path):
    connection = service_account_connection(monkeypatch, api, "secops-admin@example.com")
    client = api_client(SPEC, connection)
    credentials = client.session.auth.credentials
    assert credentials.scopes == [SCOPE] and credentials._subject == "secops-admin@example.com"

    _, events = run_collector(SPEC, config(), "token", client, WINDOW, tmp_path)
    assert events == truth("token")
    (claims,) = next(app for app in api._apis if hasattr(app, "issued")).issued()
    assert claims["sub"] == "secops-admin@example.com" and claims["scope"] == SCOPE
    assert claims["iss"] == "collector@p.iam.gserviceaccount.com"
    assert all(
        r["auth_ok"] and r["auth_scheme"] == "Bearer" for r in api.requests.entries() if r["path"].startswith(PATH)
    )


def test_refused_delegation_fails_at_once_naming_the_connection(monkeypatch, api, tmp_path):
    client = api_client(SPEC, service_account_connection(monkeypatch, api, "not-an-email"))
    with pytest.raises(AuthError) as raised:
        run_collector(SPEC, config(), "login", client, WINDOW, tmp_path)
    assert "unauthorized_client" in str(raised.value) and "'gws_sa'" in str(raised.value) and SCOPE in str(raised.value)
    assert not [r for r in api.requests.entries() if r["path"].startswith(PATH)]


def test_the_default_applications_are_the_security_relevant_set():
    assert config().stream_names() == (
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


def test_all_is_every_application_the_api_has():
    names = config(applications="all").stream_names()
    assert len(names) == 21 and {"calendar", "meet", "keep", "groups", "admin"} <= set(names)

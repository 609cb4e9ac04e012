"""The Entra ID source's client against the sandbox: each stream's exact window from a ge/le $filter, the
@odata.nextLink followed verbatim (also past an empty page and a lower-cased path), the licence refusal
named as such, and the OAuth client-credentials token: fetched once, refreshed before expiry, its endpoint
checked, a refusal never retried and never showing the secret."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, ConfigError
from auditlogs.sources import SPECS
from auditlogs.sources.auth import TOKEN_REFRESH_MARGIN, ClientCredentialsAuth
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import SandboxServer, ground_truth
from sandbox import entra_id as fake

CLIENT_ID, SECRET = "5e2a7b10-app-entra", "entra-client-secret-Qp4~value"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SOURCE = {"events_per_hour": 900, "burst_fraction": 0.3, "token": f"{CLIENT_ID}:{SECRET}", "rate_limit_per_minute": 0}
SCENARIO = {"seed": 23, "sources": {"entra_id": SOURCE}}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 250000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 250000, tzinfo=UTC))
PATHS = {"directory_audits": "/v1.0/auditLogs/directoryAudits", "sign_ins": "/v1.0/auditLogs/signIns"}
TOKEN_PATH = f"/{fake.TENANT}/oauth2/v2.0/token"

server, api = sandbox_fixtures(SCENARIO, NOW)


def expected(stream: str, scenario=SCENARIO) -> list[str]:
    log = {"directory_audits": "directoryAudits", "sign_ins": "signIns"}[stream]
    time_of = SPECS["entra_id"].event_time
    second = timedelta(seconds=1)
    events = ground_truth("entra_id", WINDOW.start - second, WINDOW.end + second, scenario, now=NOW)
    return [e["id"] for e in events if fake.log_of_event(e) == log and WINDOW.contains(time_of(e))]


def connection(url: str, login: str = CLIENT_ID, secret: str = SECRET, **extra) -> Connection:
    return Connection(
        "entra_audit", url, secret, login=login, extra_dejson={"tenant_id": fake.TENANT, "authority": url, **extra}
    )


def run(url, tmp_path, stream: str, **kwargs):
    return collect_window("entra_id", {"page_size": 100}, stream, connection(url, **kwargs), WINDOW, tmp_path)


@pytest.mark.parametrize("stream", ["directory_audits", "sign_ins"])
def test_each_stream_holds_its_exact_window_following_next_links_verbatim_past_an_empty_page(api, tmp_path, stream):
    collected = run(api.url, tmp_path, stream)
    ids = [e["id"] for e in collected.events]
    assert ids == expected(stream) and len(ids) > 300  # newest first, as the truth
    sent = api.requests.entries()
    assert [r["path"] for r in sent[:1]] == [TOKEN_PATH] and TOKEN_PATH not in [r["path"] for r in sent[1:]]
    pages = sent[1:]
    field = "activityDateTime" if stream == "directory_audits" else "createdDateTime"
    first = {
        "$filter": [f"{field} ge 2026-03-01T04:00:00.250Z and {field} le 2026-03-01T05:00:00.250Z"],
        "$top": ["100"],
    }
    if stream == "directory_audits":
        first["$orderby"] = ["activityDateTime desc"]
    assert pages[0]["path"] == PATHS[stream] and pages[0]["query"] == first
    assert len(pages) == collected.result.pages > 4
    for page in pages[1:]:  # the next link as given: only its $skiptoken, and sign-ins' lower-cased path
        assert list(page["query"]) == ["$skiptoken"] and page["auth_ok"]
        assert page["path"] == (PATHS[stream] if stream == "directory_audits" else "/v1.0/auditlogs/signins")


def test_a_tenant_without_the_premium_licence_fails_at_once_naming_the_licence(tmp_path):
    free = {"seed": 23, "sources": {"entra_id": {**SOURCE, "token": f"free-tenant-app:{SECRET}"}}}
    with SandboxServer(free) as srv:
        srv.clock.set(NOW.timestamp())
        with pytest.raises(AuthError, match="no Microsoft Entra ID P1 or P2 licence") as raised:
            run(srv.url, tmp_path, "sign_ins", login="free-tenant-app")
        assert "remove 'sign_ins'" in str(raised.value) and "not retried" in str(raised.value)
        assert [r["path"] for r in srv.requests.entries()] == [TOKEN_PATH, PATHS["sign_ins"]]  # never retried
        audits = run(srv.url, tmp_path / "audits", "directory_audits", login="free-tenant-app")
        assert [e["id"] for e in audits.events] == expected("directory_audits", free)


def test_a_refused_secret_is_one_token_request_an_auth_error_naming_the_connection_and_no_secret(api, tmp_path):
    wrong = "entra-wrong-secret-Xx9~value"
    with pytest.raises(AuthError, match="token endpoint of Airflow connection 'entra_audit'") as raised:
        run(api.url, tmp_path, "sign_ins", secret=wrong)
    assert wrong not in str(raised.value) and "HTTP status 401" in str(raised.value)
    assert [r["path"] for r in api.requests.entries()] == [TOKEN_PATH]


def test_the_token_is_reused_until_shortly_before_it_expires_then_exchanged_again(api):
    import requests

    now = [0.0]
    auth = ClientCredentialsAuth(
        f"{api.url}{TOKEN_PATH}",
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
        "entra_audit",
        (SECRET,),
        api.url,
        clock=lambda: now[0],
    )
    session = requests.Session()
    session.auth = auth
    params = {"$filter": "createdDateTime ge 2026-03-01T04:00:00Z and createdDateTime le 2026-03-01T04:01:00Z"}
    for moment in (0.0, 3599 - TOKEN_REFRESH_MARGIN - 1):
        now[0] = moment
        assert session.get(api.url + PATHS["sign_ins"], params=params).status_code == 200
    assert auth.exchanges == 1
    now[0] = 3599 - TOKEN_REFRESH_MARGIN
    assert session.get(api.url + PATHS["sign_ins"], params=params).status_code == 200
    assert auth.exchanges == 2
    assert [r["path"] for r in api.requests.entries()].count(TOKEN_PATH) == 2


@pytest.mark.parametrize(
    "authority", ["http://login.example.com", "https://user:pw@login.example.com", "ftp://login.example.com"]
)
def test_a_token_endpoint_that_could_leak_the_secret_is_a_config_error(api, tmp_path, authority):
    with pytest.raises(ConfigError, match="connection 'entra_audit' names the token endpoint"):
        collect_window("entra_id", {}, "sign_ins", connection(api.url, authority=authority), WINDOW, tmp_path)
    assert api.requests.entries() == []

"""Hostile-API tier for the OAuth client-credentials sources (Microsoft 365, Entra ID): a token endpoint
that echoes the client secret, a redirecting token endpoint, an O365 content URI and a Graph nextLink on
another host. The secret and the token never reach another host, and no error shows the secret."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs

import pytest

from auditlogs.errors import AuthError, PaginationError, TransientError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID, SECRET = "hostile-app-id", "hostile-client-secret-Kk2~value"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJBY3Rpdml0eUZlZWQuUmVhZCJdfQ.c2ln"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
JSON = {"Content-Type": "application/json"}
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"


def token_reply() -> Reply:
    answer = {"token_type": "Bearer", "expires_in": "3599", "access_token": ACCESS_TOKEN}
    return Reply(200, json.dumps(answer).encode(), JSON)


def run(url: str, source_type: str, stream: str, tmp_path, options: dict | None = None):
    connection = Connection(
        "ms_hostile", url, SECRET, login=CLIENT_ID, extra_dejson={"tenant_id": TENANT, "authority": url}
    )
    return collect_window(source_type, options or {}, stream, connection, WINDOW, tmp_path)


@pytest.mark.parametrize("status", [400, 401])
def test_a_token_endpoint_echoing_the_secret_fails_once_and_the_error_never_shows_it(tmp_path, status):
    def script(request: HostileRequest) -> Reply:
        form = parse_qs(request.body.decode())
        echoed = {
            "error": "invalid_client",
            "trace": form,
            "error_description": f"AADSTS7000215: bad secret {form['client_secret'][0]}",
        }
        return Reply(status, json.dumps(echoed).encode(), JSON)

    with HostileServer(script) as api:
        with pytest.raises(AuthError) as raised:
            run(api.url, "entra_id", "sign_ins", tmp_path)
        assert SECRET not in str(raised.value) and "connection 'ms_hostile'" in str(raised.value)
        assert [(r.method, r.path) for r in api.requests] == [("POST", TOKEN_PATH)]  # never retried
        assert SECRET not in str(api.requests[0].query) and SECRET in api.requests[0].body.decode()


def test_a_redirecting_token_endpoint_is_not_followed_with_the_secret(tmp_path):
    with HostileServer(lambda request: Reply(200, b"{}", JSON)) as elsewhere:
        with HostileServer(lambda request: Reply(307, b"", {"Location": elsewhere.url + "/steal"})) as api:
            with pytest.raises(TransientError, match="failed to issue an access token. HTTP status 307"):
                run(api.url, "entra_id", "sign_ins", tmp_path)
        assert elsewhere.requests == []


def test_an_o365_content_uri_on_another_host_is_refused_before_the_token_goes_there(tmp_path):
    with HostileServer(lambda request: Reply(200, b"[]", JSON)) as elsewhere:

        def script(request: HostileRequest) -> Reply:
            if request.path == TOKEN_PATH:
                return token_reply()
            if request.path.endswith("subscriptions/list"):
                return Reply(200, json.dumps([{"contentType": "Audit.Exchange", "status": "enabled"}]).encode(), JSON)
            blob = {
                "contentType": "Audit.Exchange",
                "contentId": "1$2$3",
                "contentUri": f"{elsewhere.url}/audit/1$2$3",
                "contentCreated": "2026-03-01T04:05:00.000Z",
                "contentExpiration": "2026-03-08T04:05:00.000Z",
            }
            return Reply(200, json.dumps([blob]).encode(), JSON)

        with HostileServer(script) as api:
            with pytest.raises(PaginationError, match="another host or scheme") as raised:
                run(api.url, "microsoft365", "audit_exchange", tmp_path, {"content_types": ["Audit.Exchange"]})
            assert not raised.value.retryable
            assert all(r.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}" for r in api.requests[1:])
        assert elsewhere.requests == []


def test_a_graph_next_link_on_another_host_is_refused_before_the_token_goes_there(tmp_path):
    with HostileServer(lambda request: Reply(200, b'{"value": []}', JSON)) as elsewhere:

        def script(request: HostileRequest) -> Reply:
            if request.path == TOKEN_PATH:
                return token_reply()
            page = {"value": [], "@odata.nextLink": f"{elsewhere.url}/v1.0/auditLogs/signIns?$skiptoken=abc"}
            return Reply(200, json.dumps(page).encode(), JSON)

        with HostileServer(script) as api:
            with pytest.raises(PaginationError, match="another host or scheme"):
                run(api.url, "entra_id", "sign_ins", tmp_path)
            assert [r.path for r in api.requests] == [TOKEN_PATH, "/v1.0/auditLogs/signIns"]
        assert elsewhere.requests == []

"""Hostile-API tier for Zoom: a token endpoint that echoes the client secret, a token endpoint URL on a
plain-http foreign host, and a report page whose next_page_token repeats (a runaway chain)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import AuthError, ConfigError, PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

CLIENT_ID, SECRET = "zoomHostileClient", "zoom-hostile-secret-Hh5~value"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
JSON = {"Content-Type": "application/json"}


def run(url: str, tmp_path, token_url: str | None = None):
    connection = Connection(
        "zoom_hostile",
        url,
        SECRET,
        login=CLIENT_ID,
        extra_dejson={"account_id": "acc1", "token_url": token_url or f"{url}/oauth/token"},
    )
    return collect_window("zoom", {"streams": ["activities"]}, "activities", connection, WINDOW, tmp_path)


def test_a_token_endpoint_echoing_the_basic_secret_fails_once_without_showing_it(tmp_path):
    def script(request: HostileRequest) -> Reply:
        pair = base64.b64decode(request.headers["authorization"].split()[1]).decode()
        return Reply(401, json.dumps({"reason": "Invalid client_id or client_secret", "got": pair}).encode(), JSON)

    with HostileServer(script) as api:
        with pytest.raises(AuthError, match="connection 'zoom_hostile'") as raised:
            run(api.url, tmp_path)
        assert SECRET not in str(raised.value)
        assert [(r.method, r.path) for r in api.requests] == [("POST", "/oauth/token")]
        assert SECRET not in str(api.requests[0].query) and SECRET not in api.requests[0].body.decode()


def test_a_plain_http_token_endpoint_on_another_host_gets_no_secret(tmp_path):
    with HostileServer(lambda request: Reply(200, b"{}", JSON)) as elsewhere:
        with HostileServer(lambda request: Reply(200, b"{}", JSON)) as api:
            with pytest.raises(ConfigError, match="not an https URL"):
                run(api.url, tmp_path, token_url=f"{elsewhere.url}/oauth/token")
            assert api.requests == []
        assert elsewhere.requests == []


def test_a_next_page_token_that_repeats_stops_the_task_instead_of_looping(tmp_path):
    def script(request: HostileRequest) -> Reply:
        if request.path == "/oauth/token":
            return Reply(200, b'{"access_token": "zoom-access-token-abcdef", "expires_in": 3599}', JSON)
        page = {
            "next_page_token": "same-token",
            "activity_logs": [{"email": "a@example.com", "time": "2026-03-01T04:10:00Z", "type": "Sign in"}],
        }
        return Reply(200, json.dumps(page).encode(), JSON)

    with HostileServer(script) as api:
        with pytest.raises(PaginationError, match="same next-page position twice"):
            run(api.url, tmp_path)
        assert len(api.requests) == 3  # the token, the first page, the page after it; then it stops

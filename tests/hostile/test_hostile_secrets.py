"""A hostile API echoing the credential back in every form it can take: plain, after a pretty-printed page
of whitespace, as the Basic pair, JSON-escaped, URL-encoded; and a credential saved with a newline. Driven
through the operator's client (`build_client`) and the real collector; each test reads every output a user
can see (the raised error, the log records) for every form of the secret."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from auditlogs.errors import AuthError, RequestRejectedError, TransientError
from harness import Connection, collect_window
from sandbox.hostile import HostileServer, Reply

pytestmark = pytest.mark.hostile

#: No token shape errors.scrub knows: only the literal-secret scrubbing can hide it.
TOKEN = "canary0Hq7zSECRETvalue/n9"
SID, SECRET = "ACsid0000hostile", "twilio-secret-canary-4242"
UTC = timezone.utc
START = datetime(2026, 3, 1, 3, tzinfo=UTC)
WINDOW = (START, START + timedelta(hours=1))
JSON_HEADERS = {"Content-Type": "application/json"}


def json_escaped(secret: str) -> str:
    """Every character as \\uXXXX, as a JSON encoder that escapes everything writes it."""
    return "".join(f"\\u{ord(c):04x}" for c in secret)


def forms(secret: str) -> list[str]:
    """What a reader could recognise the secret by: itself, most of it, its encodings."""
    return [
        secret,
        secret[: len(secret) * 2 // 3],
        secret[-len(secret) * 2 // 3 :],
        json_escaped(secret),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        secret.replace("/", "\\/"),
    ]


def collect(source_type: str, connection: Connection, caplog, staging, **options):
    from auditlogs.window import Window

    caplog.set_level(logging.DEBUG)
    stream = "audit" if source_type == "slack" else "events"
    return collect_window(source_type, {"page_attempts": 1, **options}, stream, connection, Window(*WINDOW), staging)


def assert_nowhere(secrets: list[str], *outputs: str) -> None:
    for output in outputs:
        for secret in secrets:
            for form in forms(secret):
                assert form not in output, f"{form!r} readable in {output[:400]!r}"


def echo_401(body: str) -> Reply:
    return Reply(401, body=body.encode(), headers=JSON_HEADERS)


ECHOES = {
    "plain": lambda: json.dumps({"ok": False, "error": "invalid_auth", "token": TOKEN}),
    "after_1170_bytes_of_whitespace": lambda: '{"ok": false,' + " " * 1170 + f'"token": "{TOKEN}"}}',
    "json_escaped": lambda: '{"ok": false, "token": "' + json_escaped(TOKEN) + '"}',
    "json_escaped_slashes_only": lambda: '{"ok": false, "token": "' + TOKEN.replace("/", "\\/") + '"}',
    "url_encoded": lambda: json.dumps({"ok": False, "next": f"/login?token={quote(TOKEN, safe='')}"}),
    "authorization_header": lambda: json.dumps({"ok": False, "you_sent": f"Authorization: Bearer {TOKEN}"}),
}


@pytest.mark.parametrize("echo", ECHOES, ids=list(ECHOES))
def test_an_error_body_echoing_the_token_shows_no_form_of_it(echo, caplog, tmp_path):
    with HostileServer(lambda request: echo_401(ECHOES[echo]())) as api:
        with pytest.raises(AuthError) as raised:
            collect("slack", Connection("slack_audit", host=api.url, password=TOKEN), caplog, tmp_path)
    message = str(raised.value)
    assert message.startswith("test slack: the API refused the credential. HTTP status 401. response body: {")
    assert "***" in message and "What to do: fix the token in Airflow connection 'slack_audit'" in message
    assert_nowhere([TOKEN], message, caplog.text)


def test_twilio_echoing_the_basic_credential_shows_neither_it_nor_its_parts(caplog, tmp_path):
    basic = base64.b64encode(f"{SID}:{SECRET}".encode()).decode()
    body = json.dumps(
        {
            "code": 20003,
            "message": "Authenticate",
            "received": f"Basic {basic}",
            "raw": basic,
            "escaped": json_escaped(SECRET),
        }
    )
    with HostileServer(lambda request: echo_401(body)) as api:
        with pytest.raises(AuthError) as raised:
            collect("twilio", Connection("twilio_monitor", host=api.url, login=SID, password=SECRET), caplog, tmp_path)
        assert api.requests[0].headers["authorization"] == f"Basic {basic}"
    assert "20003" in str(raised.value)
    assert_nowhere([basic, SECRET], str(raised.value), caplog.text)


def test_a_token_saved_with_a_newline_is_sent_trimmed_and_the_log_says_so_without_it(caplog, tmp_path):
    page = json.dumps(
        {
            "ok": True,
            "entries": [{"id": "e1", "date_create": START.timestamp() + 60}],
            "response_metadata": {"next_cursor": ""},
        }
    )
    with HostileServer(lambda request: Reply(200, body=page.encode(), headers=JSON_HEADERS)) as api:
        collected = collect(
            "slack", Connection("slack_audit", host=api.url, password=f"\n{TOKEN}\n"), caplog, staging=tmp_path
        )
        assert [r.headers["authorization"] for r in api.requests] == [f"Bearer {TOKEN}"]
    assert [e["id"] for e in collected.events] == ["e1"]
    assert (
        "test slack: the password of Airflow connection 'slack_audit' has surrounding whitespace or a newline; "
        "using it trimmed"
    ) in caplog.text
    assert_nowhere([TOKEN], caplog.text)


def test_a_token_that_no_header_can_carry_fails_at_once_with_our_error_and_without_the_token(caplog, tmp_path):
    with HostileServer(lambda request: Reply(500)) as api:
        with pytest.raises(RequestRejectedError) as raised:
            collect(
                "slack",
                Connection("slack_audit", host=api.url, password=f"{TOKEN[:12]}\n{TOKEN[12:]}"),
                caplog,
                tmp_path,
            )
        assert api.requests == []
    message = str(raised.value)
    assert message.startswith("test slack: the HTTP library refused to send the request (InvalidHeader: ")
    assert "What to do: check the credential and host in Airflow connection 'slack_audit'" in message
    assert not raised.value.retryable and raised.value.__cause__ is None and raised.value.__context__ is None
    assert_nowhere([TOKEN[:12], TOKEN[12:]], message, caplog.text)


def test_a_retried_failure_echoing_the_token_logs_no_form_of_it(caplog, tmp_path):
    body = json.dumps({"error": "upstream", "debug": {"auth": f"Bearer {TOKEN}", "esc": json_escaped(TOKEN)}})
    with HostileServer(lambda request: Reply(503, body=body.encode(), headers=JSON_HEADERS)) as api:
        with pytest.raises(TransientError) as raised:
            collect("slack", Connection("slack_audit", host=api.url, password=TOKEN), caplog, tmp_path, page_attempts=3)
        assert len(api.requests) == 3
    assert "gave up on this page after 3 attempts" in str(raised.value)
    assert caplog.text.count("retrying the same page") == 2
    assert_nowhere([TOKEN], str(raised.value), caplog.text)


def test_a_google_access_token_minted_during_the_run_is_scrubbed_too():
    """Service-account tokens are minted at the first request, after the client was built: registered then."""
    import requests

    from auditlogs.errors import scrub
    from auditlogs.sources.auth import GoogleCredentialsAuth

    minted = "google-minted-canary-7Qm2x9"

    class Credentials:
        valid, token, scopes = False, None, ["https://www.googleapis.com/auth/admin.reports.audit.readonly"]

        def refresh(self, request):
            self.valid, self.token = True, minted

        def apply(self, headers):
            headers["Authorization"] = f"Bearer {self.token}"

    prepared = requests.Request("GET", "http://127.0.0.1/admin/reports").prepare()
    GoogleCredentialsAuth(Credentials(), "google_reports")(prepared)
    assert prepared.headers["Authorization"] == f"Bearer {minted}"
    assert_nowhere([minted], scrub(f'{{"echo": "{minted}", "escaped": "{json_escaped(minted)}"}}'))

"""Duo, Zendesk and Cloudflare against hostile APIs (`sandbox.hostile`): a Duo second that holds a whole
administrator page, Duo's `stat: FAIL` on an HTTP 200, a Zendesk plan without the API, a "more" flag without
a cursor, and a Cloudflare cursor in neither documented place."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, MalformedResponseError, PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
START = int(WINDOW.start.timestamp())
IKEY, SKEY = "DIHOSTILEIKEY0000001", "hostileDuoSecretKey0123456789abcdefghijk"
JSON = {"Content-Type": "application/json"}


def reply(body: dict, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status, body=json.dumps(body).encode(), headers={**JSON, **(headers or {})})


def duo(url: str, tmp_path, stream: str = "administrator"):
    connection = Connection("duo_admin", url, SKEY, login=IKEY)
    return collect_window("duo", {"streams": [stream]}, stream, connection, WINDOW, tmp_path)


def test_a_duo_second_holding_a_whole_administrator_page_fails_instead_of_skipping_it(tmp_path):
    rows = [
        {"action": "user_update", "timestamp": START + 60, "object": f"u{n}", "username": "admin"} for n in range(1000)
    ]
    with HostileServer(lambda request: reply({"stat": "OK", "response": rows})) as api:
        with pytest.raises(PaginationError, match="all in the second") as failure:
            duo(api.url, tmp_path)
    assert not failure.value.retryable and str(failure.value).startswith("test duo: ")  # where it happened
    assert [r.query["mintime"] for r in api.requests] == [[str(START)], [str(START + 60)]]


def test_a_duo_page_past_the_window_ends_the_administrator_log_without_asking_further(tmp_path):
    rows = [{"action": "admin_login", "timestamp": START + n * 4, "username": "a"} for n in range(1000)]  # up to 04:66
    with HostileServer(lambda request: reply({"stat": "OK", "response": rows})) as api:
        collected = duo(api.url, tmp_path)
    assert len(api.requests) == 1 and collected.result.written == 900  # [04:00, 05:00) holds 900 of them


def test_duo_stat_fail_on_http_200_is_a_broken_page_not_an_empty_one(tmp_path):
    body = {"stat": "FAIL", "code": 40002, "message": "Invalid request parameters"}
    with HostileServer(lambda request: reply(body)) as api:
        with pytest.raises(MalformedResponseError, match="stat is 'FAIL'"):
            duo(api.url, tmp_path, "telephony")
    assert {r.headers["authorization"].split()[0] for r in api.requests} == {"Basic"}
    assert all(r.headers["date"] for r in api.requests)
    assert not [r for r in api.requests if SKEY in repr(r)]  # only the HMAC travels, never the secret key


def zendesk(url: str, tmp_path):
    connection = Connection("zendesk_api", url, "zdTok0123456789", login="a@b.example/token")
    return collect_window("zendesk", {}, "audit_logs", connection, WINDOW, tmp_path)


@pytest.mark.parametrize("status", [403, 404])
def test_a_zendesk_plan_without_audit_logs_fails_saying_so_not_as_an_empty_interval(tmp_path, status):
    body = {"error": "Forbidden", "description": "You do not have access to this page."}
    with HostileServer(lambda request: reply(body, status)) as api:
        with pytest.raises(AuthError, match="Enterprise only") as failure:
            zendesk(api.url, tmp_path)
    assert not failure.value.retryable and len(api.requests) == 1


def test_zendesk_saying_there_is_more_without_a_cursor_fails_the_page(tmp_path):
    body = {"audit_logs": [{"id": 1, "created_at": "2026-03-01T04:10:00Z"}], "meta": {"has_more": True}, "links": {}}
    with HostileServer(lambda request: reply(body)) as api:
        with pytest.raises(MalformedResponseError, match="has_more=true but has no 'meta.after_cursor'"):
            zendesk(api.url, tmp_path)


def _cloudflare_events(count: int, step: timedelta) -> list[dict]:
    first = WINDOW.start + timedelta(seconds=1)
    return [
        {
            "id": f"e{n:05d}",
            "action": {"time": (first + n * step).isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        }
        for n in range(count)
    ]


def _cursor_elsewhere(events: list[dict], limit_cap: int = 1000):
    """An API that pages by `since` correctly but puts its cursor where neither documented shape does."""

    def script(request: HostileRequest) -> Reply:
        since = datetime.fromisoformat(request.query["since"][0].replace("Z", "+00:00"))
        newer = [e for e in events if datetime.fromisoformat(e["action"]["time"].replace("Z", "+00:00")) > since]
        page = newer[: min(int(request.query["limit"][0]), limit_cap)]
        info = {"count": len(page), "next": "opaque-cursor"} if len(newer) > len(page) else {"count": len(page)}
        return reply({"success": True, "errors": [], "messages": [], "result": page, "result_info": info})

    return script


def cloudflare(url: str, tmp_path):
    return collect_window(
        "cloudflare",
        {"account_id": "acc1", "limit": 100},
        "audit_logs",
        Connection("cloudflare_api", url, "cfHostileToken0123456789"),
        WINDOW,
        tmp_path,
    )


def test_a_cloudflare_cursor_in_neither_documented_place_never_stops_the_window_after_page_1(tmp_path):
    events = _cloudflare_events(350, timedelta(seconds=7))
    with HostileServer(_cursor_elsewhere(events)) as api:
        collected = cloudflare(api.url, tmp_path)
    assert [e["id"] for e in collected.events] == [e["id"] for e in events]
    sinces = [r.query["since"][0] for r in api.requests]
    assert len(sinces) == 4 and sinces == sorted(sinces) and len(set(sinces)) == 4  # each from the last page's end
    assert all("cursor" not in r.query for r in api.requests)


def test_more_than_a_page_of_cloudflare_events_in_one_millisecond_without_a_cursor_fails_instead_of_looping(tmp_path):
    events = _cloudflare_events(250, timedelta(0))
    with HostileServer(_cursor_elsewhere(events)) as api:
        with pytest.raises(PaginationError, match="same next-page position twice"):
            cloudflare(api.url, tmp_path)
    assert len(api.requests) == 2

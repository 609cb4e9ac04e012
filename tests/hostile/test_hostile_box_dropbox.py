"""Hostile-API tier for Box and Dropbox: a Box position that went through a float, a Box position that
repeats while events keep coming, a Box chunk shorter than the limit that is not the end; a Dropbox API
that resets every cursor, one that refuses a cursor (`bad_cursor`), one that answers 400 in plain text, and
one that says `has_more` forever with empty pages. Each ends as the user should see it, without a secret."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.client.pagination import MAX_PAGES_WITHOUT_PROGRESS, MAX_RESTARTS
from auditlogs.errors import MalformedResponseError, PaginationError, RequestRejectedError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

BOX_ID, BOX_SECRET = "boxHostileClient", "box-hostile-secret-Hb6~value"
DBX_KEY, DBX_SECRET, REFRESH = "dbxHostileKey", "dropbox-hostile-secret-Hd7~value", "dropbox-hostile-refresh-Hr8"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
JSON = {"Content-Type": "application/json"}
TOKEN = Reply(200, b'{"access_token": "hostile-access-token-abcdef", "expires_in": 3600, "token_type": "bearer"}', JSON)


def box_event(n: int) -> dict:
    """An event inside WINDOW, its time in Box's Pacific offset (20:1n on the day before is 04:1n UTC)."""
    return {
        "type": "event",
        "event_id": f"ev{n:038d}",
        "event_type": "LOGIN",
        "created_at": f"2026-02-28T20:1{n % 10}:00-08:00",
    }


def run_box(url: str, tmp_path):
    connection = Connection("box_hostile", url, BOX_SECRET, login=BOX_ID, extra_dejson={"box_subject_id": "42"})
    return collect_window("box", {}, "admin_logs", connection, WINDOW, tmp_path)


def run_dropbox(url: str, tmp_path):
    connection = Connection("dropbox_hostile", url, DBX_SECRET, login=DBX_KEY, extra_dejson={"refresh_token": REFRESH})
    return collect_window("dropbox", {}, "team_events", connection, WINDOW, tmp_path)


def box_script(pages: list[bytes]):
    def script(request: HostileRequest) -> Reply:
        if request.path == "/oauth2/token":
            return TOKEN
        return Reply(200, pages[min(request.number - 2, len(pages) - 1)], JSON)

    return script


def test_a_box_position_that_went_through_a_float_fails_the_page_instead_of_skipping_events(tmp_path):
    page = (
        b'{"chunk_size": 1, "next_stream_position": 1.1529229762522909e18, "entries": [%s]}'
        % json.dumps(box_event(1)).encode()
    )
    with HostileServer(box_script([page])) as api:
        with pytest.raises(MalformedResponseError, match="not a string or an exact integer"):
            run_box(api.url, tmp_path)
        assert [r.path for r in api.requests] == ["/oauth2/token", "/2.0/events"]


def test_a_box_chunk_shorter_than_the_limit_is_not_the_end_only_an_empty_one_is(tmp_path):
    pages = [
        b'{"chunk_size": 1, "next_stream_position": 1152922976252290886, "entries": [%s]}'
        % json.dumps(box_event(1)).encode(),
        b'{"chunk_size": 1, "next_stream_position": "1152922976252290887", "entries": [%s]}'
        % json.dumps(box_event(2)).encode(),
        b'{"chunk_size": 0, "next_stream_position": "1152922976252290887", "entries": []}',
    ]
    with HostileServer(box_script(pages)) as api:
        got = run_box(api.url, tmp_path)
        assert [e["event_id"] for e in got.events] == [box_event(1)["event_id"], box_event(2)["event_id"]]
        assert [r.query.get("stream_position") for r in api.requests[1:]] == [
            None,
            ["1152922976252290886"],
            ["1152922976252290887"],
        ]
        token_form = api.requests[0].body.decode()
        assert "box_subject_type=enterprise" in token_form and "box_subject_id=42" in token_form


def test_a_box_position_that_repeats_while_events_keep_coming_stops_the_task(tmp_path):
    page = b'{"chunk_size": 1, "next_stream_position": "77", "entries": [%s]}'
    pages = [page % json.dumps(box_event(n)).encode() for n in range(1, 5)]
    with HostileServer(box_script(pages)) as api:
        with pytest.raises(PaginationError, match="same next-page position twice"):
            run_box(api.url, tmp_path)
        assert len(api.requests) == 3  # the token, the first page, the page after it; then it stops


def dropbox_event(n: int) -> dict:
    return {
        "timestamp": f"2026-03-01T04:1{n % 10}:0{n % 7}Z",
        "event_category": {".tag": "logins"},
        "event_type": {".tag": "login_fail"},
        "details": {".tag": "login_fail_details", "n": n},
    }


def dropbox_script(continuation: Reply | None, more: bool = True, events: bool = True):
    def script(request: HostileRequest) -> Reply:
        if request.path == "/oauth2/token":
            assert REFRESH in request.body.decode()
            return TOKEN
        if request.path.endswith("/continue") and continuation is not None:
            return continuation
        page = {
            "events": [dropbox_event(request.number)] if events else [],
            "cursor": f"c{request.number}",
            "has_more": more,
        }
        return Reply(200, json.dumps(page).encode(), JSON)

    return script


def test_a_dropbox_api_that_resets_every_cursor_is_given_up_after_a_bounded_number_of_restarts(tmp_path):
    reset = Reply(
        409, b'{"error_summary": "reset/..", "error": {".tag": "reset", "reset": "2026-03-01T04:10:00Z"}}', JSON
    )
    with HostileServer(dropbox_script(reset)) as api:
        with pytest.raises(
            PaginationError, match=f"invalidated the window's cursor {MAX_RESTARTS + 1} times"
        ) as raised:
            run_dropbox(api.url, tmp_path)
        assert DBX_SECRET not in str(raised.value) and REFRESH not in str(raised.value)
        paths = [r.path.rsplit("/", 1)[-1] for r in api.requests]
        assert paths == ["token"] + ["get_events", "continue"] * (MAX_RESTARTS + 1)
        assert all(
            json.loads(r.body) == {"cursor": f"c{r.number - 1}"} for r in api.requests if r.path.endswith("/continue")
        )


def test_a_refused_dropbox_cursor_is_not_taken_for_a_reset(tmp_path):
    bad = Reply(409, b'{"error_summary": "bad_cursor/..", "error": {".tag": "bad_cursor"}}', JSON)
    with HostileServer(dropbox_script(bad)) as api:
        with pytest.raises(RequestRejectedError, match="bad_cursor"):
            run_dropbox(api.url, tmp_path)
        assert len(api.requests) == 3


def test_a_dropbox_400_in_plain_text_is_the_rejected_request_with_its_text(tmp_path):
    text = Reply(
        400,
        b'Error in call to API function "team_log/get_events/continue": bad cursor format',
        {"Content-Type": "text/plain; charset=utf-8"},
    )
    with HostileServer(dropbox_script(text)) as api:
        with pytest.raises(RequestRejectedError, match="HTTP status 400.*bad cursor format"):
            run_dropbox(api.url, tmp_path)


def test_dropbox_empty_pages_that_say_has_more_forever_stop_the_task_instead_of_paging_without_progress(tmp_path):
    with HostileServer(dropbox_script(None, more=True, events=False)) as api:
        with pytest.raises(PaginationError, match="brought no new event"):
            run_dropbox(api.url, tmp_path)
        assert len(api.requests) == 1 + MAX_PAGES_WITHOUT_PROGRESS

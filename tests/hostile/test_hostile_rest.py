"""A `type: rest` source against a hostile API (`sandbox.hostile`): the declared paging is guarded like the
built-in sources' (a cursor repeated, a next URL on another host), and the declared header carries the key."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import MalformedEventError, PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

KEY = "hostile-rest-key-0123456789"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
DECLARED = {
    "stream": "audit",
    "path": "v1/audit",
    "auth": {"scheme": "header", "header": "X-Api-Key"},
    "window": {"start_param": "from", "end_param": "to", "format": "unix_millis", "end": "inclusive"},
    "events": "data.items",
    "id": ["actor", "seq"],
    "time": {"field": "at", "format": "unix_millis"},
    "order": "oldest_first",
}


def page(items: list[dict], **paging) -> Reply:
    return Reply(
        200,
        body=json.dumps({"data": {"items": items}, **paging}).encode(),
        headers={"Content-Type": "application/json"},
    )


def collect(url: str, tmp_path, **options):
    return collect_window("rest", {**DECLARED, **options}, "audit", Connection("rest_api", url, KEY), WINDOW, tmp_path)


def item(seq: int) -> dict:
    return {"actor": "ana", "seq": seq, "at": int(WINDOW.start.timestamp() * 1000) + seq}


def test_a_repeated_cursor_stops_instead_of_looping_and_the_key_goes_only_in_its_header(tmp_path):
    with HostileServer(lambda request: page([item(request.number)], next="same")) as api:
        with pytest.raises(PaginationError, match="same next-page position twice"):
            collect(api.url, tmp_path, paging={"strategy": "body_cursor", "cursor": "next", "param": "page"})
    first = api.requests[0]
    assert first.query == {"from": ["1772337600000"], "to": ["1772341199999"]}  # the inclusive end: 1 ms before
    assert {r.headers["x-api-key"] for r in api.requests} == {KEY} and all(KEY not in r.path for r in api.requests)


def test_a_next_url_on_another_host_is_refused(tmp_path):
    with HostileServer(lambda request: page([])) as elsewhere:
        with HostileServer(lambda request: page([item(1)], links={"next": f"{elsewhere.url}/v1/audit?p=2"})) as api:
            with pytest.raises(PaginationError, match="another host"):
                collect(api.url, tmp_path, paging={"strategy": "next_url", "url": "links.next"})
        assert elsewhere.requests == []


def test_a_time_in_the_wrong_declared_format_fails_naming_the_field(tmp_path):
    def script(request: HostileRequest) -> Reply:
        return page([{"actor": "ana", "seq": 1, "at": "2026-03-01T04:10:00Z"}])

    with HostileServer(script) as api:
        with pytest.raises(
            MalformedEventError, match="'at' is '2026-03-01T04:10:00Z', expected integer epoch milliseconds"
        ):
            collect(api.url, tmp_path, paging={"strategy": "single_page"})

"""Atlassian source against a hostile API (`sandbox.hostile`): an API that reads `from`/`to` in seconds
while the collector sends milliseconds (and then answers the check in seconds with a time no calendar holds), and
a next link to another host."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import IncompleteWindowError, MalformedEventError, MalformedResponseError, PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

TOKEN = "ATATT3xHostileKey0123456789"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
ORG = "org-1"
TIMES = [int(WINDOW.start.timestamp()) + offset for offset in (3000, 2000, 10)]  # newest first


def body(events: list[int], next_url: str | None = None) -> Reply:
    data = [
        {"id": f"e{t}", "attributes": {"time": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
        for t in events
    ]
    return Reply(
        200,
        body=json.dumps({"data": data, "links": {"next": next_url}, "meta": {}}).encode(),
        headers={"Content-Type": "application/json"},
    )


def reads_seconds(request: HostileRequest) -> Reply:
    low, high = int(request.query["from"][0]), int(request.query["to"][0])
    return body([t for t in TIMES if low <= t <= high])


def collect(url: str, tmp_path):
    connection = Connection("atlassian_org", url, TOKEN)
    return collect_window("atlassian", {"org_id": ORG}, "org_events", connection, WINDOW, tmp_path)


def test_milliseconds_sent_to_an_api_that_reads_seconds_fail_naming_the_unit(tmp_path):
    with HostileServer(reads_seconds) as api:
        with pytest.raises(IncompleteWindowError, match="the API reads epoch seconds") as failure:
            collect(api.url, tmp_path)
    assert "epoch_unit: s" in str(failure.value)
    assert [r.query["from"] for r in api.requests] == [["1772337599000"], ["1772337599"]]
    assert {r.headers["authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}


def test_a_time_no_calendar_holds_in_the_answer_to_the_other_units_check_fails_at_once_naming_it(tmp_path):
    """The check of an empty window reads the times of another request's answer: a bad one there is the same
    non-retried error as on a page, never a bare ValueError that Airflow would retry."""

    def script(request: HostileRequest) -> Reply:
        if request.number == 1:
            return body([])
        reply = body(TIMES)
        page = json.loads(reply.body)
        page["data"][1]["attributes"]["time"] = "0001-01-01T00:00:00+00:30"
        return Reply(200, body=json.dumps(page).encode(), headers=reply.headers)

    with HostileServer(script) as api:
        with pytest.raises(MalformedEventError) as failure:
            collect(api.url, tmp_path)
    assert (
        "the check in epoch_unit 's', event 2: 'attributes.time' is '0001-01-01T00:00:00+00:30', not a real date and "
        "time within the years 1 to 9999 UTC" in str(failure.value)
    )
    assert not failure.value.retryable and f"e{TIMES[1]}" in failure.value.body_excerpt
    assert [r.query["from"] for r in api.requests] == [["1772337599000"], ["1772337599"]]


def test_an_answer_to_the_other_units_check_without_its_data_list_is_a_broken_page(tmp_path):
    def script(request: HostileRequest) -> Reply:
        return body([]) if request.number == 1 else Reply(200, b'{"links": {}}', {"Content-Type": "application/json"})

    with HostileServer(script) as api:
        with pytest.raises(MalformedResponseError, match="page has no 'data' list"):
            collect(api.url, tmp_path)
    assert len(api.requests) == 2


def test_a_next_link_to_another_host_is_refused_and_the_key_never_leaves(tmp_path):
    with HostileServer(lambda request: body([])) as elsewhere:
        with HostileServer(lambda request: body(TIMES, f"{elsewhere.url}/admin/v1/orgs/{ORG}/events?cursor=x")) as api:
            with pytest.raises(PaginationError, match="another host"):
                collect(api.url, tmp_path)
        assert elsewhere.requests == [] and len(api.requests) == 1

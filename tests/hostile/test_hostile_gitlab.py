"""GitLab source against a hostile API (`sandbox.hostile`): what the wire does decides, and every request
is asserted as sent, token included."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileRequest, HostileServer, Reply

TOKEN = "glpat-hostile-0123456789abcdef"
UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
PATH = "/api/v4/groups/4242/audit_events"


def event(number: int) -> dict:
    return {"id": 1000 - number, "created_at": f"2026-03-01T04:{59 - number:02d}:00.250Z", "details": {}}


def page(events: list[dict], next_url: str | None = None, **reply) -> Reply:
    headers = {"Content-Type": "application/json", **({"Link": f'<{next_url}>; rel="next"'} if next_url else {})}
    return Reply(200, body=json.dumps(events).encode(), headers=headers, **reply)


def collect(url: str, tmp_path, **client_options):
    connection = Connection("gitlab_audit", url, TOKEN)
    return collect_window(
        "gitlab", {"group": "4242", "per_page": 2}, "audit_events", connection, WINDOW, tmp_path, **client_options
    )


def test_a_next_link_to_another_host_is_refused_and_the_token_never_leaves(tmp_path):
    with HostileServer(lambda request: page([])) as elsewhere:
        with HostileServer(lambda request: page([event(0), event(1)], f"{elsewhere.url}{PATH}?cursor=x")) as api:
            with pytest.raises(PaginationError, match="another host"):
                collect(api.url, tmp_path)
        assert elsewhere.requests == []
    assert [r.headers["private-token"] for r in api.requests] == [TOKEN]


def test_a_page_cut_mid_array_is_fetched_again_and_nothing_is_lost_or_doubled(tmp_path):
    def script(request: HostileRequest) -> Reply:
        if "cursor" not in request.query:
            return page([event(0), event(1)], f"http://{request.headers['host']}{PATH}?cursor=2&per_page=2")
        body = json.dumps([event(2)]).encode()
        return Reply(
            200,
            body=body,
            headers={"Content-Type": "application/json"},
            **({"cut_after": len(body) // 2, "content_length": len(body)} if request.number == 2 else {}),
        )

    with HostileServer(script) as api:
        collected = collect(api.url, tmp_path, sleep=lambda seconds: None)
    assert [e["id"] for e in collected.events] == [1000, 999, 998]
    assert [r.query.get("cursor") for r in api.requests] == [None, ["2"], ["2"]]


def test_a_link_that_points_back_at_the_same_page_stops_instead_of_looping(tmp_path):
    with HostileServer(
        lambda request: page([event(0), event(1)], f"http://{request.headers['host']}{PATH}?cursor=same")
    ) as api:
        with pytest.raises(PaginationError, match="same next-page position twice"):
            collect(api.url, tmp_path)
    assert len(api.requests) == 2

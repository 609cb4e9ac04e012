"""Hostile paging and hostile events against the real client, paging loop and collector: an API that hands
out fresh cursors but no new events, a cursor that grows by the page, integers beyond 64 bits, ids of two
JSON types, times no calendar holds, and bounds an API might read as exclusive. Each test asserts what
lands in the staged parts (what the operator would publish) or the exact error, and that nothing is kept
on failure."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

from auditlogs.client.pagination import MAX_PAGES_WITHOUT_PROGRESS
from auditlogs.errors import MalformedEventError, PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window, source_config
from sandbox.hostile import HostileServer, Reply

UTC = timezone.utc
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
START, END = int(WINDOW.start.timestamp()), int(WINDOW.end.timestamp())
TOKEN = "hostile-paging-token-0001"
STREAMS = {
    "slack": "audit",
    "onepassword": "signinattempts",
    "github": "audit",
    "okta": "systemlog",
    "google_workspace": "login",
    "twilio": "events",
}
OPTIONS = {"github": {"org": "acme"}, "google_workspace": {"applications": ["login"]}}


def json_reply(body) -> Reply:
    return Reply(200, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def collect(api: HostileServer, tmp_path, source: str, **options):
    login = "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" if source == "twilio" else None
    connection = Connection(f"{source}_conn", api.url, TOKEN, login=login)
    return collect_window(source, {**OPTIONS.get(source, {}), **options}, STREAMS[source], connection, WINDOW, tmp_path)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- Paging that never progresses, paging that grows ------------------------------------------------------


def signin(uuid: str, seconds: float) -> dict:
    return {"uuid": uuid, "timestamp": iso(seconds), "category": "success"}


def test_a_fresh_cursor_on_every_page_that_only_repeats_seen_events_stops_without_progress(tmp_path):
    """Oldest first: the repeats sit behind the edge already reached, so they are no progress."""
    events = [signin(f"E{n}", START + 60 * n) for n in range(3)]

    def script(request):
        return json_reply({"cursor": f"fresh-{request.number}", "has_more": True, "items": events})

    with HostileServer(script) as api, pytest.raises(PaginationError) as raised:
        collect(api, tmp_path, "onepassword", max_pages=200)
    assert (
        f"the API answered {MAX_PAGES_WITHOUT_PROGRESS} pages in a row that each said there is more but "
        "brought no new event" in str(raised.value)
    )
    assert len(api.requests) == 1 + MAX_PAGES_WITHOUT_PROGRESS  # the first page was progress, then 20 without
    assert TOKEN not in str(raised.value)


def test_a_fresh_cursor_on_every_page_of_out_of_window_events_stops_without_progress(tmp_path):
    outside = [{"id": f"old-{n}", "date_create": START - 3600 - n, "action": "user_login"} for n in range(5)]

    def script(request):
        return json_reply({"ok": True, "entries": outside, "response_metadata": {"next_cursor": f"c{request.number}"}})

    with HostileServer(script) as api, pytest.raises(PaginationError) as raised:
        collect(api, tmp_path, "slack", max_pages=200)
    assert "brought no new event (empty, repeated or outside the window; page 20)" in str(raised.value)
    assert len(api.requests) == MAX_PAGES_WITHOUT_PROGRESS


def test_new_events_behind_fresh_cursors_page_on_to_the_end(tmp_path):
    pages = 3 * MAX_PAGES_WITHOUT_PROGRESS

    def script(request):
        number = request.number
        return json_reply(
            {"cursor": f"c{number}", "has_more": number < pages, "items": [signin(f"E{number}", START + number)]}
        )

    with HostileServer(script) as api:
        collected = collect(api, tmp_path, "onepassword")
    assert [e["uuid"] for e in collected.events] == [f"E{n}" for n in range(1, pages + 1)]


def test_a_posted_cursor_growing_every_page_does_not_grow_the_loops_memory(tmp_path):
    """60 pages whose cursor grows by 128 KiB each. The old loop kept every position's text (their sum, 229 MiB,
    30 times the largest); now the peak is one page's transient copies, server's and client's (~16 times)."""
    pages, step = 60, 128 << 10
    largest = pages * step

    def script(request):
        number = request.number
        if number > 1:
            assert len(json.loads(request.body)["cursor"]) == (number - 1) * step
        return json_reply(
            {
                "cursor": "x" * (number * step),
                "has_more": number < pages,
                "items": [signin(f"E{number}", START + number)],
            }
        )

    tracemalloc.start()
    try:
        with HostileServer(script, keep_bodies=False) as api:
            collected = collect(api, tmp_path, "onepassword")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e["uuid"] for e in collected.events] == [f"E{n}" for n in range(1, pages + 1)]
    assert peak < 24 * largest, f"peak {peak >> 20} MiB for a largest cursor of {largest >> 20} MiB"


# --- Events unchanged ------------------------------------------------------------------------------------


def test_integers_beyond_64_bits_floats_unicode_and_nesting_are_stored_exactly(tmp_path):
    sent = [
        {
            "id": "big",
            "date_create": START + 1,
            "n": 2**70,
            "m": -(2**80),
            "u": 2**64,
            "f": 0.1,
            "e": 1.5e300,
            "text": "ünïcødé ☃ 𝄞",
            "nested": {"list": [2**100, {"deep": [-(2**65), 3.0, None, True]}]},
        },
        {"id": 2**70, "date_create": START + 2, "action": "user_login"},
        {"id": "small", "date_create": START + 3, "n": 2**63 - 1},
    ]
    with HostileServer(lambda request: json_reply({"ok": True, "entries": sent[::-1]})) as api:
        collected = collect(api, tmp_path, "slack")
    stored = collected.events  # each stored line parsed by the stdlib, which keeps every integer exact
    assert stored == sent[::-1]
    assert [type(e["id"]) for e in stored] == [str, int, str]
    assert isinstance(stored[2]["n"], int) and isinstance(stored[2]["nested"]["list"][0], int)


def test_ids_of_two_json_types_at_the_same_millisecond_are_two_events(tmp_path):
    sent = [
        {"id": 1, "date_create": START + 5, "action": "a"},
        {"id": "1", "date_create": START + 5, "action": "b"},
        {"id": 1, "date_create": START + 5, "action": "a"},
    ]
    with HostileServer(lambda request: json_reply({"ok": True, "entries": sent})) as api:
        collected = collect(api, tmp_path, "slack")
    assert collected.events == sent[:2]
    assert collected.result.duplicates == 1


def test_the_sweep_reads_stored_events_back_with_the_keys_the_collector_compared(tmp_path):
    """The sweep skips what is stored by key: a stored id beyond 64 bits must not come back as a float."""
    from auditlogs.operators.sweep import StoredEvents
    from auditlogs.sink.gcs import IntervalLocation
    from auditlogs.sink.overlap import digest, epoch_ms
    from auditlogs.sources import SPECS

    sent = [
        {"id": 2**70, "date_create": START + 2},
        {"id": "1", "date_create": START + 1},
        {"id": 1, "date_create": START + 1},
    ]
    with HostileServer(lambda request: json_reply({"ok": True, "entries": sent})) as api:
        collected = collect(api, tmp_path / "staged", "slack")
    parts = sorted((tmp_path / "staged").glob("*.ndjson.gz"))
    assert collected.events == sent and parts

    class Hook:
        def download(self, bucket, object_name, filename):
            Path(filename).write_bytes(parts[int(object_name.rsplit("-", 1)[1])].read_bytes())

    stored = StoredEvents(source_config("slack", "slack_conn"), WINDOW, Hook())
    location = IntervalLocation("bucket", "raw", "test", "audit", WINDOW)
    stored.add_folder(location, {"parts": [{"name": f"part-{n}"} for n in range(len(parts))]})
    spec = SPECS["slack"]
    assert stored.keys == {(digest(spec.key(e)), epoch_ms(spec.event_time(e))) for e in sent}
    assert len(stored.keys) == 3


# --- Times no calendar holds: a clear error, at once -----------------------------------------------------

OUT_OF_RANGE = {
    "github": (
        "GET",
        lambda: [{"_document_id": "ok", "@timestamp": START * 1000 + 5}, {"_document_id": "bad", "@timestamp": 10**18}],
        "'@timestamp' is 1000000000000000000",
    ),
    "slack": (
        "GET",
        lambda: {"ok": True, "entries": [{"id": "ok", "date_create": START + 5}, {"id": "bad", "date_create": 1e300}]},
        "'date_create' is 1e+300",
    ),
    "okta": (
        "GET",
        lambda: [
            {"uuid": "ok", "published": iso(START + 5)},
            {"uuid": "bad", "published": "0001-01-01T00:00:00.000+01:00"},
        ],
        "'published' is '0001-01-01T00:00:00.000+01:00'",
    ),
    "onepassword": (
        "POST",
        lambda: {
            "cursor": "c",
            "has_more": False,
            "items": [signin("ok", START + 5), signin("bad", 0) | {"timestamp": "9999-12-31T23:59:59-01:00"}],
        },
        "'timestamp' is '9999-12-31T23:59:59-01:00'",
    ),
    "google_workspace": (
        "GET",
        lambda: {
            "items": [
                {
                    "id": {
                        "time": iso(START + 5),
                        "uniqueQualifier": "1",
                        "applicationName": "login",
                        "customerId": "C1",
                    }
                },
                {
                    "id": {
                        "time": "0001-01-01T00:00:00Z",
                        "uniqueQualifier": "2",
                        "applicationName": "login",
                        "customerId": "C1",
                    }
                },
                {
                    "id": {
                        "time": "0001-01-01T00:00:00+00:01",
                        "uniqueQualifier": "3",
                        "applicationName": "login",
                        "customerId": "C1",
                    }
                },
            ]
        },
        "'id.time' is '0001-01-01T00:00:00+00:01'",
    ),
    "twilio": (
        "GET",
        lambda: {
            "events": [
                {"sid": "AE1", "event_date": iso(START + 5)},
                {"sid": "AE2", "event_date": "9999-12-31T23:59:59-00:30"},
            ],
            "meta": {"next_page_url": None},
        },
        "'event_date' is '9999-12-31T23:59:59-00:30'",
    ),
}


@pytest.mark.parametrize("source", sorted(OUT_OF_RANGE))
def test_a_time_no_calendar_holds_fails_at_once_naming_page_and_event(tmp_path, source):
    method, body, shown = OUT_OF_RANGE[source]
    event = 3 if source == "google_workspace" else 2  # Google's year-1 event in UTC is a real, out-of-window time
    with HostileServer(lambda request: json_reply(body())) as api, pytest.raises(MalformedEventError) as raised:
        collect(api, tmp_path, source)
    error = raised.value
    assert f"page 1, event {event}: {shown}, not a real date and time within the years 1 to 9999 UTC" in str(error)
    assert not error.retryable and len(api.requests) == 1 and api.requests[0].method == method


# --- Bounds sent outward: an API reading them as exclusive still gives the edge events --------------------


def exclusive_bounds(lo_name: str, hi_name: str, events: list[tuple[str, float]], render, where="query"):
    """A script that keeps the events strictly between the request's bounds (both read as exclusive)."""

    def script(request):
        values = json.loads(request.body) if where == "body" else {k: v[0] for k, v in request.query.items()}
        lo = datetime.fromisoformat(values[lo_name].replace("Z", "+00:00")).timestamp()
        hi = datetime.fromisoformat(values[hi_name].replace("Z", "+00:00")).timestamp()
        return json_reply(render([(key, at) for key, at in events if lo < at < hi]))

    return script


EDGES = [("at-start", START), ("inside", START + 60), ("last-ms", END - 0.001), ("at-end", END)]


def test_okta_since_is_sent_early_enough_to_include_an_event_at_the_window_start(tmp_path):
    script = exclusive_bounds("since", "until", EDGES, lambda kept: [{"uuid": k, "published": iso(t)} for k, t in kept])
    with HostileServer(script) as api:
        collected = collect(api, tmp_path, "okta")
    assert [e["uuid"] for e in collected.events] == ["at-start", "inside", "last-ms"]


def test_onepassword_start_time_is_sent_early_enough_to_include_an_event_at_the_window_start(tmp_path):
    script = exclusive_bounds(
        "start_time",
        "end_time",
        EDGES,
        where="body",
        render=lambda kept: {"cursor": "c", "has_more": False, "items": [signin(k, t) for k, t in kept]},
    )
    with HostileServer(script) as api:
        collected = collect(api, tmp_path, "onepassword")
    assert [e["uuid"] for e in collected.events] == ["at-start", "inside", "last-ms"]


def test_google_end_time_is_sent_late_enough_to_include_the_last_millisecond(tmp_path):
    """Google's startTime is documented inclusive, so only the end is read as exclusive here."""

    def script(request):
        lo = datetime.fromisoformat(request.query["startTime"][0].replace("Z", "+00:00")).timestamp()
        hi = datetime.fromisoformat(request.query["endTime"][0].replace("Z", "+00:00")).timestamp()
        kept = [(k, t) for k, t in EDGES if lo <= t < hi]
        return json_reply(
            {
                "items": [
                    {"id": {"time": iso(t), "uniqueQualifier": k, "applicationName": "login", "customerId": "C1"}}
                    for k, t in reversed(kept)
                ]
            }
        )

    with HostileServer(script) as api:
        collected = collect(api, tmp_path, "google_workspace")
    assert [e["id"]["uniqueQualifier"] for e in collected.events] == ["last-ms", "inside", "at-start"]


def test_github_sends_the_documented_range_phrase_rounded_outward(tmp_path):
    with HostileServer(lambda request: json_reply([])) as api:
        collect(api, tmp_path, "github")
    assert api.requests[0].query["phrase"] == ["created:2026-03-01T04:00:00Z..2026-03-01T05:00:00Z"]

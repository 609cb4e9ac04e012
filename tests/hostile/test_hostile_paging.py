"""Hostile paging and hostile events against the real client, paging loop and collector: an API that hands
out fresh cursors but no new events, a cursor that grows by the page, integers beyond 64 bits, ids of two
JSON types, times no calendar holds, and bounds an API might read as exclusive. Each test asserts what
lands in the staged parts (what the operator would publish) or the exact error, and that nothing is kept
on failure."""

from __future__ import annotations

import gc
import json
import re
import tracemalloc
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from auditlogs import exact_json
from auditlogs.client.pagination import MAX_PAGES_WITHOUT_PROGRESS
from auditlogs.errors import MalformedEventError, PaginationError, excerpt
from auditlogs.window import Window
from harness import Connection, collect_window, readme_rest_example, source_config
from sandbox import (
    DEFAULT_SCENARIO_PATH,
    SandboxServer,
    atlassian,
    cloudflare,
    github,
    gitlab,
    ground_truth,
    load_scenario,
    microsoft365,
    sendgrid,
)
from sandbox.connections import sandbox_connection
from sandbox.hostile import HostileServer, Reply
from sandbox.sources import event_store

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
# Every source type against its own sandbox API, with the sandbox's `malformed_times` writing a time no
# calendar holds into the time field of every event in the middle ten minutes of a real, recent hour (SendGrid's
# snapshot and Office 365's seven days only answer for recent windows).

RECENT_END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
RECENT = Window(RECENT_END - timedelta(hours=1), RECENT_END)
TAMPERED = (int(RECENT.start.timestamp()) + 1200, int(RECENT.start.timestamp()) + 1800)
REST = {k: v for k, v in readme_rest_example()["pagerduty"].items() if k not in ("type", "conn_id")}
#: source type: (YAML options, stream, the sandbox event's time field, the value written there). Office 365's
#: event time is not a field of its records: see the test after this one.
OUT_OF_RANGE = {
    "slack": ({}, "audit", "date_create", 1e300),
    "onepassword": ({}, "signinattempts", "timestamp", "9999-12-31T23:59:59-01:00"),
    "github": ({"org": github.ORG}, "audit", "@timestamp", 10**18),
    "okta": ({}, "systemlog", "published", "0001-01-01T00:00:00.000+01:00"),
    "twilio": ({}, "events", "event_date", "9999-12-31T23:59:59-00:30"),
    "sendgrid": ({}, "access_attempts", "at", 10**18),  # each row's last attempt is its `last_at`
    "google_workspace": ({"applications": ["login"]}, "login", "id.time", "0001-01-01T00:00:00+00:01"),
    "entra_id": ({}, "sign_ins", "createdDateTime", "9999-12-31T23:59:59-01:00"),
    "zoom": ({}, "activities", "time", "0001-01-01T00:00:00+01:00"),  # whole days asked, each record's time read
    "gitlab": ({"group": gitlab.GROUP_PATH}, "audit_events", "created_at", "9999-12-31T23:59:59.999-00:01"),
    "atlassian": ({"org_id": atlassian.ORG_ID}, "org_events", "attributes.time", "0001-01-01T00:00:00+00:30"),
    "box": ({}, "admin_logs", "created_at", "0001-01-01T00:00:00+08:00"),
    "dropbox": ({}, "team_events", "timestamp", "9999-12-31T23:59:59-02:00"),
    "duo": ({"streams": ["authentication"]}, "authentication", "isotimestamp", "0001-01-01T00:00:00+01:00"),
    "zendesk": ({}, "audit_logs", "created_at", "9999-12-31T23:59:59-10:00"),
    "cloudflare": (
        {"account_id": cloudflare.ACCOUNT_ID_AFTER},
        "audit_logs",
        "action.time",
        "0001-01-01T00:00:00+05:30",
    ),
    "rest": (REST, "audit_records", "execution_time", "9999-12-31T23:59:59-01:00"),
}
#: Where the product's name for the time differs from the sandbox event's field (SendGrid's rows aggregate attempts).
SHOWN = {"sendgrid": "last_at"}


def malformed_scenario(api: str, field: str, value, span: tuple[int, int]) -> dict:
    token = load_scenario(DEFAULT_SCENARIO_PATH).sources[api].token
    malformed = {"field": field, "value": value, "start": span[0], "end": span[1]}
    events = {"events_per_hour": 240, "burst_fraction": 0.3, "rate_limit_per_minute": 0}
    return {"seed": 53, "sources": {api: {**events, "token": token, "malformed_times": malformed}}}


@contextmanager
def sandbox_with_malformed_times(source: str, field: str, value, span: tuple[int, int] = TAMPERED):
    """The sandbox API of `source` (PagerDuty for `type: rest`) with every event of `span` carrying `value` in
    `field`, its clock just after RECENT; yields the server, `collect(options, stream, staging)` and the scenario."""
    api = "pagerduty" if source == "rest" else source
    scenario = malformed_scenario(api, field, value, span)
    with SandboxServer(scenario) as server:
        server.clock.set(RECENT.end.timestamp() + 600)
        fields = sandbox_connection(source, server.url, scenario["sources"][api]["token"])
        connection = Connection(
            f"{source}_conn",
            fields["host"],
            fields["password"],
            fields.get("login"),
            extra_dejson=fields.get("extra", {}),
        )

        def collect(options: dict, stream: str, staging):
            return collect_window(source, options, stream, connection, RECENT, staging)

        yield server, collect, scenario


@pytest.mark.parametrize("source", sorted(OUT_OF_RANGE))
def test_a_time_no_calendar_holds_fails_at_once_naming_page_and_event(tmp_path, source):
    options, stream, field, value = OUT_OF_RANGE[source]
    with sandbox_with_malformed_times(source, field, value) as (server, collect, scenario):
        with pytest.raises(MalformedEventError) as raised:
            collect(options, stream, tmp_path)
        assert gc.isenabled()  # the page that failed does not leave the GC paused while its traceback lives
        sent = [(r["method"], r["path"], r["query"], r["body"]) for r in server.requests.entries()]
    error = raised.value
    named = re.search(
        rf"page (\d+), event (\d+): '{re.escape(SHOWN.get(source, field))}' is {re.escape(repr(value))}, "
        "not a real date and time within the years 1 to 9999 UTC",
        str(error),
    )
    assert named, str(error)
    assert not error.retryable and str(error).endswith("report it with this excerpt, nothing was written")
    # Failed at once: no request sent twice, and the page it names is the last one asked for.
    assert len(set(map(repr, sent))) == len(sent)
    assert len([r for r in sent if r[1] == sent[-1][1]]) == int(named[1])
    tampered = [e for e in served(scenario, server.clock.now()) if value in json_values(e)]
    assert error.body_excerpt in {excerpt(exact_json.line(e)) for e in tampered}  # the event it names, as served


def test_office_365_windows_on_when_a_blob_became_available_so_a_record_time_no_calendar_holds_is_stored_as_is(
    tmp_path,
):
    """Office 365's event time is its blob's `contentCreated` in the listing, not a field of the record (records
    reach a blob an hour or more after they happen): a record's `CreationTime` is never read, so one no calendar
    holds is stored unchanged, like every other field of an event."""
    value = "9999-12-31T23:59:60"
    happened = tuple(moment - microsoft365.LATENCY for moment in TAMPERED)  # available within RECENT
    with sandbox_with_malformed_times("microsoft365", "CreationTime", value, happened) as (server, collect, scenario):
        collected = collect({"content_types": ["Audit.Exchange"]}, "audit_exchange", tmp_path)
        truth = {e["Id"]: e for e in ground_truth("microsoft365", *happened, scenario, now=server.clock.now())}
    stored = [e for e in collected.events if e["CreationTime"] == value]
    assert stored and all(e == truth[e["Id"]] for e in stored)
    assert collected.result.written == len(collected.events) > len(stored)


def served(scenario: dict, now: float) -> list[dict]:
    """The events the scenario's API serves for TAMPERED (SendGrid: its snapshot's rows, which aggregate them)."""
    api = next(iter(scenario["sources"]))
    if api == "sendgrid":
        return sendgrid.snapshot(event_store(load_scenario(scenario), api), now, 1000)
    return ground_truth(api, *TAMPERED, scenario, now=now)


def json_values(event) -> list:
    """Every scalar of a JSON object, nested ones included."""
    if isinstance(event, dict):
        return [v for item in event.values() for v in json_values(item)]
    if isinstance(event, list):
        return [v for item in event for v in json_values(item)]
    return [event]


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

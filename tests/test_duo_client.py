"""The Duo source against the sandbox: every request signed as Duo's own client signs it (checked against the
vendor test vectors), the v2 logs asked with inclusive millisecond bounds and paged by `next_offset` in both
shapes, the administrator log paged from the last row's second so that a full page ending mid-second loses
nothing, and a window never asked for within Duo's two-minute buffer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError
from auditlogs.sources import SPECS
from auditlogs.sources.duo import DuoSignature
from auditlogs.window import Window
from harness import Connection, api_client, collect_window, run_collector, sandbox_fixtures, source_config
from sandbox import ground_truth
from sandbox.duo import stream_of

IKEY, SKEY = "DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
# 12,000 an hour: about 3,000 a stream, so the administrator log needs several 1000-row calls.
SCENARIO = {
    "seed": 23,
    "sources": {
        "duo": {
            "events_per_hour": 12_000,
            "burst_fraction": 0.5,
            "token": f"{IKEY}:{SKEY}",
            "rate_limit_per_minute": 0,
            "retention_days": 180,
        }
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
SPEC = SPECS["duo"]

server, api = sandbox_fixtures(SCENARIO, NOW)

#: The fact sheet's vectors, computed with duo-client 5.7.0.
VECTOR_DATE = "Tue, 21 Aug 2012 17:29:18 -0000"
VECTOR_PARAMS = [("mintime", "1700000000000"), ("maxtime", "1700003600000"), ("limit", "1000"), ("sort", "ts:asc")]
VECTOR_V2_SHA1 = "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6OGQ3NjEzYjljM2IwODEzNzhkYjQxZjkwMTlkZDJkOTllYjY0MzllOA=="
VECTOR_V5 = (
    "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MThkN2EwYjc5ZmU5ZDI0YjY2NWE4OTEyN2U4MmI3NDg4NWM3MTcyNGU1ZTEyNDBmYjg4ZWNm"
    "NWFlYjc4NDc1NWQ5MTE4NmNjMmI3NWNlYjdkNjk2MjQ1NTRmNjA5ZWEwNzBmYzViMmU0NjBlOGJjOTVkYjgzNDMxMzE1MGNmOWI="
)


def expected(stream: str, window: Window = WINDOW) -> set[str]:
    events = ground_truth("duo", window.start, window.end, SCENARIO, now=NOW)
    return {SPEC.key(e) for e in events if stream_of(e) == stream}


def run(api, tmp_path, stream: str, window: Window = WINDOW, extra: dict | None = None, **options):
    connection = Connection("duo_admin", api.url, SKEY, login=IKEY, extra_dejson=extra or {})
    return collect_window("duo", options, stream, connection, window, tmp_path)


@pytest.mark.parametrize("version, digest, vector", [(5, "sha512", VECTOR_V5), (2, "sha1", VECTOR_V2_SHA1)])
def test_the_signature_matches_duos_own_client_on_the_vendor_vectors(version, digest, vector):
    signer = DuoSignature(IKEY, SKEY, version, digest)
    assert (
        signer.authorization(
            "GET", "api-xxxxxxxx.duosecurity.com", "/admin/v2/logs/authentication", VECTOR_PARAMS, VECTOR_DATE
        )
        == vector
    )


def test_a_signed_request_on_the_wire_carries_the_date_it_signed_and_quotes_as_duo_does():
    import requests

    prepared = requests.Request(
        "GET", "https://API-xxxxxxxx.duosecurity.com/admin/v2/logs/authentication", params=dict(VECTOR_PARAMS)
    ).prepare()
    DuoSignature(IKEY, SKEY, 5, date=lambda: VECTOR_DATE)(prepared)
    assert "sort=ts%3Aasc" in prepared.url and prepared.headers["Date"] == VECTOR_DATE
    assert prepared.headers["Authorization"] == VECTOR_V5


@pytest.mark.parametrize("stream", ["authentication", "telephony", "activity"])
def test_v2_logs_are_asked_with_inclusive_millisecond_bounds_and_paged_by_next_offset(api, tmp_path, stream):
    collected = run(api, tmp_path, stream, streams=[stream])
    keys = [SPEC.key(e) for e in collected.events]
    assert len(keys) == len(set(keys)) and set(keys) == expected(stream)
    sent = api.admin.requests()
    assert len(sent) == collected.result.pages == -(-len(keys) // 1000) and len(sent) > 1
    assert sent[0]["query"] == {
        "mintime": ["1772337600000"],
        "maxtime": ["1772341199999"],
        "limit": ["1000"],
        "sort": ["ts:asc"],
    }
    offsets = [r["query"]["next_offset"][0] for r in sent[1:]]
    assert all(o.count(",") == 1 and o.split(",")[0].isdigit() for o in offsets)  # the array comma-joined, too
    assert all(r["auth_ok"] and r["headers"]["date"] for r in sent)


def test_the_administrator_log_resumes_at_the_last_rows_second_and_loses_none_of_it(api, tmp_path):
    collected = run(api, tmp_path, "administrator", streams=["administrator"])
    keys = [SPEC.key(e) for e in collected.events]
    assert len(keys) == len(set(keys)) and set(keys) == expected("administrator")
    sent = api.admin.requests()
    mintimes = [int(r["query"]["mintime"][0]) for r in sent]
    assert len(sent) >= 3 and mintimes[0] == int(WINDOW.start.timestamp()) and "maxtime" not in sent[0]["query"]
    assert collected.result.duplicates > 0  # the last second of each full page is read again, its repeats dropped
    # The fake's first page ends inside a second: a pager resuming at `last + 1` would lose the rest of it.
    truth = sorted(
        (
            e
            for e in ground_truth("duo", WINDOW.start, NOW, SCENARIO, now=NOW - timedelta(minutes=2))
            if stream_of(e) == "administrator"
        ),
        key=lambda e: e["timestamp"],
    )
    first_page = truth[:1000]
    last = first_page[-1]["timestamp"]
    assert mintimes[1] == last
    assert sum(e["timestamp"] == last for e in truth) > sum(e["timestamp"] == last for e in first_page)


def test_the_default_streams_are_authentication_administrator_and_telephony():
    assert source_config("duo", "c").stream_names() == ("authentication", "administrator", "telephony")


def test_a_window_ending_inside_duos_buffer_is_waited_for_not_asked_early(api, tmp_path):
    config = source_config("duo", "duo_admin", streams=["telephony"])
    sleeps: list[float] = []
    client = api_client(SPEC, Connection("duo_admin", api.url, SKEY, login=IKEY), sleeps=sleeps, config=config)
    now = WINDOW.end + timedelta(seconds=30)
    run_collector(SPEC, config, "telephony", client, WINDOW, tmp_path, now=now)
    assert sleeps == [120.0]  # the default buffer of 2m30s after the end
    with pytest.raises(ValueError, match="at least 2m"):
        source_config("duo", "c", buffer="1m")


def test_a_wrong_secret_key_fails_at_once_naming_the_connection_and_never_shows_the_key(api, tmp_path):
    with pytest.raises(AuthError) as failure:
        collect_window(
            "duo",
            {"streams": ["telephony"]},
            "telephony",
            Connection("duo_admin", api.url, "WrongSecretKey0123456789abcdefghijklmnop", login=IKEY),
            WINDOW,
            tmp_path,
        )
    assert "40103" in str(failure.value) and "duo_admin" in str(failure.value)
    assert "WrongSecretKey0123456789abcdefghijklmnop" not in str(failure.value)
    assert len(api.admin.requests()) == 1


def test_sig_version_2_is_accepted_too_even_typed_as_text(api, tmp_path):
    collected = run(api, tmp_path, "telephony", extra={"sig_version": "2", "digest": "sha1"}, streams=["telephony"])
    assert {SPEC.key(e) for e in collected.events} == expected("telephony")
    assert {r["auth_scheme"] for r in api.admin.requests()} == {"Basic"}

"""The /_sandbox/ admin API: request log, fault injection, clock and truth."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import orjson
import pytest
import requests

from conftest import AUTH, NOW, TOKEN, fetch_pages, new_session, ts
from sandbox import SandboxServer, ground_truth

HOUR = timedelta(hours=1)
LOGS = "/audit/v1/logs"


def get_logs(http: requests.Session, server: SandboxServer, **params) -> requests.Response:
    return http.get(server.url + LOGS, params={"limit": 5, **params}, headers=AUTH)


def test_health(server, http):
    resp = http.get(server.url + "/_sandbox/health")
    assert resp.status_code == 200 and resp.json() == {"ok": True}


def test_request_log_records_api_calls_without_secrets(server, http):
    get_logs(http, server, oldest=ts(NOW - HOUR))
    http.get(server.url + LOGS, headers={"Authorization": "Bearer xoxp-wrong"})
    http.get(server.url + "/audit/v1/schemas")
    log = http.get(server.url + "/_sandbox/requests").json()

    assert [(e["method"], e["path"], e["status"], e["auth_scheme"], e["auth_ok"]) for e in log] == [
        ("GET", LOGS, 200, "Bearer", True),
        ("GET", LOGS, 401, "Bearer", False),
        ("GET", "/audit/v1/schemas", 200, None, False),
    ]
    first = log[0]
    assert first["query"] == {"limit": ["5"], "oldest": [str(ts(NOW - HOUR))]}
    assert first["headers"]["authorization"] == "Bearer <redacted>"
    assert first["body"] is None and first["fault"] is None
    assert time.time() - 60 < first["at"] <= time.time()
    assert TOKEN not in orjson.dumps(log).decode() and "xoxp-wrong" not in orjson.dumps(log).decode()

    assert http.delete(server.url + "/_sandbox/requests").json() == {"ok": True}
    assert http.get(server.url + "/_sandbox/requests").json() == []


def test_connection_ids_reveal_keep_alive(server, http):
    for _ in range(3):
        get_logs(http, server)
    for _ in range(2):
        with new_session() as fresh:  # a new connection each time
            fresh.get(server.url + LOGS, headers=AUTH)
    connections = [e["connection"] for e in server.admin.requests()]
    assert len(set(connections[:3])) == 1
    assert len(set(connections)) == 3


def test_status_fault_hits_count_matching_requests(server, http):
    server.admin.add_faults({"match": LOGS, "count": 2, "kind": "status", "status": 503})
    assert [get_logs(http, server).status_code for _ in range(3)] == [503, 503, 200]
    assert [e["fault"] for e in server.admin.requests()] == ["status", "status", None]
    assert server.admin.pending_faults() == []


def test_status_fault_with_custom_headers_and_body(server, http):
    server.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "headers": {"Retry-After": "7"},
            "body": '{"ok":false,"error":"ratelimited"}',
        },
        {"kind": "status", "status": 500, "body": "upstream exploded"},
    )
    limited = get_logs(http, server)
    assert (limited.status_code, limited.headers["Retry-After"], limited.json()) == (
        429,
        "7",
        {"ok": False, "error": "ratelimited"},
    )
    broken = get_logs(http, server)
    assert (broken.status_code, broken.text) == (500, "upstream exploded")
    assert broken.headers["Content-Type"].startswith("text/plain")


def test_faults_queue_fifo_and_after_skips_requests(server, http):
    server.admin.add_faults(
        {"match": LOGS, "after": 2, "kind": "status", "status": 500},
        {"match": LOGS, "kind": "status", "status": 503},
    )
    assert [get_logs(http, server).status_code for _ in range(5)] == [200, 200, 500, 503, 200]


def test_faults_only_hit_matching_paths(server, http):
    server.admin.add_faults({"match": LOGS, "kind": "status", "status": 500})
    assert http.get(server.url + "/audit/v1/schemas").status_code == 200
    assert len(server.admin.pending_faults()) == 1
    assert get_logs(http, server).status_code == 500


def test_reset_fault_drops_the_connection(server, http):
    server.admin.add_faults({"kind": "reset"})
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        get_logs(http, server)
    assert get_logs(http, server).status_code == 200
    assert [e["fault"] for e in server.admin.requests()] == ["reset", None]


def test_truncate_fault_sends_half_the_promised_body(server, http):
    server.admin.add_faults({"kind": "truncate"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        get_logs(http, server)
    assert get_logs(http, server).json()["ok"] is True


def test_html_fault_returns_an_error_page(server, http):
    server.admin.add_faults({"kind": "html", "status": 502})
    resp = get_logs(http, server)
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html") and resp.text.startswith("<html>")


def test_delay_fault_answers_normally_but_late(server, http):
    server.admin.add_faults({"kind": "delay", "seconds": 0.3})
    started = time.monotonic()
    resp = get_logs(http, server)
    assert time.monotonic() - started >= 0.3
    assert resp.status_code == 200 and resp.json()["ok"] is True


def test_delay_fault_trips_client_timeouts(http):
    # Own server: the abandoned request finishes after this test and must not leak into another's log.
    with SandboxServer({"seed": 1, "sources": {"slack": {"token": TOKEN}}}) as srv:
        srv.admin.add_faults({"kind": "delay", "seconds": 0.5})
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.get(srv.url + LOGS, headers=AUTH, timeout=0.1)


def test_a_request_in_flight_at_a_reset_is_neither_answered_nor_recorded_after_it(http):
    # A test's abandoned slow request must not land in the next test's log: the reset cuts its delay short.
    with SandboxServer({"seed": 1, "sources": {"slack": {"token": TOKEN}}}) as srv:
        srv.admin.add_faults({"kind": "delay", "seconds": 120})
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(requests.get(srv.url + LOGS, headers=AUTH, timeout=60).status_code)
            except requests.exceptions.RequestException as exc:
                outcome.append(type(exc).__name__)

        caller = threading.Thread(target=call)
        caller.start()
        assert srv.epoch.wait_in_flight(1, timeout=30)
        srv.reset()
        caller.join(timeout=30)
        assert outcome == ["ConnectionError"] and srv.requests.entries() == []
        assert http.get(srv.url + LOGS, headers=AUTH).status_code == 200
        assert [e["status"] for e in srv.requests.entries()] == [200]


def test_mid_pagination_fault_then_retry_completes(server, http):
    params = {"oldest": ts(NOW - HOUR), "latest": ts(NOW) - 1, "limit": 100}
    server.admin.add_faults({"match": LOGS, "after": 2, "kind": "status", "status": 503})
    first = http.get(server.url + LOGS, params=params, headers=AUTH).json()
    second = http.get(
        server.url + LOGS, params={**params, "cursor": first["response_metadata"]["next_cursor"]}, headers=AUTH
    ).json()
    third = {**params, "cursor": second["response_metadata"]["next_cursor"]}
    assert http.get(server.url + LOGS, params=third, headers=AUTH).status_code == 503
    assert http.get(server.url + LOGS, params=third, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"faults": [{"kind": "explode"}]},
        {"faults": [{"kind": "status", "count": 0}]},
        {"faults": [{"kind": "status", "match": "audit"}]},
        {"faults": [{"kind": "status", "stauts": 500}]},
        {"kind": "status"},
    ],
)
def test_invalid_faults_are_rejected_whole(server, http, body):
    resp = http.post(server.url + "/_sandbox/faults", json=body)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_fault"
    assert server.admin.pending_faults() == []


def test_fault_queue_can_be_listed_and_cleared(server, http):
    resp = http.post(
        server.url + "/_sandbox/faults", json={"faults": [{"kind": "reset"}, {"kind": "delay", "seconds": 1}]}
    )
    assert resp.json() == {"ok": True, "pending": 2}
    assert [f["kind"] for f in http.get(server.url + "/_sandbox/faults").json()["faults"]] == ["reset", "delay"]
    assert http.delete(server.url + "/_sandbox/faults").json() == {"ok": True}
    assert get_logs(http, server).status_code == 200


def test_clock_endpoint_freezes_and_releases_now(server, http):
    frozen = http.post(server.url + "/_sandbox/clock", json={"now": 1_700_000_000}).json()
    assert frozen == {"ok": True, "now": 1_700_000_000, "frozen": True}
    assert get_logs(http, server).json()["entries"][0]["date_create"] <= 1_700_000_000
    real = http.post(server.url + "/_sandbox/clock", json={"now": None}).json()
    assert real["frozen"] is False and abs(real["now"] - time.time()) < 60
    assert http.post(server.url + "/_sandbox/clock", json={"now": "soon"}).status_code == 400
    assert http.post(server.url + "/_sandbox/clock", json={}).status_code == 400


def test_truth_endpoint_matches_ground_truth(server, http):
    start, end = ts(NOW - 2 * HOUR), ts(NOW)
    truth = http.get(server.url + "/_sandbox/truth", params={"source": "slack", "start": start, "end": end}).json()
    expected = [e["id"] for e in ground_truth("slack", start, end, server.scenario, now=NOW)]
    assert truth == {"ids": expected, "count": len(expected)}
    assert server.admin.truth_ids("slack", NOW - 2 * HOUR, NOW) == expected
    assert (
        http.get(server.url + "/_sandbox/truth", params={"source": "okta", "start": start, "end": end}).status_code
        == 400
    )


def test_late_arrivals_appear_when_the_clock_moves(http):
    scenario = {
        "seed": 5,
        "sources": {
            "slack": {"token": TOKEN, "rate_limit_per_minute": 0, "lag": {"p_late": 0.3, "max_lag_seconds": 3600}}
        },
    }
    window = {"oldest": ts(NOW - 2 * HOUR), "latest": ts(NOW) - 1, "limit": 1000}
    with SandboxServer(scenario) as srv:
        srv.admin.set_clock(NOW)
        early = [e for page in fetch_pages(http, srv.url, window) for e in page]
        srv.admin.set_clock(NOW + HOUR)
        later = [e for page in fetch_pages(http, srv.url, window) for e in page]
    assert early == ground_truth("slack", NOW - 2 * HOUR, NOW, scenario, now=NOW)
    assert later == ground_truth("slack", NOW - 2 * HOUR, NOW, scenario, now=NOW + HOUR)
    late = {e["id"] for e in later} - {e["id"] for e in early}
    assert late and {e["id"] for e in early} < {e["id"] for e in later}


def test_reset_endpoint_clears_log_faults_and_clock(server, http):
    get_logs(http, server)
    server.admin.add_faults({"kind": "reset"})
    assert http.post(server.url + "/_sandbox/reset").json() == {"ok": True}
    assert server.admin.requests() == [] and server.admin.pending_faults() == []
    assert http.get(server.url + "/_sandbox/clock").json()["frozen"] is False

"""The Duo, Zendesk and Cloudflare fakes' odd behaviours, as their checklists describe them."""

from __future__ import annotations

import email.utils

import requests

from auditlogs.sources.duo import DuoSignature
from harness import sandbox_fixtures
from sandbox.cloudflare import ACCOUNT_ID
from sandbox.duo import stream_of

NOW = 1772323200  # 2026-03-01T00:00:00Z
IKEY, SKEY = "DISANDBOXTESTIKEY001", "sandboxTestDuoSecret0123456789abcdefghij"
ZENDESK = ("agent@northwind.example.com/token", "zdSandboxTest0123")
CLOUDFLARE = "cfSandboxTest0123456789"
SCENARIO = {
    "seed": 5,
    "sources": {
        "duo": {"events_per_hour": 4000, "token": f"{IKEY}:{SKEY}", "rate_limit_per_minute": 0, "burst_fraction": 0.5},
        "zendesk": {"events_per_hour": 600, "token": ":".join(ZENDESK), "rate_limit_per_minute": 2},
        "cloudflare": {"events_per_hour": 600, "token": CLOUDFLARE, "rate_limit_per_minute": 3},
    },
}
HOUR_MS = (1772319600000, 1772323199999)  # 2026-02-28T23:00 .. 23:59:59.999

server, api = sandbox_fixtures(SCENARIO, NOW)


SIGNER = DuoSignature(IKEY, SKEY)


def duo_get(api, path: str, params: dict) -> requests.Response:
    return requests.get(f"{api.url}{path}", params=params, auth=SIGNER, timeout=10)


def test_duo_refuses_a_signature_over_other_parameters_and_a_request_without_date(api):
    params = {"mintime": HOUR_MS[0], "maxtime": HOUR_MS[1], "limit": 10}
    assert duo_get(api, "/admin/v2/logs/telephony", params).json()["stat"] == "OK"
    tampered = DuoSignature(IKEY, SKEY)
    signed = tampered.authorization(
        "GET",
        api.url.split("//")[1],
        "/admin/v2/logs/telephony",
        [("mintime", str(HOUR_MS[0])), ("maxtime", str(HOUR_MS[1]))],
        email.utils.formatdate(),
    )
    wrong = requests.get(
        f"{api.url}/admin/v2/logs/telephony",
        params=params,
        timeout=10,
        headers={"Authorization": signed, "Date": email.utils.formatdate()},
    )  # limit not signed
    assert (wrong.status_code, wrong.json()["code"]) == (401, 40103)
    bare = requests.get(
        f"{api.url}/admin/v2/logs/telephony", params=params, headers={"Authorization": signed}, timeout=10
    )
    assert (bare.status_code, bare.json()["code"]) == (401, 40101)


def test_duo_v2_needs_mintime_below_maxtime_hides_the_last_two_minutes_and_shapes_next_offset_per_log(api):
    assert duo_get(api, "/admin/v2/logs/authentication", {"mintime": 5, "maxtime": 5}).json()["code"] == 40002
    recent = duo_get(
        api, "/admin/v2/logs/authentication", {"mintime": NOW * 1000 - 120_000, "maxtime": NOW * 1000, "limit": 1000}
    ).json()
    assert recent["response"]["authlogs"] == []
    auth = duo_get(api, "/admin/v2/logs/authentication", {"mintime": HOUR_MS[0], "maxtime": HOUR_MS[1], "limit": 5})
    tele = duo_get(api, "/admin/v2/logs/telephony", {"mintime": HOUR_MS[0], "maxtime": HOUR_MS[1], "limit": 5})
    assert isinstance(auth.json()["response"]["metadata"]["next_offset"], list)
    assert isinstance(tele.json()["response"]["metadata"]["next_offset"], str)
    assert isinstance(tele.json()["response"]["metadata"]["total_objects"], dict)
    events = auth.json()["response"]["authlogs"]
    assert [e["timestamp"] for e in events] == sorted((e["timestamp"] for e in events), reverse=True)  # desc default


def test_duo_administrator_log_answers_its_earliest_1000_rows_from_mintime_in_seconds(api):
    rows = duo_get(api, "/admin/v1/logs/administrator", {"mintime": HOUR_MS[0] // 1000 - 3 * 3600}).json()["response"]
    assert len(rows) == 1000 and all(stream_of(r) == "administrator" and "txid" not in r for r in rows)
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times) and times[0] >= HOUR_MS[0] // 1000 - 3 * 3600


def test_zendesk_wants_both_created_at_values_is_newest_first_by_default_and_429s_in_plain_text(api):
    url = f"{api.url}/api/v2/audit_logs.json"
    bounds = {"filter[created_at][]": ["2026-02-28T23:00:00Z", "2026-02-28T23:59:59Z"]}
    assert (
        requests.get(url, params={"filter[created_at][]": "2026-02-28T23:00:00Z"}, auth=ZENDESK, timeout=10).status_code
        == 400
    )
    page = requests.get(url, params=bounds, auth=ZENDESK, timeout=10).json()
    ids = [e["id"] for e in page["audit_logs"]]
    assert ids == sorted(ids, reverse=True) and page["meta"]["has_more"] and "filter" in page["links"]["next"]
    limited = requests.get(url, params=bounds, auth=ZENDESK, timeout=10)
    assert limited.status_code == 429 and limited.headers["Content-Type"] == "text/plain"
    assert limited.text == "Number of allowed API requests per minute exceeded" and limited.headers["Retry-After"]
    assert requests.get(url, params=bounds, auth=("agent@northwind.example.com", ZENDESK[1]), timeout=10).json() == {
        "error": "Couldn't authenticate you"
    }


def test_cloudflare_v2_needs_both_bounds_caps_limit_and_blocks_every_call_for_five_minutes_once_over(api):
    url, auth = f"{api.url}/client/v4/accounts/{ACCOUNT_ID}/logs/audit", {"Authorization": f"Bearer {CLOUDFLARE}"}
    missing = requests.get(url, params={"since": "2026-02-28T23:00:00.000Z"}, headers=auth, timeout=10)
    assert missing.status_code == 400 and missing.json()["success"] is False
    too_many = requests.get(
        url, params={"since": "2026-02-28", "before": "2026-03-01", "limit": 1001}, headers=auth, timeout=10
    )
    assert too_many.status_code == 400
    day = {"since": "2026-02-28", "before": "2026-03-01"}
    assert requests.get(url, params=day, headers=auth, timeout=10).status_code == 200  # the third of 3 a minute
    blocked = requests.get(url, params=day, headers=auth, timeout=10)
    assert blocked.status_code == 429 and 295 <= int(blocked.headers["Retry-After"]) <= 300
    assert (
        requests.get(f"{api.url}/client/v4/accounts/{ACCOUNT_ID}/audit_logs", headers=auth, timeout=10).status_code
        == 429
    )

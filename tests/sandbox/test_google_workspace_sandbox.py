"""The Google Workspace Reports API (activities.list) and its token endpoint as a collector sees them."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer, ground_truth
from sandbox.google_workspace import PREFIX, SCOPE

TOKEN = "ya29.static-sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SCENARIO = {
    "seed": 8,
    "sources": {"google_workspace": {"events_per_hour": 600, "token": TOKEN, "rate_limit_per_minute": 0}},
}


def rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


server, api = sandbox_fixtures(SCENARIO, NOW)


def all_pages(http, url, params, headers=AUTH):
    pages, token = [], None
    while True:
        body = http.get(url, params={**params, **({"pageToken": token} if token else {})}, headers=headers).json()
        pages.append(body)
        token = body.get("nextPageToken")
        if not token:
            return pages


def truth(app, start, end):
    return [
        e for e in ground_truth("google_workspace", start, end, SCENARIO, now=NOW) if e["id"]["applicationName"] == app
    ]


def test_paging_returns_one_applications_inclusive_window_newest_first(api, http):
    start, end = NOW - 2 * HOUR, NOW - HOUR
    pages = all_pages(
        http, api.url + PREFIX + "login", {"startTime": rfc(start), "endTime": rfc(end), "maxResults": 40}
    )
    items = [i for p in pages for i in p.get("items", [])]
    assert items == truth("login", start, end + timedelta(seconds=1)) and len(pages) > 3
    assert [i["id"]["time"] for i in items] == sorted((i["id"]["time"] for i in items), reverse=True)
    assert all(p["kind"] == "admin#reports#activities" for p in pages) and "nextPageToken" not in pages[-1]


def test_empty_answer_omits_items(api, http):
    body = http.get(
        api.url + PREFIX + "groups",
        params={"startTime": rfc(NOW - timedelta(seconds=1)), "endTime": rfc(NOW - timedelta(seconds=1))},
        headers=AUTH,
    ).json()
    assert body == {"kind": "admin#reports#activities", "etag": '"sandbox"'}


def test_page_token_only_works_with_the_same_parameters(api, http):
    params = {"startTime": rfc(NOW - 2 * HOUR), "endTime": rfc(NOW - HOUR), "maxResults": 10}
    token = http.get(api.url + PREFIX + "login", params=params, headers=AUTH).json()["nextPageToken"]
    assert http.get(api.url + PREFIX + "login", params={**params, "pageToken": token}, headers=AUTH).status_code == 200
    forgetful = http.get(api.url + PREFIX + "login", params={"pageToken": token}, headers=AUTH)
    other_app = http.get(api.url + PREFIX + "admin", params={**params, "pageToken": token}, headers=AUTH)
    for resp in (forgetful, other_app):
        assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "params",
    [
        {"startTime": "2025-06-01"},
        {"startTime": rfc(NOW + HOUR)},
        {"startTime": rfc(NOW - HOUR), "endTime": rfc(NOW - 2 * HOUR)},
        {"maxResults": 1001},
        {"maxResults": 0},
    ],
)
def test_bad_parameters_are_google_400s(api, http, params):
    resp = http.get(api.url + PREFIX + "admin", params=params, headers=AUTH)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and error["errors"][0]["reason"] == "invalid"


@pytest.mark.parametrize(
    ("headers", "reason"), [({}, "required"), ({"Authorization": "Bearer ya29.other"}, "authError")]
)
def test_bearer_token_is_required(api, http, headers, reason):
    resp = http.get(api.url + PREFIX + "admin", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["status"] == "UNAUTHENTICATED" and resp.json()["error"]["errors"][0]["reason"] == reason


def jwt(claims: dict) -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_token_endpoint_issues_tokens_for_the_reports_scope_and_a_subject(api, http):
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    good = http.post(
        api.url + "/token", data={"grant_type": grant, "assertion": jwt({"scope": SCOPE, "sub": "admin@example.com"})}
    )
    assert good.status_code == 200 and good.json()["token_type"] == "Bearer"
    issued = {"Authorization": "Bearer " + good.json()["access_token"]}
    assert http.get(api.url + PREFIX + "admin", params={"maxResults": 1}, headers=issued).status_code == 200
    no_subject = http.post(api.url + "/token", data={"grant_type": grant, "assertion": jwt({"scope": SCOPE})})
    wrong_scope = http.post(
        api.url + "/token", data={"grant_type": grant, "assertion": jwt({"scope": "openid", "sub": "a@b.c"})}
    )
    assert no_subject.json()["error"] == wrong_scope.json()["error"] == "unauthorized_client"


def test_rate_limit_is_a_google_429(http):
    scenario = {
        "seed": 1,
        "sources": {"google_workspace": {"token": TOKEN, "rate_limit_per_minute": 1, "events_per_hour": 5}},
    }
    with SandboxServer(scenario) as srv:
        first = http.get(srv.url + PREFIX + "login", headers=AUTH)
        second = http.get(srv.url + PREFIX + "login", headers=AUTH)
    assert first.status_code == 200 and second.status_code == 429
    assert second.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"

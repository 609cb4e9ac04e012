"""The GitLab, Atlassian and PagerDuty fakes' odd behaviours, as their checklists describe them."""

from __future__ import annotations

from harness import sandbox_fixtures
from sandbox.atlassian import ORG_ID
from sandbox.vendor import parse_rfc3339

NOW = 1772323200  # 2026-03-01T00:00:00Z
TOKENS = {"gitlab": "glpat-sandbox-test", "atlassian": "atlassian-sandbox-test", "pagerduty": "pd-sandbox-test"}
SCENARIO = {
    "seed": 5,
    "sources": {
        name: {"events_per_hour": 600, "token": token, "rate_limit_per_minute": 0} for name, token in TOKENS.items()
    },
}
GITLAB = {"PRIVATE-TOKEN": TOKENS["gitlab"]}
WINDOW = {"created_after": "2026-02-28T20:00:00Z", "created_before": "2026-02-28T21:00:00Z"}

server, api = sandbox_fixtures(SCENARIO, NOW)


def test_gitlab_an_unencoded_group_path_is_a_404(api, http):
    assert http.get(f"{api.url}/api/v4/groups/northwind%2Fsecurity/audit_events", headers=GITLAB).status_code == 200
    assert http.get(f"{api.url}/api/v4/groups/northwind/security/audit_events", headers=GITLAB).status_code == 404


def test_gitlab_keyset_is_newest_first_only_and_created_before_excludes_later_milliseconds(api, http):
    url = f"{api.url}/api/v4/groups/4242/audit_events"
    keyset = {**WINDOW, "pagination": "keyset", "per_page": 100}
    assert http.get(url, params={**keyset, "sort": "asc"}, headers=GITLAB).status_code == 400
    response, events = http.get(url, params=keyset, headers=GITLAB), []
    while True:
        events += response.json()
        if "next" not in response.links:
            break
        response = http.get(response.links["next"]["url"], headers=GITLAB)
    assert response.json() == [] or len(response.json()) < 100
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True) and len(ids) > 300
    assert max(parse_rfc3339(e["created_at"]) for e in events) <= 1772312400  # 21:00:00.000 inclusive, no later ms


def test_gitlab_instance_refuses_more_than_30_days_and_no_token_is_a_401_message(api, http):
    wide = {"created_after": "2026-01-01T00:00:00Z", "created_before": "2026-02-28T00:00:00Z"}
    assert http.get(f"{api.url}/api/v4/audit_events", params=wide, headers=GITLAB).status_code == 400
    assert http.get(f"{api.url}/api/v4/audit_events", params=WINDOW).json() == {"message": "401 Unauthorized"}


def test_atlassian_reads_milliseconds_and_a_cursor_without_filters_widens_the_query(api, http):
    url, auth = f"{api.url}/admin/v1/orgs/{ORG_ID}/events", {"Authorization": f"Bearer {TOKENS['atlassian']}"}
    window = {"from": 1772308800000, "to": 1772312400000}
    assert http.get(url, params={"from": 1772308800, "to": 1772312400}, headers=auth).json()["data"] == []  # 1970
    first = http.get(url, params=window, headers=auth).json()
    assert first["meta"]["next"] and "from=1772308800000" in first["links"]["next"]
    bare = http.get(url, params={"cursor": first["meta"]["next"]}, headers=auth).json()["data"]
    assert bare and bare[0]["attributes"]["time"] < first["data"][-1]["attributes"]["time"]


def test_pagerduty_until_is_exclusive_and_needs_since(api, http):
    url, auth = f"{api.url}/audit/records", {"Authorization": f"Token token={TOKENS['pagerduty']}"}
    assert http.get(url, params={"until": "2026-02-28T21:00:00Z"}, headers=auth).status_code == 400
    body = http.get(
        url, params={"since": "2026-02-28T20:00:00Z", "until": "2026-02-28T21:00:00Z", "limit": 1000}, headers=auth
    ).json()
    times = [parse_rfc3339(r["execution_time"]) for r in body["records"]]
    assert body["next_cursor"] is None and times == sorted(times, reverse=True) and max(times) < 1772312400

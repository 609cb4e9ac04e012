"""The GitHub audit log as a collector sees it: created: bounds, include, order, Link next, limits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer
from sandbox.github import ENTERPRISE, ORG

TOKEN = "ghp_sandboxToken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = 1772323200
SCENARIO = {"seed": 4, "sources": {"github": {"events_per_hour": 600, "token": TOKEN, "rate_limit_per_minute": 0}}}
PHRASE = "created:>=2026-02-28T20:00:00Z created:<2026-02-28T21:00:00Z"


server, api = sandbox_fixtures(SCENARIO, NOW)


def follow(http, url, params):
    pages, response = [], http.get(url, params=params, headers=AUTH)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if "next" not in response.links:
            return pages
        response = http.get(response.links["next"]["url"], headers=AUTH)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_link_next_pages_cover_the_window_in_order(api, http, order):
    pages = follow(
        http, f"{api.url}/orgs/{ORG}/audit-log", {"phrase": PHRASE, "include": "all", "order": order, "per_page": 100}
    )
    events = [e for p in pages for e in p]
    stamps = [e["@timestamp"] for e in events]
    assert len(pages) > 3 and stamps == sorted(stamps, reverse=order == "desc")
    assert 1772308800000 <= min(stamps) and max(stamps) < 1772312400000
    assert len({e["_document_id"] for e in events}) == len(events)
    assert any(e["action"].startswith("git.") for e in events)


def test_include_defaults_to_web_and_order_to_desc_and_per_page_to_30(api, http):
    resp = http.get(f"{api.url}/enterprises/{ENTERPRISE}/audit-log", params={"phrase": PHRASE}, headers=AUTH)
    events = resp.json()
    assert len(events) == 30 and not any(e["action"].startswith("git.") for e in events)
    assert events[0]["@timestamp"] > events[-1]["@timestamp"]
    nxt = parse_qs(urlsplit(resp.links["next"]["url"]).query)
    assert nxt["phrase"] == [PHRASE] and nxt["after"][0] and resp.headers["x-ratelimit-resource"] == "audit_log"


def test_ghes_prefix_and_fractional_seconds_refused(api, http):
    ok = http.get(f"{api.url}/api/v3/orgs/{ORG}/audit-log", params={"phrase": PHRASE}, headers=AUTH)
    assert ok.status_code == 200 and ok.links["next"]["url"].startswith(f"{api.url}/api/v3/")
    bad = http.get(
        f"{api.url}/orgs/{ORG}/audit-log", params={"phrase": "created:>=2026-02-28T20:00:00.5Z"}, headers=AUTH
    )
    assert bad.status_code == 422 and "whole seconds" in bad.json()["message"]


def test_401_bad_credentials_and_403_with_remaining_zero_when_the_quota_is_spent(http):
    scenario = {"seed": 4, "sources": {"github": {"token": TOKEN, "rate_limit_per_minute": 2}}}
    with SandboxServer(scenario) as server:
        url = f"{server.url}/orgs/{ORG}/audit-log"
        assert http.get(url, headers={"Authorization": "Bearer nope"}).json()["message"] == "Bad credentials"
        answers = [http.get(url, headers=AUTH) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 403]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
        assert "rate limit exceeded" in answers[2].json()["message"]

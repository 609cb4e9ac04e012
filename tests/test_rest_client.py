"""`type: rest` against the sandbox: the README's PagerDuty example sends exactly the declared requests,
the same vocabulary re-declares Okta's System Log (Link header paging, SSWS header) and collects what the
built-in source does, and a wrong declaration is a config error naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from auditlogs.config import load_config
from auditlogs.errors import AuthError
from auditlogs.window import Window
from harness import Connection, collect_window, readme_rest_example, sandbox_fixtures
from sandbox import ground_truth
from sandbox.vendor import parse_rfc3339

UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
TOKENS = {"pagerduty": "u+restClientPagerDutyKey0123", "okta": "00restClientOktaToken0123456789"}
SCENARIO = {
    "seed": 23,
    "sources": {
        name: {"events_per_hour": 900, "burst_fraction": 0.3, "token": token, "rate_limit_per_minute": 0}
        for name, token in TOKENS.items()
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 250000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 250000, tzinfo=UTC))
PAGERDUTY = {k: v for k, v in readme_rest_example()["pagerduty"].items() if k != "conn_id"}
OKTA = {
    "stream": "systemlog",
    "path": "api/v1/logs",
    "auth": {"scheme": "header", "header": "Authorization", "prefix": "SSWS "},
    "window": {"start_param": "since", "end_param": "until", "format": "rfc3339"},
    "params": {"sortOrder": "ASCENDING"},
    "page_size": 200,
    "page_size_param": "limit",
    "paging": {"strategy": "link_header"},
    "id": "uuid",
    "time": {"field": "published"},
    "order": "oldest_first",
}

server, api = sandbox_fixtures(SCENARIO, NOW)


def in_window(source: str, id_field: str, time_field: str) -> set[str]:
    events = ground_truth(
        source, WINDOW.start - timedelta(seconds=1), WINDOW.end + timedelta(seconds=1), SCENARIO, now=NOW
    )
    return {
        e[id_field] for e in events if WINDOW.start.timestamp() <= parse_rfc3339(e[time_field]) < WINDOW.end.timestamp()
    }


def run(api, tmp_path, source: str, options: dict, token: str | None = None):
    connection = Connection(f"{source}_api", api.url, token or TOKENS[source])
    return collect_window("rest", options, options["stream"], connection, WINDOW, tmp_path)


def test_the_readme_example_sends_the_declared_requests_and_re_sends_the_window_with_the_cursor(api, tmp_path):
    collected = run(api, tmp_path, "pagerduty", {**PAGERDUTY, "page_size": 300})
    ids = [e["id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == in_window("pagerduty", "id", "execution_time")
    sent = api.admin.requests()
    first = {"since": ["2026-03-01T04:00:00.250Z"], "until": ["2026-03-01T05:00:00.250Z"], "limit": ["300"]}
    assert sent[0]["query"] == first and len(sent) == collected.result.pages == -(-len(ids) // 300)
    for request in sent[1:]:
        assert {k: v for k, v in request["query"].items() if k != "cursor"} == first and request["query"]["cursor"][0]
    assert {(r["path"], r["headers"]["accept"]) for r in sent} == {
        ("/audit/records", "application/vnd.pagerduty+json;version=2")
    }
    assert {r["auth_scheme"] for r in sent} == {"Token"} and all(r["auth_ok"] for r in sent)


def test_okta_declared_in_yaml_pages_by_the_link_header_like_the_built_in_source(api, tmp_path):
    declared = run(api, tmp_path / "rest", "okta", OKTA)
    built_in = collect_window(
        "okta", {"limit": 200}, "systemlog", Connection("okta", api.url, TOKENS["okta"]), WINDOW, tmp_path / "okta"
    )
    assert [e["uuid"] for e in declared.events] == [e["uuid"] for e in built_in.events]
    assert {e["uuid"] for e in declared.events} == in_window("okta", "uuid", "published") and declared.result.pages > 3


def test_a_refused_key_names_the_declared_permission(api, tmp_path):
    with pytest.raises(AuthError, match="a REST API key"):
        run(api, tmp_path, "pagerduty", PAGERDUTY, token="u+wrongKey")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"paging": {"strategy": "body_cursor", "cursor": "next_cursor"}},
            "field 'paging': paging strategy 'body_cursor' takes 'cursor', 'param'",
        ),
        ({"window": {"start_param": "since", "end_param": "until", "format": "iso"}}, "field 'window.format'"),
        ({"auth": {"scheme": "header"}}, "field 'auth': 'header' names the request header"),
        ({"order": "random"}, "field 'order'"),
        ({"id": "records[0].id"}, "field 'id'"),
        ({"pagination": "cursor"}, "field 'pagination': unknown key"),
    ],
)
def test_a_wrong_declaration_is_a_config_error_naming_the_field(tmp_path, change, message):
    path = tmp_path / "sources.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"bucket": "bkt", "start_date": "2026-01-01"},
                "sources": {"pagerduty": {**readme_rest_example()["pagerduty"], **change}},
            }
        )
    )
    loaded = load_config(path)
    assert message in loaded.errors["pagerduty"] and not loaded.sources

"""The Zendesk and Cloudflare sources against the sandbox: Zendesk's two-value created_at filter, oldest
first, paged by has_more and after_cursor with the filters re-sent; Cloudflare v2's cursor read from either
documented place and v1's numbered pages, both trimmed to the exact window."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditlogs.errors import AuthError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import ground_truth
from sandbox.cloudflare import ACCOUNT_ID, ACCOUNT_ID_AFTER, EMAIL, v1_of

UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
ZENDESK_LOGIN, ZENDESK_TOKEN = "security@northwind.example.com/token", "zdClientTestToken0123456789"
CLOUDFLARE_TOKEN = "cfClientTestToken0123456789abcdef"
SCENARIO = {
    "seed": 29,
    "sources": {
        "zendesk": {
            "events_per_hour": 900,
            "burst_fraction": 0.4,
            "token": f"{ZENDESK_LOGIN}:{ZENDESK_TOKEN}",
            "rate_limit_per_minute": 0,
        },
        "cloudflare": {
            "events_per_hour": 2500,
            "burst_fraction": 0.3,
            "token": CLOUDFLARE_TOKEN,
            "rate_limit_per_minute": 0,
        },
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))

server, api = sandbox_fixtures(SCENARIO, NOW)


def truth(source: str) -> list[dict]:
    return ground_truth(source, WINDOW.start, WINDOW.end, SCENARIO, now=NOW)


def zendesk(api, tmp_path, login=ZENDESK_LOGIN, password=ZENDESK_TOKEN, extra=None):
    connection = Connection("zendesk_api", api.url, password, login=login, extra_dejson=extra or {})
    return collect_window("zendesk", {}, "audit_logs", connection, WINDOW, tmp_path)


def cloudflare(api, tmp_path, account=ACCOUNT_ID, **options):
    connection = Connection("cloudflare_api", f"{api.url}/client/v4", CLOUDFLARE_TOKEN)
    return collect_window("cloudflare", {"account_id": account, **options}, "audit_logs", connection, WINDOW, tmp_path)


def test_zendesk_asks_both_created_at_bounds_oldest_first_and_pages_until_has_more_is_false(api, tmp_path):
    collected = zendesk(api, tmp_path)
    ids = [e["id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == {e["id"] for e in truth("zendesk")}
    sent = api.admin.requests()
    # The second before the window is asked too (the bounds' inclusiveness is undocumented) and trimmed.
    padded = len(ground_truth("zendesk", WINDOW.start.timestamp() - 1, WINDOW.end, SCENARIO, now=NOW))
    assert len(sent) == collected.result.pages == -(-padded // 100) > 1
    assert sent[0]["query"] == {
        "filter[created_at][]": ["2026-03-01T03:59:59Z", "2026-03-01T05:00:00Z"],
        "sort": ["created_at"],
        "page[size]": ["100"],
    }
    for request in sent[1:]:  # the filters re-sent with the cursor
        assert request["query"]["filter[created_at][]"] == sent[0]["query"]["filter[created_at][]"]
        assert request["query"]["page[after]"][0]
    assert ids == sorted(ids)  # oldest first: the integer ids grow with time


def test_zendesk_login_without_the_token_suffix_gets_it_and_oauth_is_a_bearer(api, tmp_path):
    zendesk(api, tmp_path / "a", login="security@northwind.example.com")
    zendesk(api, tmp_path / "b", login=None, extra={"auth": "oauth"})
    assert [r["auth_scheme"] for r in api.admin.requests()][-1] == "Bearer"
    assert all(r["auth_ok"] for r in api.admin.requests())


def test_zendesk_refuses_a_wrong_token_naming_the_connection(api, tmp_path):
    with pytest.raises(AuthError, match="zendesk_api") as failure:
        zendesk(api, tmp_path, password="zdWrongToken0123456789")
    assert "Couldn't authenticate you" in str(failure.value) and "zdWrongToken0123456789" not in str(failure.value)


@pytest.mark.parametrize("account", [ACCOUNT_ID, ACCOUNT_ID_AFTER])
def test_cloudflare_v2_reads_the_cursor_wherever_the_api_puts_it(api, tmp_path, account):
    collected = cloudflare(api, tmp_path, account)
    ids = [e["id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == {e["id"] for e in truth("cloudflare")}
    sent = api.admin.requests()
    assert len(sent) == collected.result.pages == -(-len(ids) // 1000) > 1
    assert sent[0]["query"] == {
        "since": ["2026-03-01T03:59:59.999Z"],
        "before": ["2026-03-01T05:00:00Z"],
        "direction": ["asc"],
        "limit": ["1000"],
    }
    assert all(r["query"]["cursor"][0] and r["query"]["since"] == sent[0]["query"]["since"] for r in sent[1:])
    assert {r["auth_scheme"] for r in sent} == {"Bearer"}


def test_cloudflare_v1_pages_by_number_until_an_empty_page(api, tmp_path):
    collected = cloudflare(api, tmp_path, api_version="v1")
    ids = [e["id"] for e in collected.events]
    assert set(ids) == {v1_of(e)["id"] for e in truth("cloudflare")} and len(ids) == len(set(ids))
    assert all(isinstance(e["action"]["result"], bool) for e in collected.events)
    pages = [r["query"]["page"] for r in api.admin.requests()]
    assert pages == [[str(n)] for n in range(1, -(-len(ids) // 1000) + 2)]  # the last one empty


def test_cloudflare_global_api_key_goes_in_its_two_headers(api, tmp_path):
    connection = Connection(
        "cloudflare_api", f"{api.url}/client/v4", CLOUDFLARE_TOKEN, login=EMAIL, extra_dejson={"auth": "api_key"}
    )
    collect_window("cloudflare", {"account_id": ACCOUNT_ID}, "audit_logs", connection, WINDOW, tmp_path)
    sent = api.admin.requests()
    assert sent[0]["headers"]["x-auth-email"] == EMAIL and "authorization" not in sent[0]["headers"]


def test_cloudflare_v2_retention_defaults_to_30_days_and_v1_to_18_months():
    from harness import source_config

    assert source_config("cloudflare", "c", account_id="a").retention.days == 30
    assert source_config("cloudflare", "c", account_id="a", api_version="v1").retention.days == 548
    assert source_config("cloudflare", "c", account_id="a", retention="400d").retention.days == 400

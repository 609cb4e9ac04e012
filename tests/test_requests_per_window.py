"""Requests one window costs, against the minimum ceil(events / max page size): a 10,000-event window
for each source at its largest page size (the figures are printed with -s)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from harness import Connection, collect_window
from sandbox import SandboxServer
from sandbox.github import ORG

from auditlogs.sources import SPECS
from auditlogs.window import Window

UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
#: source -> (config, stream, events per hour so that the stream's window holds 10,000 events or about)
CASES = {
    "onepassword": ({"streams": ["auditevents"]}, "auditevents", 30_000),
    "github": ({"org": ORG, "include": "all"}, "audit", 10_000),
    "okta": ({}, "systemlog", 10_000),
}


@pytest.mark.parametrize("source", sorted(CASES))
def test_requests_per_window_are_the_minimum(source, tmp_path):
    options, stream, per_hour = CASES[source]
    scenario = {"seed": 17, "sources": {source: {"events_per_hour": per_hour, "token": "token-" + source, "rate_limit_per_minute": 0}}}
    with SandboxServer(scenario) as srv:
        srv.clock.set(NOW.timestamp())
        collected = collect_window(source, options, stream, Connection("c", srv.url, "token-" + source), WINDOW, tmp_path)
    events, requests = collected.result.written, collected.client.stats.requests
    minimum = math.ceil(events / SPECS[source].max_page_size)
    print(f"\n{source}: {events} events, {requests} requests, minimum {minimum}")
    assert 9_500 <= events <= 10_500
    assert requests == minimum

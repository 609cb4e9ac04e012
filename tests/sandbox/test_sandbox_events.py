"""Event generation and ground truth: determinism, rates, bursts, lag, windows, scenarios."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest

from conftest import NOW, SCENARIO, ts
from sandbox import DEFAULT_SCENARIO_PATH, LagProfile, ground_truth, load_scenario

HOUR = timedelta(hours=1)
LAGGY = {"seed": 5, "sources": {"slack": {"events_per_hour": 600, "lag": {"p_late": 0.3, "max_lag_seconds": 3600}}}}


def ids(events: list[dict]) -> list[str]:
    return [e["id"] for e in events]


def test_same_inputs_same_events_other_seed_other_events():
    first = ground_truth("slack", NOW - 2 * HOUR, NOW, SCENARIO, now=NOW)
    assert ground_truth("slack", NOW - 2 * HOUR, NOW, SCENARIO, now=NOW) == first
    other_seed = {**SCENARIO, "seed": 12}
    assert not set(ids(first)) & set(ids(ground_truth("slack", NOW - 2 * HOUR, NOW, other_seed, now=NOW)))


def test_windows_compose_and_are_half_open():
    start, mid, end = NOW - 3 * HOUR, NOW - 90 * timedelta(minutes=1), NOW
    whole = ground_truth("slack", start, end, SCENARIO, now=NOW)
    assert whole == ground_truth("slack", mid, end, SCENARIO, now=NOW) + ground_truth(
        "slack", start, mid, SCENARIO, now=NOW
    )
    assert all(ts(start) <= e["date_create"] < ts(end) for e in whole)
    edge = whole[len(whole) // 2]["date_create"]
    at_edge = [e for e in whole if e["date_create"] == edge]
    assert ground_truth("slack", edge, edge + 1, SCENARIO, now=NOW) == at_edge
    assert ground_truth("slack", edge - 10, edge, SCENARIO, now=NOW)[0]["date_create"] < edge


def test_events_per_hour_and_same_second_bursts():
    hour = ground_truth("slack", NOW - HOUR, NOW, SCENARIO, now=NOW)
    assert len(hour) == 600
    groups = Counter(e["date_create"] for e in hour)
    in_groups = sum(n for n in groups.values() if n > 1)
    assert in_groups >= 0.2 * len(hour)
    assert max(groups.values()) >= 10


def test_newest_first_by_time_then_id():
    events = ground_truth("slack", NOW - 2 * HOUR, NOW, SCENARIO, now=NOW)
    keys = [(e["date_create"], e["id"]) for e in events]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)


def test_event_bodies_are_realistic_and_varied():
    events = ground_truth("slack", NOW - 24 * HOUR, NOW, SCENARIO, now=NOW)
    sizes = [len(orjson.dumps(e)) for e in events]
    assert 500 <= sum(sizes) / len(sizes) <= 800
    for e in events[:200]:
        assert {"id", "date_create", "action", "actor", "entity", "context"} <= set(e)
        assert e["actor"]["type"] == "user" and {"id", "name", "email"} <= set(e["actor"]["user"])
        entity_type = e["entity"]["type"]
        assert entity_type in {"user", "channel", "file", "app", "workspace"} and "id" in e["entity"][entity_type]
        assert e["context"]["location"]["type"] in {"enterprise", "workspace"}
        assert e["context"]["ua"] and e["context"]["ip_address"]
    assert len({e["action"] for e in events}) >= 25
    assert {type(e["context"]["session_id"]) for e in events} == {int, str, type(None)}
    assert {"USLACKUSER", "USLACKSECURITY"} <= {e["actor"]["user"]["id"] for e in events}
    assert any("details" in e for e in events) and any("app" in e["context"] for e in events)


def test_late_events_become_visible_with_time():
    start, end = NOW - 2 * HOUR, NOW
    seen_now = ground_truth("slack", start, end, LAGGY, now=NOW)
    seen_later = ground_truth("slack", start, end, LAGGY, now=NOW + 2 * HOUR)
    assert set(ids(seen_now)) < set(ids(seen_later))
    # Lag never exceeds max_lag_seconds: anything older than that is already complete.
    settled = NOW - HOUR
    assert [e for e in seen_now if e["date_create"] < ts(settled)] == [
        e for e in seen_later if e["date_create"] < ts(settled)
    ]
    # The lag profile changes visibility only, never the events themselves.
    no_lag = {"seed": 5, "sources": {"slack": {"events_per_hour": 600}}}
    assert seen_later == ground_truth("slack", start, end, no_lag, now=NOW + 2 * HOUR)


def test_future_and_expired_events_are_invisible():
    assert ground_truth("slack", NOW, NOW + HOUR, SCENARIO, now=NOW) == []
    assert ground_truth("slack", NOW - timedelta(days=91), NOW - timedelta(days=90, hours=1), SCENARIO, now=NOW) == []


def test_unix_seconds_equal_datetimes_and_naive_datetimes_are_rejected():
    assert ground_truth("slack", ts(NOW - HOUR), ts(NOW), SCENARIO, now=ts(NOW)) == ground_truth(
        "slack", NOW - HOUR, NOW, SCENARIO, now=NOW
    )
    with pytest.raises(ValueError, match="naive"):
        ground_truth("slack", datetime(2025, 6, 2), NOW, SCENARIO, now=NOW)
    with pytest.raises(ValueError, match="unknown source"):
        ground_truth("no_such_api", NOW - HOUR, NOW, SCENARIO, now=NOW)


def test_scenarios_load_from_file_and_dict_and_reject_typos():
    default = load_scenario(DEFAULT_SCENARIO_PATH)
    assert default == load_scenario(None)
    assert default.seed == 7 and default.sources["slack"].rate_limit_per_minute == 50
    laggy = load_scenario(LAGGY)
    assert laggy.sources["slack"].lag == LagProfile(p_late=0.3, max_lag_seconds=3600)
    assert load_scenario(laggy.to_dict()) == laggy
    with pytest.raises(ValueError, match="events_per_huor"):
        load_scenario({"seed": 1, "sources": {"slack": {"events_per_huor": 5}}})
    with pytest.raises(ValueError, match="burst_fraction"):
        load_scenario({"seed": 1, "sources": {"slack": {"burst_fraction": 2}}})

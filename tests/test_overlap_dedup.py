"""De-duplication across overlapping runs, late-arrival counts and the sweep, over many hourly intervals.

Each interval goes through the operator's collection core (`collect_interval`, the same code the Airflow task
runs) against the in-thread sandbox and the GCS emulator, with the sandbox clock at the interval's run time,
so events arrive late exactly as the scenario's lag profile says. Expected outcomes come from the scenario's
events and lags alone: what each run can see, what was stored first where, which events arrived late and how
late at least, and which were never fetched by a normal run.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from auditlogs.operators.collect import collect_interval
from auditlogs.operators.sweep import sweep
from auditlogs.sink.overlap import EarlierRun, Overlap, bin_of, digest, epoch_ms
from auditlogs.sources import SPECS
from auditlogs.window import Window
from harness import Connection, api_client
from sandbox import SandboxServer, microsoft365
from sandbox.gcs import GcsEmulatorProcess
from sandbox.scenario import load_scenario
from sandbox.sources import event_store
from sandbox.truth import truth_events

UTC = timezone.utc
HOUR = timedelta(hours=1)
BUCKET = "dedup-bucket"
SLACK_TOKEN = "xoxp-dedup-0000-token"
GOOGLE_TOKEN = "ya29.dedup-static-token-42"
OKTA_TOKEN = "00dedup-okta-api-token-7f"
O365_CLIENT, O365_SECRET = "0d6f1c2a-dedup-o365", "o365-dedup-client-secret"
TOKENS = {"slack": SLACK_TOKEN, "google_workspace": GOOGLE_TOKEN, "okta": OKTA_TOKEN}
T0 = datetime(2026, 3, 2, tzinfo=UTC)
RUN_AFTER = timedelta(minutes=2)
SCENARIO = {
    "seed": 66,
    "sources": {
        # a fifth of the events arrive up to 2 h late: many within 30 min, some later
        "slack": {
            "events_per_hour": 300,
            "burst_fraction": 0.2,
            "token": SLACK_TOKEN,
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.2, "max_lag_seconds": 2 * 3600},
        },
        # up to 5 h late against a 3 h delay; Google's key is derived from its id tuple
        "google_workspace": {
            "events_per_hour": 900,
            "burst_fraction": 0.2,
            "token": GOOGLE_TOKEN,
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.2, "max_lag_seconds": 5 * 3600},
        },
        # small lags (up to 4 min) against a 3 h delay: the advisor should say the delay is far too long
        "okta": {
            "events_per_hour": 300,
            "burst_fraction": 0.2,
            "token": OKTA_TOKEN,
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.3, "max_lag_seconds": 240},
        },
        # 15% of the content blobs are listed up to 2 h after their contentCreated, against a 15 min delay
        "microsoft365": {
            "events_per_hour": 600,
            "token": f"{O365_CLIENT}:{O365_SECRET}",
            "rate_limit_per_minute": 0,
            "listing_lag": {"p_late": 0.15, "max_lag_seconds": 2 * 3600},
        },
    },
}
FIGURES: dict[str, float] = {}


@dataclass(frozen=True)
class Case:
    type: str
    stream: str
    delay: timedelta
    prefix: str
    dedup: bool = True
    sweep: timedelta | None = None

    @property
    def spec(self):
        return SPECS[self.type]

    def config(self):
        return self.spec.config.model_validate(
            {
                "name": "src",
                "type": self.type,
                "conn_id": "api",
                "bucket": BUCKET,
                "prefix": self.prefix,
                "start_date": T0,
                "delay": f"{int(self.delay.total_seconds())}s",
                "dedup": self.dedup,
                "sweep": self.sweep and f"{int(self.sweep.total_seconds())}s",
                "sweep_schedule": "@hourly",
                **({"applications": [self.stream]} if self.type == "google_workspace" else {}),
                **({"content_types": ["Audit.Exchange"]} if self.type == "microsoft365" else {}),
            }
        )

    def key(self, event: dict) -> str:
        return self.spec.event_id(event)

    def connection(self, api) -> Connection:
        if self.type == "microsoft365":
            extra = {"tenant_id": microsoft365.TENANT, "authority": api.url}
            return Connection("api", host=api.url, login=O365_CLIENT, password=O365_SECRET, extra_dejson=extra)
        return Connection("api", host=api.url, password=TOKENS[self.type], extra_dejson={})


SLACK_30M = Case("slack", "audit", timedelta(minutes=30), "d30")
GOOGLE_3H = Case("google_workspace", "login", timedelta(hours=3), "d3h")
O365_15M = Case("microsoft365", "audit_exchange", timedelta(minutes=15), "o365")


@pytest.fixture(scope="module")
def stack():
    with SandboxServer(SCENARIO) as api, GcsEmulatorProcess((BUCKET,)) as gcs:
        saved = dict(os.environ)
        os.environ.update(gcs.connection_env())
        try:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            yield api, gcs, GCSHook(gcp_conn_id="google_cloud_default")
        finally:
            os.environ.clear()
            os.environ.update(saved)


def run(stack, case: Case, k: int, clock: datetime | None = None) -> dict:
    """Interval k ([T0 + k h, T0 + (k+1) h)) through the operator's core, at `clock` (default: 2 min after it)."""
    api, _, hook = stack
    interval = Window(T0 + k * HOUR, T0 + (k + 1) * HOUR)
    clock = clock or interval.end + RUN_AFTER
    api.clock.set(clock.timestamp())
    client = api_client(case.spec, case.connection(api))
    return collect_interval(
        case.config(),
        case.stream,
        interval,
        client,
        hook,
        dag_id="auditlogs_src",
        run_id=f"run{k}",
        try_number=1,
        clock=lambda: clock,
    )


def run_sweep(stack, case: Case, end: datetime, clock: datetime) -> dict:
    api, _, hook = stack
    api.clock.set(clock.timestamp())
    client = api_client(case.spec, case.connection(api))
    return sweep(
        case.config(),
        case.stream,
        Window(end - HOUR, end),
        client,
        hook,
        dag_id="auditlogs_src_sweep",
        run_id="sweep",
        try_number=1,
        clock=lambda: clock,
    )


def stored(stack, case: Case, under: str = "") -> Counter:
    """Event keys in every part under the case's prefix (or a sub-folder), with how often each is stored."""
    _, gcs, _ = stack
    keys: Counter = Counter()
    for name in gcs.list(BUCKET, f"{case.prefix}/src/{case.stream}/{under}"):
        if name.endswith(".ndjson.gz"):
            keys.update(case.key(json.loads(line)) for line in gzip.decompress(gcs.read(BUCKET, name)).splitlines())
    return keys


def events(case: Case, lo: datetime, hi: datetime) -> list[tuple[str, datetime, int]]:
    """(key, event time, lag in seconds) of every event with time in [lo, hi), however late it arrives."""
    rows = []
    for event in truth_events(case.type, lo, hi, SCENARIO, now=hi + timedelta(days=3)):
        body = orjson.loads(event.payload)
        if case.type == "google_workspace" and body["id"]["applicationName"] != case.stream:
            continue
        rows.append((case.key(body), case.spec.event_time(body), event.lag))
    return rows


@dataclass
class Expected:
    first_stored_by: dict[str, int]
    late: dict[int, tuple[int, float]]  # run -> (count, max lateness seconds)


def expect(case: Case, runs: list[tuple[int, datetime]]) -> Expected:
    """What in-order runs (interval k at clock c) store and measure, from the scenario's events and lags."""
    windows = {k: Window(T0 + k * HOUR - case.delay, T0 + (k + 1) * HOUR) for k, _ in runs}
    first: dict[str, int] = {}
    late: dict[int, tuple[int, float]] = {}
    lo = min(w.start for w in windows.values())
    hi = max(w.end for w in windows.values())
    universe = events(case, lo, hi)
    for k, clock in runs:
        count, longest = 0, 0.0
        earlier = [(windows[j], c) for j, c in runs[: runs.index((k, clock))]]
        for key, moment, lag in universe:
            if not windows[k].contains(moment) or moment + timedelta(seconds=lag) > clock or key in first:
                continue
            first[key] = k
            covering = [c for w, c in earlier if w.contains(moment)]
            if covering and moment < T0 + k * HOUR:
                count += 1
                longest = max(longest, (max(covering) - moment).total_seconds())
        late[k] = (count, longest)
    return Expected(first, late)


def in_order(case: Case, count: int) -> list[tuple[int, datetime]]:
    return [(k, T0 + (k + 1) * HOUR + RUN_AFTER) for k in range(count)]


@pytest.mark.parametrize("case", [SLACK_30M, GOOGLE_3H], ids=["slack-30m", "google-3h"])
def test_in_order_runs_store_every_event_once_count_late_arrivals_and_the_sweep_recovers_the_rest(stack, case):
    hours = 10
    extra = -(-case.delay // HOUR)  # the intervals whose windows still reach into the swept range
    runs = in_order(case, hours + extra)
    manifests = {k: run(stack, case, k) for k, _ in runs}
    expected = expect(case, runs)

    keys = stored(stack, case)
    assert set(keys) == set(expected.first_stored_by)
    assert [k for k, n in keys.items() if n > 1] == []
    for k, _ in runs:
        overlap = manifests[k]["overlap"]
        assert (overlap["late_arrivals"]["count"], overlap["late_arrivals"]["max_seconds"]) == expected.late[k], k
        assert overlap["earlier_intervals"] == [
            Window(T0 + j * HOUR, T0 + (j + 1) * HOUR).label() for j in range(max(0, k - extra), k)
        ]
        assert overlap["missing_intervals"] == []
        assert (
            manifests[k]["storage"]["events_written"]
            == manifests[k]["events"]
            == sum(1 for owner in expected.first_stored_by.values() if owner == k)
        )
        tail = tail_keys(case, k)
        assert len(overlap["tail"]["events"]) == sum(
            1 for key, owner in expected.first_stored_by.items() if owner == k and key in tail
        )
    assert sum(m["overlap"]["late_arrivals"]["count"] for m in manifests.values()) > 20
    assert manifests[hours]["advice"]["kind"] == "delay_too_short"

    # sweeps a day later, run at E1 and then at E2 = E1 + 1 h (on the schedule's grid), each over `sweep`
    # before `delay` before it: exactly the events no run could see, each once; the second reads the first
    swept = replace(case, sweep=hours * HOUR)
    later = T0 + timedelta(days=1, hours=hours)
    end = T0 + (hours + extra) * HOUR
    first_sweep = run_sweep(stack, swept, end - HOUR, later)
    second_sweep = run_sweep(stack, swept, end, later)
    split = end - case.delay - HOUR
    in_range = {key: moment for key, moment, _ in events(case, split - swept.sweep, end - case.delay)}
    missed = set(in_range) - set(expected.first_stored_by)
    assert missed, "the scenario must have events later than the delay"
    assert set(stored(stack, case, "sweep/")) == missed
    assert first_sweep["sweep"]["recovered"] == sum(1 for key in missed if in_range[key] < split)
    assert second_sweep["sweep"]["recovered"] == sum(1 for key in missed if in_range[key] >= split)
    assert second_sweep["sweep"]["sweeps_read"] == [first_sweep["sweep"]["range_label"]]
    assert second_sweep["sweep"]["events_in_range"] == sum(
        1 for m in in_range.values() if m >= split - swept.sweep + HOUR
    )
    assert second_sweep["sweep"]["lateness_of_recovered"]["count"] == second_sweep["sweep"]["recovered"]
    everything = stored(stack, case)
    assert all(everything[key] == 1 for key in in_range)
    # a rerun of a sweep replaces its own folder: the same events, still once
    assert run_sweep(stack, swept, end, later + HOUR)["sweep"]["recovered"] == second_sweep["sweep"]["recovered"]
    after_rerun = stored(stack, case)
    assert all(after_rerun[key] == 1 for key in in_range)
    after_t0 = [key for key, moment in in_range.items() if moment >= T0 + case.delay]
    FIGURES[f"{case.prefix} miss rate of the delay"] = sum(1 for key in after_t0 if key in missed) / len(after_t0)

    # the same runs without de-duplication: the overlap is stored again
    plain = Case(case.type, case.stream, case.delay, case.prefix + "-plain", dedup=False)
    plain_manifests = [run(stack, plain, k) for k, _ in runs]
    plain_keys = stored(stack, plain)
    assert set(plain_keys) == set(expected.first_stored_by)
    assert [m["overlap"]["late_arrivals"]["count"] for m in plain_manifests] == [expected.late[k][0] for k, _ in runs]
    assert sum(plain_keys.values()) - len(plain_keys) == sum(m["overlap"]["already_stored"] for m in plain_manifests)
    FIGURES[f"{case.prefix} stored/unique with dedup"] = sum(keys.values()) / len(keys)
    FIGURES[f"{case.prefix} stored/unique without dedup"] = sum(plain_keys.values()) / len(plain_keys)
    print(f"\nFIGURES {case.prefix}: {FIGURES}")


def test_an_office_365_sweep_stores_exactly_the_records_of_the_blobs_listed_too_late_for_every_run(stack):
    """Office 365 windows on a blob's `contentCreated`, which the stored records do not hold: the sweep knows
    what is stored by `Id` over the folders of its range, and re-lists blobs listed later than any run."""
    case, hours = O365_15M, 5
    runs = in_order(case, hours + 2)
    for k, _ in runs:
        run(stack, case, k)
    by_runs = stored(stack, case)
    swept, later = replace(case, sweep=hours * HOUR), T0 + timedelta(days=1)
    store = event_store(load_scenario(SCENARIO), "microsoft365")

    def listed(end: datetime) -> set[str]:
        """Ids of the records of the blobs available in the sweep ending at `end`'s range, all listed by now."""
        lo, hi = end - case.delay - swept.sweep, end - case.delay
        return {
            e.id
            for e in microsoft365.records(store, "Audit.Exchange", lo.timestamp(), hi.timestamp(), later.timestamp())
        }

    end = T0 + (hours + 1) * HOUR
    first = run_sweep(stack, swept, end, later)
    missed = listed(end) - set(by_runs)
    assert missed, "the scenario must list some blobs later than every run could see them"
    assert stored(stack, case, "sweep/") == Counter(dict.fromkeys(missed, 1))
    assert (first["sweep"]["recovered"], first["sweep"]["events_in_range"]) == (len(missed), len(listed(end)))

    # the next sweep overlaps the first: it reads it, and adds only what neither the runs nor the first stored
    second = run_sweep(stack, swept, end + HOUR, later)
    assert second["sweep"]["sweeps_read"] == [first["sweep"]["range_label"]]
    missed_later = listed(end + HOUR) - set(by_runs) - missed
    assert stored(stack, case, "sweep/") == Counter(dict.fromkeys(missed | missed_later, 1))
    assert second["sweep"]["recovered"] == len(missed_later) > 0


def tail_keys(case: Case, k: int) -> set[str]:
    end = T0 + (k + 1) * HOUR
    return {key for key, _, _ in events(case, end - case.delay, end)}


def test_rerun_of_an_old_interval_rewrites_the_same_events_and_later_only_adds_duplicates(stack):
    case = Case("slack", "audit", timedelta(minutes=30), "rerun")
    runs = in_order(case, 7)
    manifests = {k: run(stack, case, k) for k, _ in runs}
    expected = expect(case, runs)
    folder = f"{case.prefix}/src/audit/dt=2026-03-02/{Window(T0 + 3 * HOUR, T0 + 4 * HOUR).label()}/"
    before = stored(stack, case, folder.split("/audit/")[1])

    # at its original time: the same result, and still every event once
    again = run(stack, case, 3, clock=runs[3][1])
    assert stored(stack, case, folder.split("/audit/")[1]) == before
    assert again["overlap"]["tail"] == manifests[3]["overlap"]["tail"]
    assert [k for k, n in stored(stack, case).items() if n > 1] == []

    # days later: nothing is lost; late events of its window that interval 4 stored are now stored twice,
    # and none of them ever three times
    run(stack, case, 3, clock=T0 + timedelta(days=2))
    keys = stored(stack, case)
    assert set(expected.first_stored_by) <= set(keys)
    window3 = Window(T0 + 3 * HOUR - case.delay, T0 + 4 * HOUR)
    twice = {key for key, n in keys.items() if n > 1}
    in_window3 = {k for k, m, _ in events(case, window3.start, window3.end)}
    assert twice == {key for key, owner in expected.first_stored_by.items() if owner == 4 and key in in_window3}
    assert max(keys.values()) == 2 and twice


def test_out_of_order_backfill_stores_overlap_events_twice_never_zero_times_and_an_in_order_rerun_fixes_it(stack):
    case = Case("slack", "audit", timedelta(minutes=30), "ooo")
    for k in (0, 1, 2):
        run(stack, case, k)
    # interval 3 is a gap when 4 runs (not run yet, or still running: no manifest either way)
    fourth = run(stack, case, 4)
    assert fourth["overlap"]["missing_intervals"] == [Window(T0 + 3 * HOUR, T0 + 4 * HOUR).label()]
    assert fourth["overlap"]["earlier_intervals"] == [] and fourth["overlap"]["already_stored"] == 0
    backfill_clock = T0 + 5 * HOUR + RUN_AFTER + timedelta(minutes=10)
    third = run(stack, case, 3, clock=backfill_clock)
    assert third["overlap"]["earlier_intervals"] == [Window(T0 + 2 * HOUR, T0 + 3 * HOUR).label()]

    keys = stored(stack, case)
    expected = expect(
        case,
        [
            (0, T0 + HOUR + RUN_AFTER),
            (1, T0 + 2 * HOUR + RUN_AFTER),
            (2, T0 + 3 * HOUR + RUN_AFTER),
            (3, backfill_clock),
            (4, T0 + 5 * HOUR + RUN_AFTER),
        ],
    )
    assert set(keys) == set(expected.first_stored_by)
    overlap_34 = {
        key
        for key, moment, lag in events(case, T0 + 4 * HOUR - case.delay, T0 + 4 * HOUR)
        if moment + timedelta(seconds=lag) <= T0 + 5 * HOUR + RUN_AFTER
    }
    assert {key for key, n in keys.items() if n > 1} == overlap_34 and overlap_34

    # rerunning the later interval now that the earlier one is complete restores exactly once
    rerun = run(stack, case, 4, clock=backfill_clock + HOUR)
    assert rerun["overlap"]["missing_intervals"] == [] and rerun["overlap"]["skipped"] >= len(overlap_34)
    assert max(stored(stack, case).values()) == 1


def test_small_lags_against_a_long_delay_advise_a_shorter_one_with_its_savings(stack, caplog):
    from auditlogs import advisor

    heard = []
    advisor.HOOKS.append(heard.append)
    case = Case("okta", "systemlog", timedelta(hours=3), "long")
    try:
        with caplog.at_level("WARNING", logger="auditlogs.advisor"):
            manifests = [run(stack, case, k) for k in range(advisor.MIN_RUNS_FOR_SHORTER)]
    finally:
        advisor.HOOKS.remove(heard.append)
    assert [m["advice"] for m in manifests[:-1]] == [None] * (advisor.MIN_RUNS_FOR_SHORTER - 1)
    advice = manifests[-1]["advice"]
    late = manifests[-1]["overlap"]["recent"]
    assert len(late) == advisor.MIN_RUNS_FOR_SHORTER and sum(row["late"] for row in late) > 0
    assert advice["kind"] == "delay_too_long" and advice["suggested_delay_seconds"] == 600  # 2 x ~4 min, rounded up
    assert advice["savings"]["requests_per_day"] >= 0 and advice["savings"]["events_per_day"] > 0
    assert [a.kind for a in heard] == ["delay_too_long"]
    assert [r.message for r in caplog.records if advisor.ADVICE_MARKER in r.message] == [
        f"{advisor.ADVICE_MARKER}: {advice['message']}"
    ]


def test_advisor_messages_and_hook():
    from auditlogs import advisor

    bins = lambda seconds, n: {str(bin_of(seconds)): n}  # noqa: E731
    short = advisor.advise("okta", "logs", timedelta(minutes=30), HOUR, [{"histogram": bins(1700, 50)}], {})
    assert short.kind == "delay_too_short" and short.suggested_delay_seconds == 3900
    assert "events later than the delay are likely being missed" in short.message and "delay: 1h5m" in short.message

    figures = {
        "events_in_window": 12_000,
        "window_seconds": 4 * 3600,
        "requests": 12,
        "bytes_written": 500_000,
        "events_written": 3000,
    }
    recent = [{"histogram": bins(120, 5)} for _ in range(advisor.MIN_RUNS_FOR_SHORTER)]
    long = advisor.advise("okta", "logs", timedelta(hours=3), HOUR, recent, figures)
    assert long.kind == "delay_too_long" and long.suggested_delay_seconds == 300
    # 3000 events/h fetched; 2h55m less per hourly run: 8750 fewer events a run, 1000 per request, 166.7 B each
    assert long.savings == {"events_per_day": 210_000, "requests_per_day": 210, "bytes_per_day": 35_000_000}
    assert advisor.advise("okta", "logs", timedelta(hours=3), HOUR, recent[:2], figures) is None

    heard = []
    advisor.HOOKS.append(heard.append)
    try:
        advisor.publish(short)
    finally:
        advisor.HOOKS.remove(heard.append)
    assert heard == [short]


def test_overhead_report_sums_the_manifests_per_stream(stack):
    from auditlogs.report import overhead

    _, _, hook = stack
    figures = {}
    for dedup in (True, False):
        case = Case("slack", "audit", timedelta(minutes=30), f"report-{dedup}", dedup=dedup)
        manifests = [run(stack, case, k) for k in range(3)]
        keys = stored(stack, case)
        report = overhead(hook, case.config(), T0.date(), T0.date())
        total = report["streams"]["audit"]
        assert total["intervals"] == 3 and total["written"] == sum(keys.values())
        assert total["unique_stored"] == len(keys)
        assert total["fetched"] == sum(m["fetched"] for m in manifests)
        assert total["overhead_fetched_per_unique"] == round(total["fetched"] / len(keys), 4)
        assert total["bytes_written"] == sum(p["bytes"] for m in manifests for p in m["parts"])
        figures[dedup] = total["stored_per_unique"]
    assert figures[True] == 1.0 and figures[False] > 1.2


def test_an_event_an_earlier_run_recorded_is_skipped_to_the_last_millisecond_of_its_tail_and_not_after():
    """Only events before the end of the earlier runs' tails can match a record (they are digested to look
    them up); the same key at the first instant after is a new event."""
    interval = Window(T0 + HOUR, T0 + 2 * HOUR)
    window = interval.widened(timedelta(minutes=30))
    tail = Window(T0 + timedelta(minutes=30), T0 + HOUR)
    last = T0 + HOUR - timedelta(microseconds=1)
    earlier = EarlierRun(
        interval=Window(T0, T0 + HOUR),
        window=Window(T0 - timedelta(minutes=30), T0 + HOUR),
        tail=tail,
        started_at=T0 + HOUR + RUN_AFTER,
        entries=frozenset({(digest("a"), epoch_ms(last)), (digest("b"), epoch_ms(last))}),
        manifest={},
    )
    overlap = Overlap(interval, window, [earlier], [])
    assert overlap.admit("a", last) is False
    assert overlap.admit("b", last - timedelta(microseconds=500)) is False  # the same millisecond
    assert overlap.admit("a", T0 + HOUR) is True
    assert overlap.admit("c", last) is True
    assert (overlap.already_stored, overlap.skipped, overlap.late.count) == (2, 2, 1)

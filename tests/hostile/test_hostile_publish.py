"""A GCS that fails at the wrong moment and two runs of one interval at once: the interval's stored result is
always either the old one, whole, or the new one, whole, and never gets smaller because a publish failed."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import datetime, timezone

import pytest

from auditlogs.errors import ShrinkingRerunError
from auditlogs.sink.gcs import (
    MANIFEST_NAME,
    ConcurrentPublishError,
    IntervalLocation,
    IntervalStore,
    SinkError,
    new_attempt,
)
from auditlogs.sink.parts import PartWriter
from auditlogs.window import Window
from harness import Connection, api_client, gcs_fixtures, source_config
from sandbox.gcs import GcsFaultProxy
from sandbox.hostile import HostileServer, Reply

BUCKET = "publish-bucket"
UTC = timezone.utc
_hours = iter(range(24 * 28))


gcs, hook_for = gcs_fixtures(BUCKET)


@pytest.fixture
def where() -> IntervalLocation:
    """A fresh interval per test (the emulator is shared by the module)."""
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp() + 3600 * next(_hours)
    window = Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + 3600, UTC))
    return IntervalLocation(BUCKET, "raw", "hostile", "audit", window)


class Attempt:
    """One run's staged parts and manifest, as `collect_interval` hands them to the store."""

    def __init__(self, folder, run_id: str, ids: range, where: IntervalLocation):
        folder.mkdir(parents=True)
        writer = PartWriter(folder, 1024)
        for n in ids:
            writer.write(json.dumps({"id": f"{run_id}-{n}", "pad": f"{n:x}" * 600}).encode() + b"\n")
        self.parts = writer.close()
        attempt = new_attempt(run_id, 1)
        self.ids = {f"{run_id}-{n}" for n in ids}
        self.manifest = {
            "events": len(ids),
            "run_id": run_id,
            "try_number": 1,
            "attempt": attempt,
            "parts": where.part_entries(attempt, self.parts),
        }

    def publish(self, hook, where: IntervalLocation, **options) -> None:
        IntervalStore(hook, where=f"run {self.manifest['run_id']}", sleep=lambda s: None).publish(
            where, self.parts, self.manifest, **options
        )


def holding(gcs, where: IntervalLocation) -> tuple[dict, set[str]]:
    """The interval as a reader sees it (its manifest and the ids in the parts it lists), after checking that
    every listed part exists with the sha256 the manifest records."""
    import hashlib

    manifest = json.loads(gcs.read(BUCKET, where.object_name(MANIFEST_NAME)))
    ids = set()
    for part in manifest["parts"]:
        data = gcs.read(BUCKET, where.object_name(part["name"]))
        assert hashlib.sha256(data).hexdigest() == part["sha256"], f"{part['name']} is not what the manifest says"
        ids |= {json.loads(line)["id"] for line in gzip.decompress(data).splitlines()}
    assert len(ids) == manifest["events"]
    return manifest, ids


def objects(gcs, where: IntervalLocation) -> set[str]:
    return set(gcs.list(BUCKET, where.folder + "/"))


def listed(where: IntervalLocation, manifest: dict) -> set[str]:
    return {where.object_name(p["name"]) for p in manifest["parts"]} | {where.object_name(MANIFEST_NAME)}


def is_manifest_upload(request) -> bool:
    return request.is_upload and f'/{MANIFEST_NAME}"'.encode() in request.body


def test_a_manifest_upload_failing_after_the_parts_keeps_the_old_result_for_the_shrink_guard(
    gcs, where, tmp_path, hook_for
):
    old = Attempt(tmp_path / "old", "old", range(40), where)
    old.publish(hook_for(gcs.url), where)
    before = {name: gcs.read(BUCKET, name) for name in objects(gcs, where)}

    new = Attempt(tmp_path / "new", "new", range(40), where)
    with GcsFaultProxy(gcs.url, lambda request: 503 if is_manifest_upload(request) else None) as proxy:
        with pytest.raises(SinkError) as raised:
            new.publish(hook_for(proxy.url), where)
    assert f"upload {where.object_name(MANIFEST_NAME)}" in str(raised.value) and raised.value.retryable
    assert sum(map(is_manifest_upload, proxy.requests)) == 4  # the store's attempts, none by the library
    assert {name: gcs.read(BUCKET, name) for name in objects(gcs, where)} == before  # its own parts removed

    # The retry meets an API that now answers empty pages: the old manifest is still there to refuse it.
    empty = Attempt(tmp_path / "empty", "empty", range(0), where)
    with pytest.raises(ShrinkingRerunError, match="found 0 events but the interval's existing manifest records 40"):
        empty.publish(hook_for(gcs.url), where)
    manifest, ids = holding(gcs, where)
    assert manifest["run_id"] == "old" and ids == old.ids


def test_through_the_operator_a_failed_manifest_upload_then_an_api_answering_empty_pages_keeps_40_events(
    gcs, where, hook_for
):
    """The issue's case end to end through `collect_interval`: run 1 stores 40 events; its rerun's manifest
    upload answers 503 (after the parts went up); the next try meets an API that answers empty pages."""
    from auditlogs.operators.collect import collect_interval
    from auditlogs.sources import SPECS

    start = int(where.interval.start.timestamp())
    entries = [{"id": f"e{n}", "date_create": start + 60 * n + 30, "action": "user_login"} for n in range(40)]
    answer = {"entries": entries}

    def slack(request):
        return Reply(
            200,
            body=json.dumps({**answer, "response_metadata": {"next_cursor": ""}}).encode(),
            headers={"Content-Type": "application/json"},
        )

    config = source_config("slack", "api", bucket=BUCKET, prefix="raw", name="hostile")
    location = IntervalLocation(BUCKET, "raw", "hostile", "audit", where.interval)

    def run(hook, try_number):
        client = api_client(
            SPECS["slack"], Connection("api", host=api.url, password="xoxp-publish-test"), config=config
        )
        return collect_interval(
            config,
            "audit",
            where.interval,
            client,
            hook,
            dag_id="auditlogs_hostile",
            run_id="rerun",
            try_number=try_number,
            clock=lambda: where.interval.end,
        )

    with HostileServer(slack) as api:
        assert run(hook_for(gcs.url), 1)["events"] == 40
        with GcsFaultProxy(gcs.url, lambda request: 503 if is_manifest_upload(request) else None) as proxy:
            with pytest.raises(SinkError):
                run(hook_for(proxy.url), 2)
        assert sum(map(is_manifest_upload, proxy.requests)) == 4
        answer["entries"] = []  # the API's outage: empty pages that say there is nothing more
        with pytest.raises(ShrinkingRerunError, match="found 0 events but the interval's existing manifest records 40"):
            run(hook_for(gcs.url), 3)
    manifest, ids = holding(gcs, location)
    assert manifest["try_number"] == 1 and ids == {event["id"] for event in entries}
    assert objects(gcs, location) == listed(location, manifest)


def test_a_manifest_write_that_landed_but_whose_answers_were_lost_is_a_success(gcs, where, tmp_path, hook_for):
    """The first manifest write reaches GCS but its answer is a 503; the retried write then meets 412 (the
    generation moved: by this very attempt). The attempt recorded in the manifest tells the two apart."""
    import requests

    Attempt(tmp_path / "old", "old", range(10), where).publish(hook_for(gcs.url), where)
    new = Attempt(tmp_path / "new", "new", range(12), where)
    landed = []

    def land_then_lose_the_answer(request):
        if is_manifest_upload(request) and not landed:
            landed.append(
                requests.post(
                    gcs.url + request.path, data=request.body, headers=request.headers, timeout=30
                ).status_code
            )
            return 503
        return None

    with GcsFaultProxy(gcs.url, land_then_lose_the_answer) as proxy:
        new.publish(hook_for(proxy.url), where)
    assert landed == [200] and sum(map(is_manifest_upload, proxy.requests)) == 2
    manifest, ids = holding(gcs, where)
    assert manifest["run_id"] == "new" and ids == new.ids and objects(gcs, where) == listed(where, manifest)


def test_two_runs_publishing_one_interval_at_once_leave_exactly_the_winners_parts(gcs, where, tmp_path, hook_for):
    """A zombie task and its retry: both read the manifest's generation and upload all their parts before
    either writes the manifest (a barrier on the manifest uploads); the zombie's write lands first."""
    Attempt(tmp_path / "earlier", "earlier", range(30), where).publish(hook_for(gcs.url), where)
    zombie = Attempt(tmp_path / "zombie", "zombie", range(40), where)
    retry = Attempt(tmp_path / "retry", "retry", range(34), where)
    both_ready, zombie_written = threading.Barrier(2, timeout=60), threading.Event()

    def race(request):
        if is_manifest_upload(request):
            both_ready.wait()
            if b'"run_id": "retry"' in request.body:
                assert zombie_written.wait(60)
        return None

    with GcsFaultProxy(gcs.url, race) as proxy:
        hook = hook_for(proxy.url)
        failures = {}

        def run(attempt):
            try:
                attempt.publish(hook, where)
            except Exception as exc:  # noqa: BLE001 - the assertions below say which is expected
                failures[attempt.manifest["run_id"]] = exc
            finally:
                if attempt is zombie:
                    zombie_written.set()

        threads = [threading.Thread(target=run, args=(a,)) for a in (zombie, retry)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert set(failures) == {"retry"} and isinstance(failures["retry"], ConcurrentPublishError)
    assert failures["retry"].retryable and "by run 'zombie' try 1" in str(failures["retry"])
    manifest, ids = holding(gcs, where)
    assert manifest["run_id"] == "zombie" and ids == zombie.ids
    assert objects(gcs, where) == listed(where, manifest)  # no stray part of the loser nor of the earlier run


def test_a_newer_runs_parts_still_uploading_survive_the_winners_cleanup(gcs, where, tmp_path, hook_for):
    """The winner lists the folder for its cleanup only after a newer run (which read the winner's manifest)
    has uploaded its parts: they are newer than the winner's manifest, so they stay, and the newer run's
    manifest then replaces the winner's."""
    winner = Attempt(tmp_path / "winner", "winner", range(20), where)
    newer = Attempt(tmp_path / "newer", "newer", range(25), where)
    newer_parts_up, cleanup_listing = threading.Event(), threading.Event()

    def hold_the_listing(request):
        if request.method == "GET" and "/o?" in request.path and not newer_parts_up.is_set():
            cleanup_listing.set()
            assert newer_parts_up.wait(60)
        return None

    with GcsFaultProxy(gcs.url, hold_the_listing) as proxy:
        first = threading.Thread(target=winner.publish, args=(hook_for(proxy.url), where))
        first.start()
        assert cleanup_listing.wait(60)  # the winner's manifest is written; its cleanup is about to list
        for part, entry in zip(newer.parts, newer.manifest["parts"], strict=True):  # uploaded while the winner waits
            gcs.write(BUCKET, where.object_name(entry["name"]), part.path.read_bytes())
        newer_parts_up.set()
        first.join(60)
    assert {where.object_name(e["name"]) for e in newer.manifest["parts"]} <= objects(gcs, where)
    newer.publish(hook_for(gcs.url), where)  # uploads its parts again under the same names, then the manifest
    manifest, ids = holding(gcs, where)
    assert manifest["run_id"] == "newer" and ids == newer.ids and objects(gcs, where) == listed(where, manifest)


def test_a_leftover_already_gone_when_deleted_is_success(gcs, where, tmp_path, hook_for):
    Attempt(tmp_path / "old", "old", range(10), where).publish(hook_for(gcs.url), where)
    new = Attempt(tmp_path / "new", "new", range(12), where)
    with GcsFaultProxy(gcs.url, lambda request: 404 if request.method == "DELETE" else None) as proxy:
        new.publish(hook_for(proxy.url), where)
    assert any(request.method == "DELETE" for request in proxy.requests)
    manifest, ids = holding(gcs, where)
    assert manifest["run_id"] == "new" and ids == new.ids


def test_gcs_failing_from_any_step_of_a_publish_leaves_the_old_result_or_the_new_one_never_a_mix(
    gcs, tmp_path, hook_for
):
    """GCS goes down (503 to everything) from the k-th request of a publish on, for every k: afterwards a reader
    sees the old interval whole or the new one whole, and the next publish leaves no stray object."""

    def fresh(name: str) -> IntervalLocation:
        start = datetime(2026, 5, 1, tzinfo=UTC).timestamp() + 3600 * next(_hours)
        return IntervalLocation(
            BUCKET,
            "raw",
            "outage",
            name,
            Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + 3600, UTC)),
        )

    probe = fresh("probe")
    Attempt(tmp_path / "probe-old", "old", range(30), probe).publish(hook_for(gcs.url), probe)
    with GcsFaultProxy(gcs.url) as clean:
        Attempt(tmp_path / "probe-new", "new", range(30), probe).publish(hook_for(clean.url), probe)
    steps = len(clean.requests)
    assert steps >= 6  # read the manifest, upload parts, write the manifest, list, delete leftovers

    outcomes = []
    for k in range(1, steps + 1):
        where = fresh(f"down-from-{k}")
        old = Attempt(tmp_path / f"{k}-old", "old", range(30), where)
        old.publish(hook_for(gcs.url), where)
        new = Attempt(tmp_path / f"{k}-new", "new", range(31), where)
        with GcsFaultProxy(gcs.url, lambda request, k=k: 503 if request.number >= k else None) as proxy:
            try:
                new.publish(hook_for(proxy.url), where)
                outcomes.append("new")
            except SinkError as exc:
                assert exc.retryable
                outcomes.append("old")
        manifest, ids = holding(gcs, where)
        assert (manifest["run_id"], ids) in (("old", old.ids), ("new", new.ids)), f"GCS down from request {k}"
        if outcomes[-1] == "old":
            assert manifest["run_id"] == "old"
        Attempt(tmp_path / f"{k}-again", "again", range(31), where).publish(hook_for(gcs.url), where)
        manifest, _ = holding(gcs, where)
        assert objects(gcs, where) == listed(where, manifest), f"strays after GCS was down from request {k}"
    assert "old" in outcomes and "new" in outcomes

"""GCS faults through GCSHook against the emulator: failing uploads are retried (each object written once),
a publish cut off mid-way leaves the old result (or none) and the rerun completes the interval, and a rerun
with fewer events than the existing manifest keeps the existing objects and fails unless shrinking is allowed."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import ShrinkingRerunError
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation, IntervalStore, new_attempt
from auditlogs.sink.parts import PartWriter
from auditlogs.window import Window
from harness import gcs_fixtures
from sandbox.gcs import GcsFaultProxy

BUCKET = "sink-bucket"
UTC = timezone.utc


gcs, hook_for = gcs_fixtures(BUCKET)


def staged(folder, events: int):
    folder.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(folder, 1024)
    for n in range(events):
        writer.write(json.dumps({"id": n, "pad": "x" * 2000}).encode() + b"\n")
    return writer.close()


def manifest_of(where: IntervalLocation, parts, events: int, run_id: str = "run") -> dict:
    """What `run_manifest` writes, reduced to what the store reads."""
    attempt = new_attempt(run_id, 1)
    return {"events": events, "run_id": run_id, "attempt": attempt, "parts": where.part_entries(attempt, parts)}


def stored(gcs, where: IntervalLocation) -> dict[str, bytes]:
    return {n: gcs.read(BUCKET, n) for n in gcs.list(BUCKET, where.folder + "/")}


def location(hour: int) -> IntervalLocation:
    start = datetime(2026, 3, 1, hour, tzinfo=UTC)
    return IntervalLocation(BUCKET, "raw", "sink", "audit", Window(start, start.replace(hour=hour + 1)))


def test_failing_uploads_are_retried_and_each_object_is_written_once(gcs, tmp_path, hook_for):
    refused = []

    def two_uploads_refused(request):
        if request.is_upload and len(refused) < 2:
            refused.append(request)
            return 503
        return None

    with GcsFaultProxy(gcs.url, two_uploads_refused) as proxy:
        store = IntervalStore(hook_for(proxy.url), where="test", sleep=lambda s: None)
        parts = staged(tmp_path, 3)
        manifest = manifest_of(location(1), parts, 3)
        store.publish(location(1), parts, manifest)
    uploads = [request for request in proxy.requests if request.is_upload]
    names = gcs.list(BUCKET, location(1).folder + "/")
    assert sorted(names) == sorted(
        [location(1).object_name(p["name"]) for p in manifest["parts"]] + [location(1).object_name(MANIFEST_NAME)]
    )
    # Two refused uploads, each tried again (by google-cloud-storage's own retry or by the store's): every
    # object is uploaded exactly once successfully, none twice (unlike GCSHook's num_max_attempts).
    assert len(uploads) == len(parts) + 1 + 2


def test_a_publish_cut_off_midway_keeps_the_old_result_and_the_rerun_is_complete(gcs, tmp_path, hook_for, monkeypatch):
    from google.cloud.storage import Blob

    where = location(2)
    hook = hook_for(gcs.url)
    IntervalStore(hook).publish(where, parts := staged(tmp_path / "a", 3), manifest_of(where, parts, 3))
    before = stored(gcs, where)

    class Killed(BaseException):
        """What the process sees when the worker is killed: not an Exception, nothing retries it."""

    def dying(blob, *args, **kwargs):
        raise Killed()  # after the parts, before the manifest

    monkeypatch.setattr(Blob, "upload_from_string", dying)
    with pytest.raises(Killed):
        IntervalStore(hook).publish(where, parts := staged(tmp_path / "b", 4), dead := manifest_of(where, parts, 4))
    after = stored(gcs, where)
    assert {n: after[n] for n in before} == before  # the old manifest and its parts, untouched
    assert set(after) - set(before) == {where.object_name(p["name"]) for p in dead["parts"]}  # listed by no manifest
    monkeypatch.undo()

    parts = staged(tmp_path / "c", 4)
    IntervalStore(hook).publish(where, parts, manifest := manifest_of(where, parts, 4))
    assert json.loads(gcs.read(BUCKET, where.object_name(MANIFEST_NAME)))["events"] == 4
    assert sorted(stored(gcs, where)) == sorted(
        [where.object_name(p["name"]) for p in manifest["parts"]] + [where.object_name(MANIFEST_NAME)]
    )


def test_a_shrinking_rerun_keeps_the_existing_output_and_fails_unless_allowed(gcs, tmp_path, hook_for):
    where = location(3)
    hook = hook_for(gcs.url)
    IntervalStore(hook).publish(where, parts := staged(tmp_path / "a", 5), manifest_of(where, parts, 5))
    before = stored(gcs, where)

    with pytest.raises(ShrinkingRerunError) as raised:
        IntervalStore(hook, where="source 'sink' stream 'audit'").publish(
            where, parts := staged(tmp_path / "b", 0), manifest_of(where, parts, 0)
        )
    assert "this rerun found 0 events but the interval's existing manifest records 5" in str(raised.value)
    assert "set allow_shrink: true" in str(raised.value) and not raised.value.retryable
    assert stored(gcs, where) == before

    parts = staged(tmp_path / "c", 0)
    IntervalStore(hook).publish(where, parts, manifest_of(where, parts, 0), allow_shrink=True)
    assert json.loads(gcs.read(BUCKET, where.object_name(MANIFEST_NAME)))["events"] == 0

"""GCS faults through GCSHook against the emulator: failing uploads are retried (each object written once),
a publish cut off mid-way leaves no manifest and the rerun completes the interval, and a rerun with fewer
events than the existing manifest keeps the existing objects and fails unless shrinking is allowed."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from auditlogs.errors import ShrinkingRerunError
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation, IntervalStore
from auditlogs.sink.parts import PartWriter
from auditlogs.window import Window
from sandbox.gcs import GcsEmulatorProcess

BUCKET = "sink-bucket"
UTC = timezone.utc


class FlakyProxy(ThreadingHTTPServer):
    """Forwards to the emulator; answers 503 to the first `failures` upload requests."""

    def __init__(self, target: str, failures: int):
        self.target, self.failures, self.uploads = target, failures, []
        super().__init__(("127.0.0.1", 0), _Forward)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: FlakyProxy

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/upload/"):
            self.server.uploads.append(self.path)
            if self.server.failures > 0:
                self.server.failures -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(self.command, self.server.target + self.path, data=body, headers=headers, timeout=30)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gcs():
    with GcsEmulatorProcess((BUCKET,)) as emulator:
        yield emulator


@pytest.fixture
def hook_for(monkeypatch):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    def hook(url: str):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "sandbox"}}))
        return GCSHook()

    return hook


def staged(folder, events: int):
    folder.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(folder, 1024)
    for n in range(events):
        writer.write(json.dumps({"id": n, "pad": "x" * 2000}).encode() + b"\n")
    return writer.close()


def location(hour: int) -> IntervalLocation:
    start = datetime(2026, 3, 1, hour, tzinfo=UTC)
    return IntervalLocation(BUCKET, "raw", "sink", "audit", Window(start, start.replace(hour=hour + 1)))


def test_failing_uploads_are_retried_and_each_object_is_written_once(gcs, tmp_path, hook_for):
    proxy = FlakyProxy(gcs.url, failures=2)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        store = IntervalStore(hook_for(proxy.url), where="test", sleep=lambda s: None)
        parts = staged(tmp_path, 3)
        store.publish(location(1), parts, {"events": 3})
    finally:
        proxy.shutdown()
    names = gcs.list(BUCKET, location(1).folder + "/")
    assert sorted(n.rpartition("/")[2] for n in names) == sorted([p.path.name for p in parts] + [MANIFEST_NAME])
    # Two refused uploads, each tried again (by google-cloud-storage's own retry or by the store's): every
    # object is uploaded exactly once successfully, none twice (unlike GCSHook's num_max_attempts).
    assert len(proxy.uploads) == len(parts) + 1 + 2


def test_a_publish_cut_off_midway_leaves_no_manifest_and_the_rerun_is_complete(gcs, tmp_path, hook_for):
    where = location(2)
    hook = hook_for(gcs.url)
    IntervalStore(hook).publish(where, staged(tmp_path / "a", 3), {"events": 3})

    class Killed(BaseException):
        """What the process sees when the worker is killed: not an Exception, nothing retries it."""

    class DyingHook:
        def __init__(self, hook):
            self.hook, self.uploads = hook, 0

        def __getattr__(self, name):
            return getattr(self.hook, name)

        def upload(self, *args, **kwargs):
            self.uploads += 1
            if self.uploads == 2:
                raise Killed()
            return self.hook.upload(*args, **kwargs)

    (tmp_path / "b").mkdir()
    with pytest.raises(Killed):
        IntervalStore(DyingHook(hook)).publish(where, staged(tmp_path / "b", 4), {"events": 4})
    assert where.object_name(MANIFEST_NAME) not in gcs.list(BUCKET, where.folder + "/")

    (tmp_path / "c").mkdir()
    parts = staged(tmp_path / "c", 4)
    IntervalStore(hook).publish(where, parts, {"events": 4})
    assert json.loads(gcs.read(BUCKET, where.object_name(MANIFEST_NAME)))["events"] == 4
    assert len(gcs.list(BUCKET, where.folder + "/")) == len(parts) + 1


def test_a_shrinking_rerun_keeps_the_existing_output_and_fails_unless_allowed(gcs, tmp_path, hook_for):
    where = location(3)
    hook = hook_for(gcs.url)
    (tmp_path / "a").mkdir()
    IntervalStore(hook).publish(where, staged(tmp_path / "a", 5), {"events": 5})
    before = {n: gcs.read(BUCKET, n) for n in gcs.list(BUCKET, where.folder + "/")}

    (tmp_path / "b").mkdir()
    with pytest.raises(ShrinkingRerunError) as raised:
        IntervalStore(hook, where="source 'sink' stream 'audit'").publish(where, staged(tmp_path / "b", 0), {"events": 0})
    assert "this rerun found 0 events but the interval's existing manifest records 5" in str(raised.value)
    assert "set allow_shrink: true" in str(raised.value) and not raised.value.retryable
    assert {n: gcs.read(BUCKET, n) for n in gcs.list(BUCKET, where.folder + "/")} == before

    (tmp_path / "c").mkdir()
    IntervalStore(hook).publish(where, staged(tmp_path / "c", 0), {"events": 0}, allow_shrink=True)
    assert json.loads(gcs.read(BUCKET, where.object_name(MANIFEST_NAME)))["events"] == 0

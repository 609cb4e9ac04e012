"""The GCS emulator (the `gcp-storage-emulator` package, a real HTTP server) as a child process.

The collector reaches it through GCSHook with `STORAGE_EMULATOR_HOST` and an anonymous
`google_cloud_platform` connection, exactly as it would reach real GCS.

The package ignores generation preconditions, which the sink's publish relies on, so the child runs this
file as its main module: it patches the object insert, resumable-chunk and delete handlers to honour
`ifGenerationMatch` / `ifGenerationNotMatch` as real GCS does (412 when one does not hold; 0 means "no live
object"; a delete of a missing object stays 404), then starts the emulator. The emulator serves one request
at a time, so the check and the write cannot interleave with another request.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GcsEmulatorProcess:
    def __init__(self, buckets: tuple[str, ...] = (), port: int = 0, startup_timeout: float = 30.0):
        self.buckets = buckets
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> GcsEmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> GcsEmulatorProcess:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--in-memory",
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                requests.get(f"{self.url}/storage/v1/b", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the GCS emulator did not start on port {self.port}")
                time.sleep(0.1)  # readiness polling of a child process, bounded by the deadline
        for bucket in self.buckets:
            self.create_bucket(bucket)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def create_bucket(self, bucket: str) -> None:
        response = requests.post(
            f"{self.url}/storage/v1/b", params={"project": "sandbox"}, json={"name": bucket}, timeout=10
        )
        if response.status_code not in (200, 409):
            response.raise_for_status()

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        names, token = [], None
        while True:
            params = {"prefix": prefix, **({"pageToken": token} if token else {})}
            body = requests.get(f"{self.url}/storage/v1/b/{bucket}/o", params=params, timeout=30).json()
            names += [item["name"] for item in body.get("items", [])]
            token = body.get("nextPageToken")
            if not token:
                return sorted(names)

    def read(self, bucket: str, name: str) -> bytes:
        response = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(name, safe='')}",
            params={"alt": "media"},
            timeout=60,
        )
        response.raise_for_status()
        return response.content

    def write(self, bucket: str, name: str, data: bytes) -> None:
        requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            timeout=60,
        ).raise_for_status()

    def delete(self, bucket: str, name: str) -> None:
        requests.delete(
            f"{self.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(name, safe='')}", timeout=60
        ).raise_for_status()

    def connection_env(self, conn_id: str = "google_cloud_default") -> dict[str, str]:
        """Environment that points GCSHook at this emulator through an anonymous connection."""
        return {
            "STORAGE_EMULATOR_HOST": self.url,
            f"AIRFLOW_CONN_{conn_id.upper()}": (
                '{"conn_type": "google_cloud_platform", "extra": {"is_anonymous": true, "project": "sandbox"}}'
            ),
        }


@dataclass(frozen=True)
class ProxiedRequest:
    number: int
    method: str
    path: str
    body: bytes
    #: Without Host and Content-Length: what to send to the emulator to forward the request by hand.
    headers: dict[str, str]

    @property
    def is_upload(self) -> bool:
        return self.path.startswith("/upload/")


class GcsFaultProxy(ThreadingHTTPServer):
    """A GCS that fails at the wrong moment: forwards every request to the emulator unless `fault(request)`
    returns a status to answer instead. `fault` runs on the request's own thread, so it may also hold the
    request (wait on an event or a barrier) to line two clients up at an exact point. Every request is
    recorded in `requests`, numbered from 1 in arrival order."""

    def __init__(self, target: str, fault: Callable[[ProxiedRequest], int | None] = lambda request: None):
        self.target, self.fault = target, fault
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Forward)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> GcsFaultProxy:
        threading.Thread(target=self.serve_forever, name="gcs-fault-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def record(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> ProxiedRequest:
        with self._lock:
            request = ProxiedRequest(len(self.requests) + 1, method, path, body, headers)
            self.requests.append(request)
            return request


class _Forward(BaseHTTPRequestHandler):
    server: GcsFaultProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # Not the Host header: the emulator stores media links built from it, which must outlive the proxy
        # (so media downloads go to the emulator directly, past the faults).
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        status = self.server.fault(self.server.record(self.command, self.path, body, headers))
        if status is not None:
            payload = f'{{"error": {{"code": {status}, "message": "injected by GcsFaultProxy"}}}}'.encode()
            self._answer(status, {"Content-Type": "application/json"}, payload)
            return
        answer = requests.request(
            self.command, self.server.target + self.path, data=body, headers=headers, timeout=30, allow_redirects=False
        )
        passed = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
        }
        self._answer(answer.status_code, passed, answer.content)

    def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

    def log_message(self, *args: object) -> None:
        pass


# --- Our patch: generation preconditions (the child process only) ------------------------------------------

PRECONDITION_FAILED = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [
            {
                "domain": "global",
                "reason": "conditionNotMet",
                "locationType": "header",
                "message": "At least one of the pre-conditions you specified did not hold.",
            }
        ],
    }
}


def precondition_holds(live_generation: str | None, query: dict[str, list[str]]) -> bool:
    """Real GCS semantics: generation 0 stands for "no live object"."""
    generation = live_generation or "0"
    match, not_match = query.get("ifGenerationMatch"), query.get("ifGenerationNotMatch")
    return (not match or match[0] == generation) and (not not_match or not_match[0] != generation)


def _honouring_preconditions(handler, target, missing_is_404: bool = False):
    from http import HTTPStatus

    from gcp_storage_emulator.exceptions import NotFound

    def guarded(request, response, storage, *args, **kwargs):
        if "ifGenerationMatch" in request.query or "ifGenerationNotMatch" in request.query:
            bucket, name = target(request, storage)
            try:
                live = storage.get_file_obj(bucket, name)["generation"]
            except NotFound:
                live = None
            if not (live is None and missing_is_404) and not precondition_holds(live, request.query):
                response.status = HTTPStatus.PRECONDITION_FAILED
                response.json(PRECONDITION_FAILED)
                return None
        return handler(request, response, storage, *args, **kwargs)

    return guarded


def _inserted(request, storage) -> tuple[str, str]:
    name = request.query.get("name", [None])[0]
    if name is None and isinstance(request.data, dict):
        name = (request.data.get("meta") or request.data).get("name")
    return request.params["bucket_name"], name


def _resumed(request, storage) -> tuple[str, str]:
    upload = storage.get_resumable_file_obj(request.query["upload_id"][0])
    return upload["bucket"], upload["name"]


def _addressed(request, storage) -> tuple[str, str]:
    return request.params["bucket_name"], request.params["object_id"]


def patch_emulator() -> None:
    """Wraps the package's handlers in its routing table (and the module attributes the router falls back to)."""
    from gcp_storage_emulator import server
    from gcp_storage_emulator.handlers import objects

    patched = {
        objects.insert: _honouring_preconditions(objects.insert, _inserted),
        objects.upload_partial: _honouring_preconditions(objects.upload_partial, _resumed),
        objects.delete: _honouring_preconditions(objects.delete, _addressed, missing_is_404=True),
    }
    for _, handlers in server.HANDLERS:
        for method, handler in handlers.items():
            handlers[method] = patched.get(handler, handler)
    objects.insert = patched[objects.insert]


if __name__ == "__main__":
    from gcp_storage_emulator.__main__ import main

    patch_emulator()
    main()

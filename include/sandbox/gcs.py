"""The GCS emulator (the `gcp-storage-emulator` package, a real HTTP server) as a child process.

The collector reaches it through GCSHook with `STORAGE_EMULATOR_HOST` and an anonymous
`google_cloud_platform` connection, exactly as it would reach real GCS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

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
        executable = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
        self._proc = subprocess.Popen(
            [executable, "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        response = requests.post(f"{self.url}/storage/v1/b", params={"project": "sandbox"}, json={"name": bucket}, timeout=10)
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
            f"{self.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(name, safe='')}", params={"alt": "media"}, timeout=60
        )
        response.raise_for_status()
        return response.content

    def write(self, bucket: str, name: str, data: bytes) -> None:
        requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o", params={"uploadType": "media", "name": name}, data=data, timeout=60
        ).raise_for_status()

    def connection_env(self, conn_id: str = "google_cloud_default") -> dict[str, str]:
        """Environment that points GCSHook at this emulator through an anonymous connection."""
        return {
            "STORAGE_EMULATOR_HOST": self.url,
            f"AIRFLOW_CONN_{conn_id.upper()}": (
                '{"conn_type": "google_cloud_platform", "extra": {"is_anonymous": true, "project": "sandbox"}}'
            ),
        }

"""Where an interval lives in GCS, and how a finished interval replaces what was there.

The interval folder derives from the un-widened data interval only. Its `_manifest.json` is the one pointer
to the interval's result: an interval with a manifest is complete, and its events are exactly the parts
the manifest lists. Each attempt uploads its parts under its own prefix in the folder (`<attempt>/part-...`,
unique per run, try and process), so two runs of one interval never overwrite each other's parts, then
replaces the manifest with a generation precondition: the generation read when the publish began, or 0
when there was none. The old manifest is never deleted, so a publish that fails half way leaves the old
result whole (and the shrink guard something to compare with); of two overlapping publishes the second
meets 412, removes only its own parts and fails retryably. After a manifest is written, objects it does
not list that were created before it are removed: those of earlier attempts, never a newer run's parts
still being uploaded (that run read the old generation, so its manifest write can only fail). Every GCS
call goes through the client with its own retry off, so the store's bounded retry is the only one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import requests

from auditlogs.errors import AuditLogError, ShrinkingRerunError
from auditlogs.sink.parts import StagedPart
from auditlogs.window import Window

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
PART_CONTENT_TYPE = "application/x-ndjson"
#: Attempts of each GCS call before the task fails (and Airflow retries it with backoff).
GCS_ATTEMPTS = 4
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
#: Bucket missing or the service account lacks a role: a retry cannot help.
_REFUSED_STATUS = {401, 403, 404}
REFUSED_HINT = (
    "GCS refused the call, so a retry cannot help: check that the bucket exists and that the service account "
    "may create, read, list and delete objects in it (roles/storage.objectAdmin)"
)

T = TypeVar("T")


class SinkError(AuditLogError):
    """GCS refused or kept failing a call; the interval keeps its old manifest (or still has none)."""

    hint = "the task retries with backoff; if it repeats check GCS's status and the service account's roles"


class ConcurrentPublishError(SinkError):
    """Another run of the same interval replaced the manifest while this one was publishing."""

    hint = (
        "another run of this interval (a retry beside a task still running, or two reruns) published first; "
        "this attempt removed its own parts and kept the other's result; the task retries and compares with it"
    )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    return getattr(exc, "code", None) in _TRANSIENT_STATUS


#: Parts go up as resumable uploads in chunks of this size (a multiple of 256 KiB): without it the client
#: library reads up to 100 MiB of a part into memory at once.
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class IntervalLocation:
    bucket: str
    prefix: str
    source: str
    stream: str
    interval: Window

    @property
    def folder(self) -> str:
        parts = [self.prefix, self.source, self.stream, f"dt={self.interval.start:%Y-%m-%d}", self.interval.label()]
        return "/".join(part for part in parts if part)

    def object_name(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def uri(self, name: str = "") -> str:
        return f"gs://{self.bucket}/{self.object_name(name)}"

    def part_entries(self, attempt: str, parts: list[StagedPart]) -> list[dict]:
        """The manifest's list of parts: the only way a reader finds the interval's objects."""
        return [
            {
                "name": f"{attempt}/{p.path.name}",
                "uri": self.uri(f"{attempt}/{p.path.name}"),
                "events": p.events,
                "bytes": p.bytes,
                "sha256": p.sha256,
            }
            for p in parts
        ]

    def of(self, interval: Window) -> IntervalLocation:
        """The same stream's location for another interval."""
        return IntervalLocation(self.bucket, self.prefix, self.source, self.stream, interval)


def run_hash(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:8]


def new_attempt(run_id: str, try_number: int) -> str:
    """The prefix of one publishing attempt: which run and try (for humans and for resuming), and a random
    token, because a zombie and a manual rerun can share both."""
    return f"attempt-{run_hash(run_id)}-{try_number}-{secrets.token_hex(4)}"


def events_found(manifest: dict) -> int:
    """Events a run found in its window, written or not: skipping what an earlier interval stored
    (de-duplication) must not look like a shrinking interval."""
    storage = manifest.get("storage") or {}
    return int(storage.get("events_in_window", manifest["events"]))


class IntervalStore:
    """Publishes an interval's staged parts and manifest through the client of the google provider's GCSHook."""

    def __init__(self, hook, *, where: str = "", sleep: Callable[[float], None] = time.sleep):
        self.hook = hook
        self.where = where
        self.sleep = sleep
        self.retries = 0

    def read_manifest(self, location: IntervalLocation) -> dict | None:
        """The interval's manifest, or None while the interval is not complete."""
        blob = self._current(location)
        return None if blob is None else self._download(location, blob)

    def publish(
        self,
        location: IntervalLocation,
        parts: list[StagedPart],
        manifest: dict,
        allow_shrink: bool = False,
        staged: int = 0,
    ) -> None:
        """Uploads `parts` to the object names `manifest["parts"]` gives them after its first `staged` (in
        GCS already: an earlier try's, sink/checkpoint.py), then the manifest (see the module docstring for
        why this order and these preconditions)."""
        listed = [location.object_name(entry["name"]) for entry in manifest["parts"]]
        names = listed[staged:]
        if len(names) != len(parts):
            raise ValueError("the manifest must list every staged part, in order")
        old = self._current(location)
        generation = 0 if old is None else old.generation  # before the download, which may reset it
        if old is not None:
            self._refuse_shrinking(location, self._download(location, old), events_found(manifest), allow_shrink)
        written: list[str] = []
        try:
            for part, name in zip(parts, names, strict=True):
                self._upload_file(location, name, part.path)
                written.append(name)
            created = self._write_manifest(location, manifest, generation)
        except Exception:
            self._remove_own_parts(location, manifest, written)
            raise
        self._remove_leftovers(location, set(listed), created)

    def generation(self, location: IntervalLocation) -> int:
        """The manifest's GCS generation, 0 while the interval has none."""
        current = self._current(location)
        return 0 if current is None else int(current.generation)

    def read_json(self, location: IntervalLocation, name: str) -> Any:
        """An object of the folder as JSON, None when it does not exist; ValueError when it is not JSON."""
        from google.api_core.exceptions import NotFound

        def read() -> bytes | None:
            try:
                return self._blob(location, location.object_name(name)).download_as_bytes(retry=None)
            except NotFound:
                return None

        content = self._call(f"read {location.object_name(name)}", read)
        return None if content is None else json.loads(content)

    def write_json(self, location: IntervalLocation, name: str, data: dict) -> None:
        self._call(
            f"upload {location.object_name(name)}",
            lambda: self._blob(location, location.object_name(name)).upload_from_string(
                json.dumps(data), content_type="application/json", retry=None
            ),
        )

    def remove(self, location: IntervalLocation, name: str) -> None:
        """Deletes an object of the folder (relative `name`); one already gone is fine."""
        self._delete(location, location.object_name(name))

    def upload_part(self, location: IntervalLocation, name: str, path) -> None:
        """Stages one part (relative `name`) before the manifest that will list it exists."""
        self._upload_file(location, location.object_name(name), path)

    def download_part(self, location: IntervalLocation, name: str, path) -> None:
        """Reads a staged part (relative `name`) back to local disk as stored, in bounded memory."""
        object_name = location.object_name(name)
        self._call(
            f"read {object_name}",
            lambda: self._blob(location, object_name).download_to_filename(str(path), raw_download=True, retry=None),
        )

    def _upload_file(self, location: IntervalLocation, object_name: str, path) -> None:
        self._call(
            f"upload {object_name}",
            lambda: self._blob(location, object_name, chunked=True).upload_from_filename(
                str(path), content_type=PART_CONTENT_TYPE, retry=None
            ),
        )

    def sizes(self, location: IntervalLocation) -> dict[str, int]:
        """Every object of the interval's folder and its size."""
        blobs = self._call(
            f"list {location.uri()}",
            lambda: list(self._client().list_blobs(location.bucket, prefix=location.folder + "/", retry=None)),
        )
        return {blob.name: blob.size for blob in blobs}

    def _write_manifest(self, location: IntervalLocation, manifest: dict, generation: int) -> datetime:
        """Writes the manifest if the interval still holds `generation`; returns the manifest's creation time."""
        from google.api_core.exceptions import PreconditionFailed

        name = location.object_name(MANIFEST_NAME)
        blob = self._blob(location, name)
        try:
            self._call(
                f"upload {name}",
                lambda: blob.upload_from_string(
                    json.dumps(manifest, indent=2, sort_keys=True),
                    content_type="application/json",
                    if_generation_match=generation,
                    retry=None,
                ),
            )
            return blob.time_created
        except PreconditionFailed:
            failed = None
        except SinkError as exc:
            failed = exc
        try:
            current = self._current(location)
            winner = current and self._download(location, current)
        except SinkError:
            raise failed or ConcurrentPublishError(
                f"the interval's manifest {location.uri(MANIFEST_NAME)} was replaced while this attempt published",
                where=self.where,
            ) from None
        if winner and winner.get("attempt") == manifest["attempt"]:
            return current.time_created  # a try of this very write landed, its answer was lost
        if failed is not None:
            raise failed
        raise ConcurrentPublishError(
            f"the interval's manifest {location.uri(MANIFEST_NAME)} was replaced while this attempt published "
            f"(by run {(winner or {}).get('run_id')!r} try {(winner or {}).get('try_number')}); nothing of this "
            "attempt was kept",
            where=self.where,
        )

    def _remove_own_parts(self, location: IntervalLocation, manifest: dict, written: list[str]) -> None:
        """After a failed publish: only once the manifest is known not to point at them (a manifest write
        that failed to answer may still have landed)."""
        try:
            current = self._current(location)
            if current is not None and self._download(location, current).get("attempt") == manifest["attempt"]:
                return
            for name in written:
                self._delete(location, name)
        except (SinkError, ValueError) as exc:
            log.warning(
                "%s: could not remove this attempt's parts (%s); the next publish removes them", self.where, exc
            )

    def _remove_leftovers(self, location: IntervalLocation, listed: set[str], manifest_created: datetime) -> None:
        """The interval is complete already: a failure here leaves leftovers to the next publish, no more."""
        manifest_object = location.object_name(MANIFEST_NAME)
        try:
            blobs = self._call(
                f"list {location.uri()}",
                lambda: list(self._client().list_blobs(location.bucket, prefix=location.folder + "/", retry=None)),
            )
            for blob in blobs:
                if blob.name not in listed and blob.name != manifest_object and blob.time_created < manifest_created:
                    log.info("Removing %s, which the manifest does not list (an earlier attempt's)", blob.name)
                    self._delete(location, blob.name)
        except SinkError as exc:
            log.warning(
                "%s: the interval is complete, but removing leftovers failed (%s); the next publish of "
                "this interval removes them, and readers follow the manifest only",
                self.where,
                exc,
            )

    def _delete(self, location: IntervalLocation, name: str) -> None:
        from google.api_core.exceptions import NotFound

        def delete() -> None:
            try:
                self._blob(location, name).delete(retry=None)
            except NotFound:
                pass  # gone already (another run's cleanup, a retried delete that had landed): what we wanted

        self._call(f"delete {name}", delete)

    def _current(self, location: IntervalLocation):
        name = location.object_name(MANIFEST_NAME)
        return self._call(f"check {name}", lambda: self._client().bucket(location.bucket).get_blob(name, retry=None))

    def _download(self, location: IntervalLocation, blob) -> dict:
        return json.loads(self._call(f"read {blob.name}", lambda: blob.download_as_bytes(retry=None)))

    def _client(self):
        if not hasattr(self, "_storage_client"):
            self._storage_client = self.hook.get_conn()
        return self._storage_client

    def _blob(self, location: IntervalLocation, name: str, chunked: bool = False):
        return self._client().bucket(location.bucket).blob(name, chunk_size=UPLOAD_CHUNK_BYTES if chunked else None)

    def _refuse_shrinking(self, location: IntervalLocation, existing: dict, events: int, allow_shrink: bool) -> None:
        try:
            recorded = events_found(existing)
        except (KeyError, TypeError, ValueError):
            log.warning(
                "%s: the existing manifest %s is unreadable; replacing it", self.where, location.uri(MANIFEST_NAME)
            )
            return
        if events >= recorded:
            return
        if allow_shrink:
            log.warning("%s: replacing %d events with %d (allow_shrink is set)", self.where, recorded, events)
            return
        raise ShrinkingRerunError(
            f"this rerun found {events} events but the interval's existing manifest records {recorded} "
            f"({location.uri(MANIFEST_NAME)}): events may have aged out of the API's retention, or the API "
            "answered empty pages; refusing to overwrite the existing output",
            where=self.where,
        )

    def _call(self, what: str, call: Callable[[], T]) -> T:
        from google.api_core.exceptions import PreconditionFailed

        for attempt in range(1, GCS_ATTEMPTS + 1):
            try:
                return call()
            except PreconditionFailed:
                raise  # an answer, not a failure: the caller decides
            except Exception as exc:  # noqa: BLE001 - classified right below
                transient = _is_transient(exc)
                if not transient or attempt == GCS_ATTEMPTS:
                    refused = getattr(exc, "code", None) in _REFUSED_STATUS
                    raise SinkError(
                        f"GCS call '{what}' failed ({type(exc).__name__}, status {getattr(exc, 'code', None)}) "
                        f"after {attempt} attempt(s)",
                        where=self.where,
                        retryable=not refused,
                        hint=REFUSED_HINT if refused else None,
                    ) from None
                delay = random.uniform(0.5, 1.0) * 2 ** (attempt - 1)
                log.warning(
                    "%s: GCS call '%s' failed (%s); retrying in %.1fs", self.where, what, type(exc).__name__, delay
                )
                self.retries += 1
                self.sleep(delay)
        raise AssertionError("unreachable")

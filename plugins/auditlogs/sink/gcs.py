"""Where an interval lives in GCS, and how a finished interval replaces what was there.

Names derive from the un-widened data interval only, so a rerun of an interval replaces its objects and
never duplicates them. The manifest is written last and removed first: an interval with a manifest is
complete, one without is not. Every GCS call is retried a few times on transient failures (GCSHook's own
`num_max_attempts` uploads N times even on success, so it is not used). A rerun that found fewer events
than the manifest it would replace keeps the existing objects and fails, unless shrinking is allowed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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

T = TypeVar("T")


class SinkError(AuditLogError):
    """GCS refused or kept failing a call; the interval has no manifest (or keeps its old one)."""

    hint = "the task retries with backoff; if it repeats check GCS's status and the service account's roles"


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

    def of(self, interval: Window) -> IntervalLocation:
        """The same stream's location for another interval."""
        return IntervalLocation(self.bucket, self.prefix, self.source, self.stream, interval)


def events_found(manifest: dict) -> int:
    """Events a run found in its window, written or not: skipping what an earlier interval stored
    (de-duplication) must not look like a shrinking interval."""
    storage = manifest.get("storage") or {}
    return int(storage.get("events_in_window", manifest["events"]))


class IntervalStore:
    """Publishes an interval's staged parts and manifest through the google provider's GCSHook."""

    def __init__(self, hook, *, where: str = "", sleep: Callable[[float], None] = time.sleep):
        self.hook = hook
        self.where = where
        self.sleep = sleep
        self.retries = 0

    def existing_objects(self, location: IntervalLocation) -> list[str]:
        return self._call(f"list {location.uri()}", lambda: self.hook.list(location.bucket, prefix=location.folder + "/"))

    def read_manifest(self, location: IntervalLocation) -> dict | None:
        """The interval's manifest, or None while the interval is not complete."""
        name = location.object_name(MANIFEST_NAME)
        if not self._call(f"check {name}", lambda: self.hook.exists(location.bucket, name)):
            return None
        return json.loads(self._call(f"read {name}", lambda: self.hook.download(location.bucket, name)))

    def publish(self, location: IntervalLocation, parts: list[StagedPart], manifest: dict, allow_shrink: bool = False) -> None:
        existing = set(self.existing_objects(location))
        manifest_object = location.object_name(MANIFEST_NAME)
        if manifest_object in existing:
            self._refuse_shrinking(location, manifest_object, events_found(manifest), allow_shrink)
            self._call(f"delete {manifest_object}", lambda: self.hook.delete(location.bucket, manifest_object))
        written = set()
        for part in parts:
            object_name = location.object_name(part.path.name)
            self._call(f"upload {object_name}", lambda: self.hook.upload(
                location.bucket, object_name, filename=str(part.path), mime_type=PART_CONTENT_TYPE,
                chunk_size=UPLOAD_CHUNK_BYTES,
            ))
            written.add(object_name)
        for leftover in sorted(existing - written - {manifest_object}):
            log.info("Removing %s left over from an earlier attempt of this interval", leftover)
            self._call(f"delete {leftover}", lambda: self.hook.delete(location.bucket, leftover))
        self._call(f"upload {manifest_object}", lambda: self.hook.upload(
            location.bucket, manifest_object, data=json.dumps(manifest, indent=2, sort_keys=True),
            mime_type="application/json",
        ))

    def _refuse_shrinking(self, location: IntervalLocation, manifest_object: str, events: int, allow_shrink: bool) -> None:
        raw = self._call(f"read {manifest_object}", lambda: self.hook.download(location.bucket, manifest_object))
        try:
            recorded = events_found(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            log.warning("%s: the existing manifest %s is unreadable; replacing it", self.where, manifest_object)
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
        for attempt in range(1, GCS_ATTEMPTS + 1):
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classified right below
                transient = _is_transient(exc)
                if not transient or attempt == GCS_ATTEMPTS:
                    raise SinkError(
                        f"GCS call '{what}' failed ({type(exc).__name__}, status {getattr(exc, 'code', None)}) "
                        f"after {attempt} attempt(s)",
                        where=self.where,
                        retryable=getattr(exc, "code", None) not in _REFUSED_STATUS,
                    ) from None
                delay = random.uniform(0.5, 1.0) * 2 ** (attempt - 1)
                log.warning("%s: GCS call '%s' failed (%s); retrying in %.1fs", self.where, what, type(exc).__name__, delay)
                self.retries += 1
                self.sleep(delay)
        raise AssertionError("unreachable")

"""Where an interval lives in GCS, and how a finished interval replaces what was there.

Names derive from the un-widened data interval only, so a rerun of an interval replaces its objects and
never duplicates them. The manifest is written last and removed first: an interval with a manifest is
complete, one without is not.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from auditlogs.sink.parts import StagedPart
from auditlogs.window import Window

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
PART_CONTENT_TYPE = "application/x-ndjson"


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


class IntervalStore:
    """Publishes an interval's staged parts and manifest through the google provider's GCSHook."""

    def __init__(self, hook):
        self.hook = hook

    def existing_objects(self, location: IntervalLocation) -> list[str]:
        return self.hook.list(location.bucket, prefix=location.folder + "/")

    def read_manifest(self, location: IntervalLocation) -> dict | None:
        """The interval's manifest, or None while the interval is not complete."""
        name = location.object_name(MANIFEST_NAME)
        if not self.hook.exists(location.bucket, name):
            return None
        return json.loads(self.hook.download(location.bucket, name))

    def publish(self, location: IntervalLocation, parts: list[StagedPart], manifest: dict) -> None:
        existing = set(self.existing_objects(location))
        manifest_object = location.object_name(MANIFEST_NAME)
        if manifest_object in existing:
            self.hook.delete(location.bucket, manifest_object)
        written = set()
        for part in parts:
            object_name = location.object_name(part.path.name)
            self.hook.upload(
                location.bucket, object_name, filename=str(part.path), mime_type=PART_CONTENT_TYPE,
            )
            written.add(object_name)
        for leftover in sorted(existing - written - {manifest_object}):
            log.info("Removing %s left over from an earlier attempt of this interval", leftover)
            self.hook.delete(location.bucket, leftover)
        self.hook.upload(
            location.bucket, manifest_object, data=json.dumps(manifest, indent=2, sort_keys=True),
            mime_type="application/json",
        )

"""Progress that survives a failed try: the next try of the same run continues at the first page not yet
safely staged, instead of fetching the window again from its first page.

A try writes its events into parts on local disk as before. When a page fails (or every `checkpoint_every`
while paging goes well), between two pages, the parts written so far are uploaded under the try's own
attempt prefix and a small checkpoint, `_resume-<run hash>.json` in the interval's folder, records them with
where paging continues (the next request, the loop's guards, the edge de-duplication, the counts so far, the
overlap decisions) and a fingerprint of everything that decides what is fetched (the source's options
such as page size and delay, the stream, the widened window, the API's base URL, the package version).
An API that lists content blobs (O365) is also kept between two blobs of a page: the position then carries
the page's entries from the next blob on, besides the request after the page, so a failure on blob k is
continued at blob k without asking for the page again. A source that de-duplicates over the whole window
(O365, Dropbox) gets its window's ids back from the carried parts themselves: every id seen is written once
(a repeat never is), so the resumed try reads each part back, checks its sha256 and takes in the ids of its
lines, in bounded memory (one part on local disk at a time, the ids in sink/window_ids.py); the events an
earlier interval had stored, seen but never written, are carried as ids in the position.

Nothing of this is visible as a result: readers follow the manifest only, and the manifest is still written
last, with its generation precondition, listing exactly the parts of this interval (the carried ones and
the last try's). A checkpoint is used only by a try of the same run, with the same fingerprint, when the
manifest's generation is still the one the checkpoint was made against (no run published in between, whose
cleanup may have removed the staged parts) and every part it lists is in GCS with its recorded size;
otherwise the try logs why and starts from the first page. A publish removes the checkpoint and unlisted
parts like any other leftover older than the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import auditlogs
from auditlogs.client.api import ApiClient, ClientStats
from auditlogs.client.pagination import PagingState
from auditlogs.collector import CollectResult, EdgeDeduplicator, Progress, request_from
from auditlogs.config import SourceConfig
from auditlogs.errors import AuditLogError, PaginationError, holds_secret
from auditlogs.sink.gcs import IntervalLocation, IntervalStore, run_hash
from auditlogs.sink.parts import PartWriter, StagedPart
from auditlogs.sink.window_ids import WindowIds
from auditlogs.sources.base import Order
from auditlogs.window import Window

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 2
#: Config keys that change how hard or how often a run tries, not what it fetches or writes: a checkpoint
#: made before a user raised `page_max_wait` (say) is still resumed.
OPERATIONAL_KEYS = frozenset(
    {
        "retries",
        "retry_delay",
        "max_retry_delay",
        "page_attempts",
        "page_max_wait",
        "request_timeout",
        "notify",
        "deadline",
        "silence_after",
        "execution_timeout",
        "pool",
        "pool_slots",
        "requests_per_minute",
        "requests_per_hour",
        "max_active_runs",
        "catchup",
        "checkpoint_every",
        "bigquery_dataset",
        "sweep",
        "sweep_schedule",
        "allow_shrink",
        "max_response_bytes",
        "max_compressed_response_bytes",
    }
)
#: The request counters a resumed try adds to its own, so the manifest counts the whole window's cost.
COUNTERS = ("requests", "retries", "rate_limited", "transient_failures", "bytes_received", "waited_seconds")


def checkpoint_name(run_id: str) -> str:
    return f"_resume-{run_hash(run_id)}.json"


def fingerprint(source: SourceConfig, stream: str, window: Window, base_url: str) -> str:
    """What decides the pages a window's paging visits and the lines written: a checkpoint of another is
    never resumed."""
    options = {k: v for k, v in source.model_dump(mode="json").items() if k not in OPERATIONAL_KEYS}
    text = json.dumps(
        {
            "format": CHECKPOINT_VERSION,
            "package": auditlogs.__version__,
            "source": options,
            "stream": stream,
            "window": [window.start.isoformat(), window.end.isoformat()],
            "base_url": base_url,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ResumableStaging:
    """The part writer a try collects into, which can keep the try's work in GCS between two pages."""

    def __init__(
        self,
        store: IntervalStore,
        location: IntervalLocation,
        *,
        run_id: str,
        try_number: int,
        attempt: str,
        fingerprint: str,
        staging_dir: Path,
        part_size: int,
        every: float,
        stored_key: Callable[[bytes], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`stored_key` (collector.stored_key) is given for a source that de-duplicates window-wide."""
        self.store, self.location = store, location
        self.run_id, self.try_number, self.attempt, self.fingerprint = run_id, try_number, attempt, fingerprint
        self.staging_dir, self.part_size, self.every, self.clock = staging_dir, part_size, every, clock
        self.stored_key = stored_key
        self.name = checkpoint_name(run_id)
        self.where = store.where
        #: Parts in GCS that the manifest will list first: those of earlier tries and this try's seals.
        self.carried: list[dict] = []
        #: The position this try starts from, the overlap state and counters it carries (None: fresh).
        self.start: dict | None = None
        self.overlap: dict | None = None
        self.requests: dict[str, float] = dict.fromkeys(COUNTERS, 0)
        self.started_at: str | None = None
        self.resumed: dict | None = None
        self.base_generation = 0
        #: The window's ids so far, rebuilt from the carried parts (a source de-duplicating window-wide).
        self.window_ids: WindowIds | None = None
        self._sealed = (0, 0)
        self._writer = PartWriter(staging_dir, part_size)
        self._sealed_at = clock()

    # --- Before the first page ---------------------------------------------------------------------------

    def load(self, client: ApiClient) -> dict | None:
        """The position to continue from, or None (with the reason logged) to start at the first page."""
        self.base_generation = self.store.generation(self.location)
        try:
            saved = self.store.read_json(self.location, self.name)
        except ValueError:
            self._fresh("it is not JSON")
            return None
        if saved is None:
            return None
        try:
            why = self._refusal(saved, client)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            why = f"it is malformed ({type(exc).__name__})"
        except AuditLogError as exc:
            why = f"its position is unusable ({exc.what})"
        if why is None and self.stored_key is not None:
            try:
                why = self._rebuild_ids(saved["parts"])
            except (ValueError, EOFError, OSError) as exc:  # bad gzip, JSON or key: a part is not what was written
                why = f"a part it lists is unreadable ({type(exc).__name__})"
        if why:
            self._fresh(why)
            return None
        self.carried = list(saved["parts"])
        self.start, self.overlap = saved["collector"], saved["overlap"]
        self.requests = {k: saved["requests"][k] for k in COUNTERS}
        self.started_at = saved["started_at"]
        self._sealed = _reached(self.start)
        self.resumed = {
            "from_try": saved["try_number"],
            "pages": self.start["result"]["pages"],
            "parts": len(self.carried),
            "events": self.start["result"]["written"],
        }
        log.info(
            "%s: resuming the window where try %s of this run stopped: %d pages and %d events kept in %d part(s) (%s)",
            self.where,
            saved["try_number"],
            self.resumed["pages"],
            self.resumed["events"],
            len(self.carried),
            self.location.uri(self.name),
        )
        return self.start

    def _refusal(self, saved: Any, client: ApiClient) -> str | None:
        """Why `saved` must not be continued from, or None. Raises on a malformed one."""
        if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
            return "it is of another format"
        if saved["run_id"] != self.run_id:
            return "it belongs to another run"
        if saved["fingerprint"] != self.fingerprint:
            return "it was made with another config (page size, window, delay, options or connection host)"
        if saved["base_generation"] != self.base_generation:
            return "another run published this interval since it was made"
        position = saved["collector"]
        CollectResult.from_json(position["result"])
        if not all(isinstance(entry, dict) for entry in position["blobs"]):
            raise ValueError("blobs")
        for url in _urls(position["blobs"]):
            client.resolve(url)  # a carried blob on another host: refused, never fetched
        if not all(isinstance(event_id, str) for event_id in position["skipped_ids"]):
            raise ValueError("skipped_ids")
        if position["edge"] is not None:  # None: an unsorted API, de-duplicated window-wide
            EdgeDeduplicator(Order.OLDEST_FIRST).restore(position["edge"])  # checks its shape; the order is not read
        if position["request"] is not None:
            client.resolve(request_from(position["request"]).url)  # another host: refused, never sent
        if position["request"] is not None or position["blobs"]:
            PagingState.from_json(position["paging"])
        if not isinstance(position["piece"], int) or position["piece"] < 0:
            raise ValueError("piece")
        if position["oldest"] is not None:
            datetime.fromisoformat(position["oldest"])
        pattern = re.compile(rf"attempt-{run_hash(self.run_id)}-\d+-[0-9a-f]{{8}}/part-\d{{5}}\.ndjson\.gz")
        sizes = self.store.sizes(self.location)
        for entry in saved["parts"]:
            if not pattern.fullmatch(entry["name"]) or entry["uri"] != self.location.uri(entry["name"]):
                return f"it lists a part outside this run's attempts ({entry['name']!r})"
            if sizes.get(self.location.object_name(entry["name"])) != entry["bytes"]:
                return f"its part {entry['name']} is missing or changed"
            if not (isinstance(entry["events"], int) and isinstance(entry["sha256"], str)):
                raise TypeError("part entry")
        if not all(isinstance(saved["requests"][k], (int, float)) for k in COUNTERS):
            raise ValueError("requests")
        datetime.fromisoformat(saved["started_at"])
        return None

    def _rebuild_ids(self, parts: list[dict]) -> str | None:
        """Reads the carried parts back into the window's ids; why not to resume when one is not as written."""
        ids = WindowIds(self.staging_dir)
        key, path = self.stored_key, self.staging_dir / "carried-part.ndjson.gz"
        assert key is not None
        try:
            for entry in parts:
                self.store.download_part(self.location, entry["name"], path)
                if _sha256(path) != entry["sha256"]:
                    ids.close()
                    return f"its part {entry['name']} is missing or changed"
                with gzip.open(path, "rb") as lines:
                    ids.remember(map(key, lines))
                path.unlink()
        except BaseException:
            ids.close()
            raise
        self.window_ids = ids
        return None

    def _fresh(self, why: str) -> None:
        log.warning(
            "%s: not resuming from %s: %s; starting the window from its first page",
            self.where,
            self.location.uri(self.name),
            why,
        )

    # --- While paging --------------------------------------------------------------------------------------

    def write(self, line: bytes) -> None:
        self._writer.write(line)

    def between_pages(self, progress: Progress, extra: Callable[[], dict]) -> None:
        """Seals every `every` seconds (0: never while paging goes well)."""
        if self.every and self.clock() - self._sealed_at >= self.every:
            self.seal(progress, extra())

    def keep(self, progress: Progress, extra: Callable[[], dict], failure: BaseException) -> None:
        """After a failed page: seal what this try fetched, if it stopped cleanly between two pages."""
        if isinstance(failure, PaginationError):
            # The API's paging itself went wrong (a position sent twice, pages without progress): its position
            # cannot be trusted, and a try resumed there would fail the same way. The next try starts afresh.
            log.warning(
                "%s: the API's paging failed (%s), so the next try pages the window from its start",
                self.where,
                failure.what,
            )
            try:
                self.store.remove(self.location, self.name)
            except Exception as exc:  # noqa: BLE001 - the page's failure is what the task reports
                log.warning(
                    "%s: could not remove the checkpoint %s (%s)", self.where, self.location.uri(self.name), exc
                )
            return
        if not progress.clean:
            log.warning(
                "%s: the failure came part way through a page, so this try's pages since the last "
                "checkpoint are not kept (%s)",
                self.where,
                type(failure).__name__,
            )
            return
        try:
            self.seal(progress, extra())
        except Exception as exc:  # noqa: BLE001 - the page's failure is what the task reports
            log.warning(
                "%s: could not keep this try's pages for the next try (%s); it starts where the last checkpoint did",
                self.where,
                exc,
            )

    def seal(self, progress: Progress, extra: dict) -> None:
        """Uploads the parts written so far and then the checkpoint pointing at them and at the position."""
        position = progress.position()
        if _reached(position) == self._sealed:
            return  # nothing handled since the last checkpoint
        if holds_secret(json.dumps(position)):
            # A hostile or broken API echoing the credential into its cursor: never written to GCS.
            log.warning(
                "%s: the API's next-page position carries the credential, so it is not kept for a retry", self.where
            )
            return
        lines = self._writer.lines
        parts = self._writer.close()
        next_index = self._writer.first_index + len(parts)
        if lines:
            entries = self.location.part_entries(self.attempt, parts)
            for part, entry in zip(parts, entries, strict=True):
                self.store.upload_part(self.location, entry["name"], part.path)
                part.path.unlink()
            self.carried.extend(entries)
        else:
            next_index = self._writer.first_index
        self._writer = PartWriter(self.staging_dir, self.part_size, first_index=next_index)
        self.store.write_json(
            self.location,
            self.name,
            {
                "version": CHECKPOINT_VERSION,
                "run_id": self.run_id,
                "try_number": self.try_number,
                "attempt": self.attempt,
                "fingerprint": self.fingerprint,
                "base_generation": self.base_generation,
                "started_at": extra["started_at"],
                "parts": self.carried,
                "collector": position,
                "overlap": extra["overlap"],
                "requests": extra["requests"],
            },
        )
        self._sealed, self._sealed_at = _reached(position), self.clock()
        log.info(
            "%s: kept %d pages and %d events in %d part(s) for a retry of this run (%s)",
            self.where,
            position["result"]["pages"],
            position["result"]["written"],
            len(self.carried),
            self.location.uri(self.name),
        )

    def totals(self, stats: ClientStats) -> dict[str, float]:
        """This try's request counters plus those of the tries it continues."""
        return {k: round(self.requests[k] + getattr(stats, k), 3) for k in COUNTERS}

    # --- After the last page -------------------------------------------------------------------------------

    def close(self) -> list[StagedPart]:
        """This try's remaining parts; an empty last part is dropped when parts were carried."""
        lines, parts = self._writer.lines, self._writer.close()
        if self.carried and not lines:
            return []
        return parts

    def __enter__(self) -> ResumableStaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.__exit__(*exc)
        if self.window_ids is not None:
            self.window_ids.close()


def _reached(position: dict) -> tuple[int, int]:
    """How far a position is: the pages fetched, and the blobs of the last one still to fetch."""
    return position["result"]["pages"], len(position["blobs"])


def _urls(value: Any) -> list[str]:
    """Every absolute URL in a JSON value."""
    if isinstance(value, str):
        return [value] if "://" in value else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [url for item in items for url in _urls(item)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

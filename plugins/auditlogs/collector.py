"""Collecting one stream's window: page through the API, keep the events inside the exact half-open
window once each, stream them into the part writer. Plain Python, driven by the operator and by tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from auditlogs import exact_json
from auditlogs.client.api import ApiClient, ApiResponse
from auditlogs.client.pagination import paginate
from auditlogs.config import SourceConfig
from auditlogs.errors import MalformedEventError, MalformedResponseError, excerpt
from auditlogs.sink.parts import PartWriter
from auditlogs.sink.window_ids import WindowIds
from auditlogs.sources.base import BadEventError, Order, SourceSpec
from auditlogs.window import Window

log = logging.getLogger(__name__)


@dataclass
class CollectResult:
    pages: int = 0
    fetched: int = 0
    written: int = 0
    outside_window: int = 0
    duplicates: int = 0
    #: Skipped because an earlier, overlapping run already stored them (see sink/overlap.py).
    already_stored: int = 0
    out_of_order: int = 0
    #: In-window events in the API's order not seen before in this window (kept or already stored): progress.
    new: int = 0
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None
    #: For a source whose repeats can sit anywhere in the window: its id store's counts (spilled, lookups).
    window_ids: dict | None = None

    def note_time(self, moment: datetime) -> None:
        if self.first_event_time is None or moment < self.first_event_time:
            self.first_event_time = moment
        if self.last_event_time is None or moment > self.last_event_time:
            self.last_event_time = moment


class EdgeDeduplicator:
    """Drops events repeated across page boundaries in bounded memory.

    In an ordered API a repeat can only sit at the edge reached so far (events sharing the last timestamp,
    the inclusive bounds and same-second bursts), so only the ids at that edge are kept, not the window's.
    """

    def __init__(self, order: Order):
        self.newest_first = order is Order.NEWEST_FIRST
        self.edge: datetime | None = None
        self.ids: set[str] = set()

    def is_repeat(self, event_id: str, moment: datetime) -> bool | None:
        """True for a repeat, False for a new event, None for a new event against the declared order."""
        if self.edge is None or (moment < self.edge if self.newest_first else moment > self.edge):
            self.edge, self.ids = moment, {event_id}
            return False
        if moment == self.edge:
            if event_id in self.ids:
                return True
            self.ids.add(event_id)
            return False
        return None


def collect(
    spec: SourceSpec,
    config: SourceConfig,
    stream: str,
    client: ApiClient,
    window: Window,
    writer: PartWriter,
    max_pages: int,
    now: datetime | None = None,
    admit: Callable[[str, datetime], bool] | None = None,
) -> CollectResult:
    """`admit(event_id, event_time)` returning False skips an in-window event that another run stored."""
    result = CollectResult()
    # Repeats anywhere in the window (O365's across blobs): dropped by id in bounded memory, spilling to disk
    # beside the staged parts for a large window (sink/window_ids.py).
    with WindowIds(writer.staging_dir) if spec.repeats_anywhere else nullcontext() as anywhere:
        _collect_window(spec, config, stream, client, window, writer, max_pages, now, admit, result, anywhere)
        if anywhere is not None:
            result.window_ids = anywhere.stats()
            log.info("%s: window de-duplication: %s", client.where, result.window_ids)
    return result


def _collect_window(spec: SourceSpec, config: SourceConfig, stream: str, client: ApiClient, window: Window,
                    writer: PartWriter, max_pages: int, now: datetime | None,
                    admit: Callable[[str, datetime], bool] | None, result: CollectResult,
                    anywhere: WindowIds | None) -> None:
    if spec.snapshot is not None:
        spec.snapshot.check_reach(config, window, now or datetime.now(timezone.utc), client.where)
    if spec.visible_after is not None:
        _wait_until_visible(spec.visible_after(config), window, now or datetime.now(timezone.utc), client)
    if spec.prepare is not None:
        spec.prepare(client, config, stream)
    oldest: datetime | None = None
    # Pieces tile the window (an API that limits how long a window one request may ask for); each is paged
    # and trimmed on its own, so a piece's padding never brings back what the piece before it wrote.
    for piece in window.pieces(spec.max_window):
        dedup = EdgeDeduplicator(spec.order_for(config))
        asked = spec.asked_window(config, piece) if spec.asked_window else None
        for response in paginate(client, spec.paginator, spec.first_request(config, stream, piece), max_pages,
                                 new_events=lambda: result.new):
            result.pages += 1
            kept = listed = 0
            timed_before: Any = None
            moment: datetime | None = None
            for event, timed in _events(spec, config, client, response):
                listed += 1
                result.fetched += 1
                try:
                    event_id = spec.key(event)
                    # A blob's records share its listing entry's time: parsed once a blob, not once a record.
                    if moment is None or timed is not timed_before:
                        moment = spec.event_time(timed)
                    timed_before = timed
                except BadEventError as exc:
                    raise MalformedEventError(
                        f"page {result.pages}, event {result.fetched}: {exc}", where=client.where,
                        status=response.status, body_excerpt=excerpt(exact_json.line(event), client.secrets),
                    ) from None
                oldest = moment if oldest is None or moment < oldest else oldest
                if not piece.contains(moment):
                    result.outside_window += 1
                    if asked is not None and asked.contains(moment):
                        result.new += 1  # the padding the API cannot be spared, not a runaway
                    continue
                repeat = dedup.is_repeat(event_id, moment)
                if repeat or (anywhere is not None and anywhere.is_repeat(event_id)):
                    result.duplicates += 1
                    continue
                if repeat is None:
                    result.out_of_order += 1  # new or a repeat behind the edge: kept, but not counted as progress
                else:
                    result.new += 1
                if admit is not None and not admit(event_id, moment):
                    result.already_stored += 1
                    continue
                writer.write(exact_json.line(event))
                result.note_time(moment)
                kept += 1
            result.written += kept
            log.info(
                "%s: page %d: %d events, %d kept (%d written so far)",
                client.where, result.pages, listed, kept, result.written,
            )
            # Let the page go before the next: memory is one page (None is no ApiResponse, hence the ignore).
            response = event = timed = timed_before = None  # type: ignore[assignment]
    if spec.check_window is not None:
        spec.check_window(client, config, stream, window, result.fetched - result.outside_window)
    if spec.snapshot is not None:
        spec.snapshot.check_complete(config, window, result.fetched, oldest, client.where)


def _wait_until_visible(buffer: timedelta, window: Window, now: datetime, client: ApiClient) -> None:
    """Sleeps until the window's end is `buffer` in the past: asked earlier, such an API answers its last
    minutes empty, and the interval would be written short but complete."""
    wait = (window.end + buffer - now).total_seconds()
    if wait > 0:
        log.info("%s: the API shows events only %.0fs after they happen; waiting %.0fs before asking for the window",
                 client.where, buffer.total_seconds(), wait)
        client.sleep(wait)
        client.stats.waited_seconds += wait


def _events(spec: SourceSpec, config: SourceConfig, client: ApiClient,
            response: ApiResponse) -> Iterator[tuple[dict, dict]]:
    """(event, what its time is read from) for each event of a page: the event itself, or, for an API that
    lists content blobs, each record of each listed blob with its listing entry (one blob held at a time)."""
    try:
        listed = spec.events(response.body)
    except BadEventError as exc:
        raise MalformedResponseError(str(exc), where=client.where, status=response.status) from None
    if spec.blob is None:
        for event in listed:
            yield event, event
        return
    for entry in listed:
        for record in spec.blob(client, config, entry):
            yield record, entry


"""Collecting one stream's window: page through the API, keep the events inside the exact half-open
window once each, stream them into the part writer. Plain Python, driven by the operator and by tests."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from auditlogs import exact_json
from auditlogs.client.api import ApiClient, ApiResponse
from auditlogs.client.pagination import paginate
from auditlogs.config import SourceConfig
from auditlogs.errors import MalformedEventError, MalformedResponseError, excerpt
from auditlogs.sink.parts import PartWriter
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


class WindowDeduplicator:
    """Drops events repeated anywhere in the window (O365 repeats records across blobs): 8 bytes of a
    BLAKE2 digest per id seen, about 60 bytes of memory per event of the window, not the events."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def is_repeat(self, event_id: str, moment: datetime) -> bool:
        digest = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
        if digest in self.seen:
            return True
        self.seen.add(digest)
        return False


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
    unsorted = spec.order_for(config) is Order.UNSORTED
    anywhere = WindowDeduplicator() if spec.repeats_anywhere or unsorted else None
    if spec.snapshot is not None:
        spec.snapshot.check_reach(config, window, now or datetime.now(timezone.utc), client.where)
    if spec.prepare is not None:
        spec.prepare(client, config, stream)
    oldest: datetime | None = None
    # Pieces tile the window (an API that limits how long a window one request may ask for); each is paged
    # and trimmed on its own, so a piece's padding never brings back what the piece before it wrote.
    for piece in window.pieces(spec.max_window):
        dedup = None if unsorted else EdgeDeduplicator(spec.order_for(config))
        asked = spec.asked_window(config, piece) if spec.asked_window else None
        for response in paginate(client, spec.paginator, spec.first_request(config, stream, piece), max_pages,
                                 new_events=lambda: result.new):
            result.pages += 1
            kept = listed = 0
            timed_before = moment = None
            for event, timed in _events(spec, config, client, response):
                listed += 1
                result.fetched += 1
                try:
                    event_id = spec.key(event)
                    # A blob's records share its listing entry's time: parsed once a blob, not once a record.
                    moment = moment if timed is timed_before else spec.event_time(timed)
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
                repeat = dedup.is_repeat(event_id, moment) if dedup is not None else False
                if repeat or (anywhere is not None and anywhere.is_repeat(event_id, moment)):
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
            response = event = timed = timed_before = None  # let the page go before the next: memory is one page
    if spec.check_window is not None:
        spec.check_window(client, config, stream, window, result.fetched - result.outside_window)
    if spec.snapshot is not None:
        spec.snapshot.check_complete(config, window, result.fetched, oldest, client.where)
    return result


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


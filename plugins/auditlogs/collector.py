"""Collecting one stream's window: page through the API, keep the events inside the exact half-open
window once each, stream them into the part writer. Plain Python, driven by the operator and by tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from auditlogs.client.api import ApiClient
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
    dedup = EdgeDeduplicator(spec.order_for(config))
    if spec.snapshot is not None:
        spec.snapshot.check_reach(config, window, now or datetime.now(timezone.utc), client.where)
    oldest: datetime | None = None
    first = spec.first_request(config, stream, window)
    for response in paginate(client, spec.paginator, first, max_pages, is_empty=_page_is_empty(spec)):
        result.pages += 1
        try:
            events = spec.events(response.body)
        except BadEventError as exc:
            raise MalformedResponseError(str(exc), where=client.where, status=response.status) from None
        kept = 0
        for event in events:
            result.fetched += 1
            try:
                event_id = str(spec.event_id(event))
                moment = spec.event_time(event)
            except BadEventError as exc:
                raise MalformedEventError(
                    f"page {result.pages}, event {result.fetched}: {exc}", where=client.where, status=response.status,
                    body_excerpt=excerpt(orjson.dumps(event), client.secrets),
                ) from None
            oldest = moment if oldest is None or moment < oldest else oldest
            if not window.contains(moment):
                result.outside_window += 1
                continue
            repeat = dedup.is_repeat(event_id, moment)
            if repeat:
                result.duplicates += 1
                continue
            if repeat is None:
                result.out_of_order += 1
            if admit is not None and not admit(event_id, moment):
                result.already_stored += 1
                continue
            writer.write(orjson.dumps(event) + b"\n")
            result.note_time(moment)
            kept += 1
        result.written += kept
        log.info(
            "%s: page %d: %d events, %d kept (%d written so far)",
            client.where, result.pages, len(events), kept, result.written,
        )
        response = events = event = None  # let the page go before the next one is fetched: memory is one page
    if spec.check_window is not None:
        spec.check_window(client, config, stream, window, result.fetched - result.outside_window)
    if spec.snapshot is not None:
        spec.snapshot.check_complete(config, window, result.fetched, oldest, client.where)
    return result


def _page_is_empty(spec: SourceSpec):
    def is_empty(response) -> bool:
        try:
            return not spec.events(response.body)
        except BadEventError:
            return False  # the collector reports the malformed page itself

    return is_empty

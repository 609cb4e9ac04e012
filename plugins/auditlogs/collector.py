"""Collecting one stream's window: page through the API, keep the events inside the exact half-open
window once each, stream them into the part writer. Plain Python, driven by the operator and by tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from functools import partial
from itertools import chain

from auditlogs import exact_json
from auditlogs.client.api import ApiClient, ApiRequest, ApiResponse
from auditlogs.client.pagination import BadPage, PagingState, paginate
from auditlogs.config import SourceConfig
from auditlogs.errors import PaginationError
from auditlogs.sink.parts import EventWriter
from auditlogs.sink.window_ids import WindowIds
from auditlogs.sources.base import BadEventError, Order, SourceSpec, malformed_event, page_events
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

    def to_json(self) -> dict:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> CollectResult:
        times = ("first_event_time", "last_event_time")
        # window_ids is the id store's counts, taken when the window is done.
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "window_ids"}
        for name in times:
            values[name] = values[name] and datetime.fromisoformat(values[name])
        if any(
            not isinstance(value, int) or isinstance(value, bool) for name, value in values.items() if name not in times
        ):
            raise ValueError("a count is not an integer")
        return cls(**values)


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

    def to_json(self) -> dict:
        return {"edge": self.edge and self.edge.isoformat(), "ids": sorted(self.ids)}

    def restore(self, data: dict) -> EdgeDeduplicator:
        self.edge = data["edge"] and datetime.fromisoformat(data["edge"])
        self.ids = set(data["ids"])
        if not all(isinstance(i, str) for i in self.ids):
            raise ValueError("an edge id is not text")
        return self


class Progress:
    """Where a window's collection stands, for keeping a failed try's work (sink/checkpoint.py).

    `clean` is True only between pages (or between two content blobs of a page), when everything written so
    far is exactly what was handled so far; `position()` then says where paging continues. `start` is the
    position a resumed try begins at, `window_ids` the ids of its window so far when the source de-duplicates
    window-wide (rebuilt from the parts earlier tries staged), and `between_pages` is called at each clean
    moment (the checkpoint may seal there)."""

    def __init__(
        self,
        start: dict | None = None,
        between_pages: Callable[[], None] | None = None,
        window_ids: WindowIds | None = None,
    ):
        self.start = start
        self.between_pages = between_pages
        self.window_ids = window_ids
        self.clean = False
        self._position: Callable[[], dict] | None = None

    def at(self, position: Callable[[], dict]) -> None:
        self.clean, self._position = True, position
        if self.between_pages is not None:
            self.between_pages()

    def position(self) -> dict:
        if not self.clean or self._position is None:
            raise ValueError("part of a page was written: there is no clean position to continue from")
        return self._position()


def request_json(request: ApiRequest | None) -> dict | None:
    if request is None:
        return None
    return {"method": request.method, "url": request.url, "params": request.params, "json": request.json}


def request_from(data: dict) -> ApiRequest:
    request = ApiRequest(data["method"], data["url"], data["params"], data["json"])
    if not (
        isinstance(request.method, str)
        and isinstance(request.url, str)
        and isinstance(request.params, (dict, type(None)))
        and isinstance(request.json, (dict, type(None)))
    ):
        raise TypeError("the saved request is not a request")
    return request


def window_wide(spec: SourceSpec, config: SourceConfig) -> bool:
    """Whether repeats are dropped by id over the whole window: an API that repeats events anywhere in it
    (O365, across blobs), or one without an order, which has no edge to de-duplicate at (Dropbox)."""
    return spec.repeats_anywhere or spec.order_for(config) is Order.UNSORTED


def stored_key(spec: SourceSpec, config: SourceConfig) -> Callable[[bytes], str] | None:
    """For a source that de-duplicates window-wide, the key of a stored line: a resumed try rebuilds the
    window's ids from the parts its run staged (sink/checkpoint.py). None for the others."""
    if not window_wide(spec, config):
        return None
    return lambda line: spec.key(exact_json.loads(line))


def collect(
    spec: SourceSpec,
    config: SourceConfig,
    stream: str,
    client: ApiClient,
    window: Window,
    writer: EventWriter,
    max_pages: int,
    now: datetime | None = None,
    admit: Callable[[str, datetime], bool] | None = None,
    progress: Progress | None = None,
    repeated: Callable[[str, datetime], None] | None = None,
) -> CollectResult:
    """`admit(event_id, event_time)` returning False skips an in-window event that another run stored;
    `repeated(event_id, event_time)` is told of each in-window repeat dropped, whose time can differ from the
    first copy's (Office 365's blobs), so the overlap knows it too. `progress` starts from a saved position
    (a resumed try) and is told each moment between pages."""
    progress = progress or Progress()
    start = progress.start
    result = CollectResult.from_json(start["result"]) if start else CollectResult()
    # Repeats anywhere in the window (O365's across blobs): dropped by id in bounded memory, spilling to disk
    # beside the staged parts for a large window (sink/window_ids.py).
    # An unsorted API (Dropbox) has no edge to de-duplicate at: its repeats are dropped window-wide as well.
    ids = (progress.window_ids or WindowIds(writer.staging_dir)) if window_wide(spec, config) else None
    with ids or nullcontext() as anywhere:
        _collect_window(
            spec, config, stream, client, window, writer, max_pages, now, admit, repeated, result, anywhere, progress
        )
        if anywhere is not None:
            result.window_ids = anywhere.stats()
            log.info("%s: window de-duplication: %s", client.where, result.window_ids)
    return result


def _collect_window(
    spec: SourceSpec,
    config: SourceConfig,
    stream: str,
    client: ApiClient,
    window: Window,
    writer: EventWriter,
    max_pages: int,
    now: datetime | None,
    admit: Callable[[str, datetime], bool] | None,
    repeated: Callable[[str, datetime], None] | None,
    result: CollectResult,
    anywhere: WindowIds | None,
    progress: Progress,
) -> None:
    start = progress.start
    if spec.snapshot is not None:
        spec.snapshot.check_reach(config, window, now or datetime.now(timezone.utc), client.where)
    if spec.visible_after is not None:
        _wait_until_visible(spec.visible_after(config), window, now or datetime.now(timezone.utc), client)
    if spec.prepare is not None and start is None:  # a resumed try's run did it before its first page
        spec.prepare(client, config, stream)
    oldest = datetime.fromisoformat(start["oldest"]) if start and start["oldest"] else None
    first_piece = start["piece"] if start else 0
    #: In-window events not written because an earlier interval stored them: never in the parts, so the
    #: position carries their ids for a resumed try's window-wide de-duplication (bounded by the overlap).
    skipped: list[str] = list(start["skipped_ids"]) if start else []
    if anywhere is not None:
        anywhere.remember(skipped)

    def resume_position(piece: int, following: ApiRequest | None, paging: dict, blobs: list, edge: object) -> dict:
        """Where a resumed try continues: the piece, its next request, paging's guard state, the listed blobs
        still to fetch and the edge, with the counts, skipped ids and oldest time as they are when it is read."""
        return {
            "piece": piece,
            "request": request_json(following),
            "paging": paging,
            "blobs": blobs,
            "edge": edge,
            "result": result.to_json(),
            "skipped_ids": list(skipped),
            "oldest": oldest and oldest.isoformat(),
        }

    # Pieces tile the window (an API that limits how long a window one request may ask for); each is paged
    # and trimmed on its own, so a piece's padding never brings back what the piece before it wrote.
    for index, piece in enumerate(window.pieces(spec.max_window)):
        if index < first_piece:
            continue
        order = spec.order_for(config)
        dedup = None if order is Order.UNSORTED else EdgeDeduplicator(order)  # unsorted: `anywhere` drops repeats
        asked = spec.asked_window(config, piece) if spec.asked_window else None
        request: ApiRequest | None = spec.first_request(config, stream, piece)
        paging, carried = PagingState(), []
        resumed = start if start and index == first_piece and (start["request"] or start["blobs"]) else None
        if resumed is not None:
            request = resumed["request"] and request_from(resumed["request"])
            paging, carried = PagingState.from_json(resumed["paging"]), resumed["blobs"]
            if dedup is not None:
                dedup.restore(resumed["edge"])

        def between(
            following: ApiRequest | None, state: PagingState, index: int = index, dedup: EdgeDeduplicator | None = dedup
        ) -> None:
            positions, counts = len(state.sent), (state.pages, state.stalled)
            edge = dedup.to_json() if dedup is not None else None
            piece_next = index + 1 if following is None else index
            progress.at(  # read when a checkpoint is made: nothing changes while the position is clean
                lambda: resume_position(
                    piece_next, following, PagingState(state.sent, *counts).to_json(positions), [], edge
                )
            )

        def between_blobs(
            following: ApiRequest | None,
            listed: list,
            next_blob: int,
            index: int = index,
            state: PagingState = paging,
            dedup: EdgeDeduplicator | None = dedup,
        ) -> None:
            """Between two blobs of a page: paging continues at `following` once the page's blobs from
            `next_blob` on are handled; the position carries those entries, so the page is not asked again."""
            progress.at(  # read when a checkpoint is made, like the position between pages
                lambda: resume_position(
                    index,
                    following,
                    state.to_json(),
                    listed[next_blob:],
                    dedup.to_json() if dedup is not None else None,
                )
            )

        if resumed is not None:
            progress.at(partial(dict, resumed))  # nothing handled yet: still the position resumed at
        else:
            between(request, paging)
        pages: Iterable[ApiResponse | None] = ()
        if request is not None:
            pages = paginate(
                client,
                spec.paginator,
                request,
                max_pages,
                new_events=lambda: result.new,
                state=paging,
                between_pages=between,
            )
        # None: the blobs a try left of its last page, carried in its position (that page's paging counts
        # are kept; the loop's no-progress guard leaves the page out).
        try:
            for response in chain([None], pages) if carried else pages:
                progress.clean = False
                if response is not None:
                    result.pages += 1
                in_page = None
                if spec.blob is not None:
                    # The request after the page, read before its blobs are fetched so that a failure on one can be
                    # continued at it. A malformed one leaves no position inside the page: the loop reports it after.
                    following, sent = request, paging.current  # the page's own request, as paginate sent it
                    try:
                        if response is not None and sent is not None:
                            following = spec.paginator.next_request(sent, response)
                        in_page = partial(between_blobs, following)
                    except (BadPage, PaginationError):
                        pass
                kept, fetched = 0, result.fetched
                for events, shared in _events(spec, config, client, response, carried, in_page):
                    progress.clean = False  # within a page, clean again only between two blobs
                    moment: datetime | None = None
                    written_before = kept
                    for event in events:
                        result.fetched += 1
                        try:
                            event_id = spec.key(event)
                            # A blob's records share its listing entry's time: read once a blob, not once a record.
                            if shared is None or moment is None:
                                moment = spec.event_time(event if shared is None else shared)
                                oldest = moment if oldest is None or moment < oldest else oldest
                                inside = piece.contains(moment)
                        except BadEventError as exc:
                            position = f"page {result.pages}, event {result.fetched}"
                            status = response.status if response is not None else None
                            raise malformed_event(exc, position, event, client, status) from None
                        if not inside:
                            result.outside_window += 1
                            if asked is not None and asked.contains(moment):
                                result.new += 1  # the padding the API cannot be spared, not a runaway
                            continue
                        repeat = dedup.is_repeat(event_id, moment) if dedup is not None else False
                        if repeat or (anywhere is not None and anywhere.is_repeat(event_id)):
                            result.duplicates += 1
                            if repeated is not None:
                                repeated(event_id, moment)
                            continue
                        if repeat is None:
                            result.out_of_order += 1  # new or a repeat behind the edge: kept, not counted as progress
                        else:
                            result.new += 1
                        if admit is not None and not admit(event_id, moment):
                            result.already_stored += 1
                            if anywhere is not None:
                                skipped.append(event_id)
                            continue
                        writer.write(exact_json.line(event))
                        result.note_time(moment)
                        kept += 1
                    # Counted before the next blob is asked for: a checkpoint between two blobs reads it.
                    result.written += kept - written_before
                    del events  # before the next blob is fetched: one held at a time
                log.info(
                    "%s: page %d: %d events, %d kept (%d written so far)",
                    client.where,
                    result.pages,
                    result.fetched - fetched,
                    kept,
                    result.written,
                )
                if response is None:  # the carried blobs are handled: where that try's page left paging
                    between(request, paging)
                    carried = []
                # Let the page go before the next: memory is one page (None is no ApiResponse, hence the ignore).
                response = event = shared = in_page = None  # type: ignore[assignment]
        finally:
            # A failure mid-page leaves paginate suspended inside its page with the cyclic GC paused: closed
            # here, not whenever the traceback that holds this frame (and `pages`) is let go.
            if isinstance(pages, Generator):
                pages.close()
    progress.clean = False
    if spec.check_window is not None:
        spec.check_window(client, config, stream, window, result.fetched - result.outside_window)
    if spec.snapshot is not None:
        spec.snapshot.check_complete(config, window, result.fetched, oldest, client.where)


def _wait_until_visible(buffer: timedelta, window: Window, now: datetime, client: ApiClient) -> None:
    """Sleeps until the window's end is `buffer` in the past: asked earlier, such an API answers its last
    minutes empty, and the interval would be written short but complete."""
    wait = (window.end + buffer - now).total_seconds()
    if wait > 0:
        log.info(
            "%s: the API shows events only %.0fs after they happen; waiting %.0fs before asking for the window",
            client.where,
            buffer.total_seconds(),
            wait,
        )
        client.sleep(wait)
        client.stats.waited_seconds += wait


def _events(
    spec: SourceSpec,
    config: SourceConfig,
    client: ApiClient,
    response: ApiResponse | None,
    carried: list,
    between_blobs: Callable[[list, int], None] | None,
) -> Iterator[tuple[Iterable[dict], dict | None]]:
    """A page's events as (events, what they share their time with): the page's own events, each timed by
    itself (None), or, for an API that lists content blobs, each listed blob's records with its listing
    entry (one blob held at a time). Handed over a list at a time, not an event at a time: this runs for
    every event of a window. `response` None is the `carried` blobs of a page an earlier try left;
    `between_blobs(listed, n)` is told of each moment between two blobs, before blob n is fetched."""
    listed: Iterable[dict] = carried if response is None else page_events(spec, client, response)
    if spec.blob is None:
        yield listed, None
        return
    listed = list(listed)
    for number, entry in enumerate(listed):
        if between_blobs is not None:
            between_blobs(listed, number)
        yield spec.blob(client, config, entry), entry

"""The one paging loop of the project, and the paging strategies sources choose from.

A strategy only reads where the next page is (`next_request`). The loop guards every API alike: a cursor
or next URL seen twice, or more pages than the cap, fails the task instead of looping or stopping short.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from auditlogs.client.api import ApiClient, ApiRequest, ApiResponse
from auditlogs.errors import PaginationError

DEFAULT_MAX_PAGES = 100_000


class Paginator(Protocol):
    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        """The request for the page after `response`, or None when the API says there is none."""


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


@dataclass(frozen=True)
class BodyCursor:
    """A cursor in the body, sent back as a query parameter with the first request's filters re-sent
    (the server does not remember them). An empty or missing cursor ends paging."""

    cursor_path: tuple[str, ...]
    cursor_param: str

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        cursor = _dig(response.body, self.cursor_path)
        if not cursor:
            return None
        return replace(previous, params={**(previous.params or {}), self.cursor_param: cursor})


def paginate(client: ApiClient, paginator: Paginator, first: ApiRequest, max_pages: int) -> Iterator[ApiResponse]:
    """Every page of one window, in the API's order."""
    seen: set[str] = set()
    request: ApiRequest | None = first
    pages = 0
    while request is not None:
        signature = repr((request.url, sorted((request.params or {}).items()), request.json))
        if signature in seen:
            raise PaginationError(
                f"the API sent the same next-page position twice after {pages} pages; stopping instead of looping",
                where=client.where,
            )
        seen.add(signature)
        if pages >= max_pages:
            raise PaginationError(
                f"more than {max_pages} pages in one window; stopping instead of running away",
                where=client.where,
                hint="raise the source's max_pages if the window really is that large, or shorten the schedule",
            )
        with _gc_paused():
            response = client.send(request)
            pages += 1
            yield response
            request = paginator.next_request(request, response)
            del response  # one parsed page alive at a time: not the previous one while the next is fetched


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the life of one page (parse, the consumer's pass, release).

    A parsed page is hundreds of thousands of fresh containers that cannot be cyclic garbage, yet they wake
    the collector hundreds of times, and each pass walks them and the task process's heap again: measured,
    that was 45% of a task's CPU per event (BENCHMARKS.md). Resumed after every page, so the rare cycles
    the HTTP stack leaves are still collected and memory stays flat."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

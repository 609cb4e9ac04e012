"""Shapes several APIs share: millisecond times, RFC 3339 text, vendor-style ids, opaque page tokens,
the seeded people and places events draw from. The event store keeps whole seconds; the millisecond
inside the second is derived from the id so that (second, id) order is also time order."""

from __future__ import annotations

import base64
import binascii
import random
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

import orjson

from sandbox.events import Clock, Event, EventStore
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig

_FIRST = (
    "Ava Ben Chloe Dmitri Elena Farah Gabriel Hana Ivan Jonas Kenji Lena Mateo Nia Omar Priya Quinn Rosa Sven Tariq"
).split()
_LAST = (
    "Okafor Schmidt Tanaka Rossi Novak Haddad Silva Kim Larsen Moreau Patel Nguyen Kowalski Fischer Costa Ibrahim"
).split()
PLACES = [
    ("CA", "Ontario", "Toronto", 43.64, -79.43),
    ("US", "California", "San Francisco", 37.77, -122.42),
    ("DE", "Berlin", "Berlin", 52.52, 13.40),
    ("GB", "England", "London", 51.51, -0.13),
    ("BR", "Sao Paulo", "Sao Paulo", -23.55, -46.63),
    ("IN", "Karnataka", "Bengaluru", 12.97, 77.59),
    ("SG", "Singapore", "Singapore", 1.35, 103.82),
    ("NL", "North Holland", "Amsterdam", 52.37, 4.90),
]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "git/2.47.1",
    "python-requests/2.32.3",
    "okta-sdk-python/2.9.0",
]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def millis(ts: int, event_id: str) -> int:
    """The event's epoch milliseconds: within its second, increasing with the id."""
    return ts * 1000 + int(event_id[:8], 16) * 1000 // 2**32


def rfc3339_ms(ms: int, offset_minutes: int = 0) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    text = (
        datetime.fromtimestamp(ms // 1000, zone)
        .replace(microsecond=ms % 1000 * 1000)
        .isoformat(timespec="milliseconds")
    )
    return text.replace("+00:00", "Z")


def parse_rfc3339(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 date-time with a zone; None for anything else."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def id_bytes(event_id: str) -> bytes:
    return bytes.fromhex(event_id.replace("-", ""))


def base32_id(event_id: str) -> str:
    """1Password-style: 26 upper-case base32 characters."""
    return base64.b32encode(id_bytes(event_id)).decode().rstrip("=")


def base64url_id(event_id: str) -> str:
    """GitHub `_document_id` style: 22 URL-safe base64 characters."""
    return base64.urlsafe_b64encode(id_bytes(event_id)).decode().rstrip("=")


def part_of(event_id: str, parts: int) -> int:
    """A stable split of one event stream into `parts` (streams, event kinds)."""
    return int(event_id[-2:], 16) % parts


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """The state of an opaque page token; ValueError when it was not issued by us."""
    try:
        state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise ValueError("invalid token") from None
    if not isinstance(state, dict):
        raise ValueError("invalid token")
    return state


class People:
    """The seeded directory of one API's organisation."""

    def __init__(self, seed: int, source: str, domain: str, count: int = 120) -> None:
        rng = random.Random(f"{seed}:{source}:people")
        names = rng.sample([(f, last) for f in _FIRST for last in _LAST], count)
        self.domain = domain
        self.people = [
            {
                "uuid": base32_id(f"{rng.getrandbits(128):032x}"),
                "name": f"{f} {last}",
                "email": f"{f.lower()}.{last.lower()}@{domain}",
                "login": f"{f.lower()}{last.lower()[:3]}",
            }
            for f, last in names
        ]

    def pick(self, rng: random.Random) -> dict[str, str]:
        return rng.choice(self.people)


def ip(rng: random.Random) -> str:
    first = rng.choice([23, 34, 52, 81, 104, 142, 185, 203])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def scan_ms(
    store: EventStore,
    lo_ms: int,
    hi_ms: int | None,
    now: float,
    position: tuple[int, str] | None,
    ascending: bool = True,
) -> Iterator[Event]:
    """Visible events whose millisecond time is in [lo_ms, hi_ms] (None: up to now), resuming past `position`."""
    hi = int(now) if hi_ms is None else min(int(now), hi_ms // 1000)
    scan = store.iter_asc if ascending else store.iter_desc
    for event in scan(lo_ms // 1000, hi, now, position):
        ms = millis(event.ts, event.id)
        if lo_ms <= ms and (hi_ms is None or ms <= hi_ms):
            yield event


def take_page(events: Iterable[Event], limit: int) -> tuple[list[Event], bool]:
    """Up to `limit` events and whether at least one more follows."""
    events = iter(events)
    page = list(islice(events, limit))
    return page, next(events, None) is not None


class TokenApi:
    """What the token-authenticated APIs keep: the scenario's token, the store, the clock and a
    per-token rate limiter (reset between tests)."""

    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._token = config.token
        self._store = store
        self._clock = clock
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)

    def reset(self) -> None:
        self._limiter.reset()

"""The ids a window has written so far, for APIs that repeat an event anywhere in the window (Office 365
repeats records across content blobs): exact, in memory bounded whatever the window's size.

Two tiers, so a small window never touches disk and a large one never holds its ids in RAM:

* **recent**: the last ids seen, as a Python set of the ids themselves (exact), at most `memory_ids` of
  them. When it is full it is written, sorted, to
* **spilled**: a SQLite table of ids (`WITHOUT ROWID`, the id's bytes its primary key) in a file in the task's
  staging directory, with a bounded page cache, journal off (the file dies with the task). In front of it
  a fixed-size Bloom filter of the spilled ids (one bit an id, from the id's `hash()`, which is stable
  within the task's process) answers "certainly not spilled" from memory, so a new id costs no disk read;
  only a Bloom hit (a real repeat, or a false positive) is looked up in the table.

Exact in both directions: the Bloom filter has no false negatives, so a spilled id is always looked up,
and a repeat is only ever declared on an equal id string, read back from the set or the table. A false
positive costs one lookup, never an event. Memory is the set (`memory_ids` ids) + the filter
(`bloom_bits` / 8) + SQLite's cache (`cache_bytes`), fixed at construction. With 2^27 bits (16 MB) about
0.7% of new ids cost a lookup at 1M spilled ids and 7% at 10M; past that more and more go to the table:
the window slows down gracefully, it neither grows in memory nor loses an event. A spill costs about 1 µs
an id (65,536 sorted ids a transaction, handed to SQLite as JSON arrays it splits itself: one statement per
16,384 ids, not one Python call per id).

Why not the alternatives: a Bloom filter alone drops a distinct event on each false positive; a digest set
is ~100 bytes an id in CPython (what Office 365 paid: 117 MB at 1M records) and still grows with the window;
sorting staged parts after the fetch would need a second pass over the gzip parts.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import tempfile
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

MEMORY_IDS = 65_536
BLOOM_BITS = 1 << 27
CACHE_BYTES = 8 * 1024 * 1024
#: Ids per insert statement: 16,384 GUIDs are a 0.6 MB JSON text, a quarter of a whole spill's.
_BATCH_IDS = 16_384
#: A CPython set's slot (hash + pointer) at its lowest fill after a resize, for the resident bound.
_SET_SLOT_BYTES = 16 * 3


class WindowIds:
    """`is_repeat(id)` is True when the id was seen before in this window; the id is remembered otherwise."""

    def __init__(
        self,
        directory: Path | str | None = None,
        memory_ids: int | None = None,
        bloom_bits: int | None = None,
        cache_bytes: int | None = None,
    ):
        memory_ids, bloom_bits = memory_ids or MEMORY_IDS, bloom_bits or BLOOM_BITS
        cache_bytes = cache_bytes or CACHE_BYTES
        if bloom_bits & (bloom_bits - 1) or bloom_bits < 64:
            raise ValueError("bloom_bits must be a power of two, at least 64")
        self.directory = directory
        self.memory_ids = memory_ids
        self.cache_bytes = cache_bytes
        self.recent: set[str] = set()
        self._bloom_bits = bloom_bits
        self._mask = bloom_bits - 1
        self.bloom: bytearray | None = None  # allocated at the first spill: small windows never pay for it
        self.db: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.spilled = 0
        self.lookups = 0
        self.peak_resident_ids = 0
        self.peak_resident_bytes = 0

    def is_repeat(self, event_id: str) -> bool:
        recent = self.recent
        if event_id in recent:
            return True
        bloom = self.bloom
        if bloom is not None:  # inline: this runs once a record
            bit = hash(event_id) & self._mask
            if bloom[bit >> 3] >> (bit & 7) & 1:
                self.lookups += 1
                db = self.db  # opened with the filter, at the first spill
                assert db is not None
                if db.execute("SELECT 1 FROM ids WHERE id = ?", (_stored(event_id),)).fetchone() is not None:
                    return True
        recent.add(event_id)
        if len(recent) >= self.memory_ids:
            self._spill()
        return False

    def remember(self, ids: Iterable[str]) -> None:
        """Takes ids in without looking them up: a resumed try rebuilding the window's ids from what earlier
        tries of its run wrote, where no id can be a repeat of another."""
        for event_id in ids:
            self.recent.add(event_id)
            if len(self.recent) >= self.memory_ids:
                self._spill()

    def resident_bytes(self) -> int:
        """What this structure holds in memory now: the recent ids and their set, the filter, SQLite's cache
        (its configured ceiling, once the table exists)."""
        ids = sum(map(str.__sizeof__, self.recent))  # sys.getsizeof of a str (never GC-tracked), 4x faster
        return (
            ids
            + _SET_SLOT_BYTES * len(self.recent)
            + len(self.bloom or b"")
            + (self.cache_bytes if self.db is not None else 0)
        )

    def bound_bytes(self, largest_id_bytes: int) -> int:
        """The most `resident_bytes` can ever be for ids of at most `largest_id_bytes` (sys.getsizeof)."""
        return self.memory_ids * (largest_id_bytes + _SET_SLOT_BYTES) + self._bloom_bits // 8 + self.cache_bytes

    def _spill(self) -> None:
        if self.db is None:
            self._open()
        self.peak_resident_ids = max(self.peak_resident_ids, len(self.recent))
        self.peak_resident_bytes = max(self.peak_resident_bytes, self.resident_bytes())
        bloom, mask, db = self.bloom, self._mask, self.db
        assert bloom is not None and db is not None
        for bit in map(hash, self.recent):
            bit &= mask
            bloom[bit >> 3] |= 1 << (bit & 7)
        spilling = sorted(self.recent)
        with db:
            for start in range(0, len(spilling), _BATCH_IDS):
                _insert(db, spilling[start : start + _BATCH_IDS])
        self.spilled += len(self.recent)
        self.recent = set()

    def _open(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="window-ids-", dir=self.directory)
        path = Path(self._tmp.name) / "ids.sqlite3"
        log.info("window de-duplication: more than %d ids, spilling them to %s", self.memory_ids, path)
        self.bloom = bytearray(self._bloom_bits // 8)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(
            f"PRAGMA page_size=16384; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
            f"PRAGMA cache_size=-{max(self.cache_bytes // 1024, 64)};"
            "CREATE TABLE ids (id BLOB PRIMARY KEY) WITHOUT ROWID;"
        )
        self.db.isolation_level = "DEFERRED"  # `with self.db` then makes each spill one transaction

    def stats(self) -> dict:
        return {
            "ids": self.spilled + len(self.recent),
            "spilled": self.spilled,
            "lookups": self.lookups,
            "peak_resident_ids": max(self.peak_resident_ids, len(self.recent)),
            "peak_resident_bytes": max(self.peak_resident_bytes, self.resident_bytes()),
        }

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.recent, self.bloom = set(), None

    def __enter__(self) -> WindowIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _insert(db: sqlite3.Connection, ids: list[str]) -> None:
    """One statement for a batch of ids: SQLite splits a JSON array of them itself, so the insert runs in C
    without a Python round trip per id (half the cost of `executemany`). A batch its JSON would not carry
    exactly, or a SQLite without JSON, goes in row by row."""
    batch = _json_array(ids) if _splits_json() else None
    if batch is None:
        db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", zip(map(_stored, ids)))
    else:
        db.execute("INSERT OR IGNORE INTO ids SELECT value FROM json_each(?)", (batch,))


def _json_array(ids: list[str]) -> bytes | None:
    """The ids as a JSON array whose strings SQLite reads back exactly; None when one holds a lone surrogate
    (not UTF-8) or a NUL (as the type tag of a non-string id does: SQLite's JSON text would end there)."""
    try:
        batch = orjson.dumps(ids)
    except orjson.JSONEncodeError:
        return None
    return None if b"\\u0000" in batch else batch  # a backslash before "u0000" goes row by row too: still exact


@functools.cache
def _splits_json() -> bool:
    """Whether this SQLite has `json_each` (built in since 3.38, a compile option before)."""
    with closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("SELECT value FROM json_each('[]')")
        except sqlite3.OperationalError:
            return False
    return True


def _stored(event_id: str) -> str | bytes:
    """What the table holds for an id, compared bytewise: the text itself, as the JSON batch stores it, or,
    for an id holding a NUL or a lone surrogate (which SQLite's JSON or TEXT would not keep), its exact
    bytes as a BLOB. SQLite never finds a TEXT equal to a BLOB, so the two cannot be confused."""
    if "\0" not in event_id:
        try:
            event_id.encode()
            return event_id
        except UnicodeEncodeError:
            pass
    return event_id.encode("utf-8", "surrogatepass")

"""Window-wide de-duplication (sink/window_ids.py), for APIs that repeat an event anywhere in the window:
each id kept exactly once however far apart its repeats are, in memory bounded whatever the window's size."""

from __future__ import annotations

import random
import sys
import tracemalloc

import pytest

from auditlogs.sink import window_ids as window_ids_module
from auditlogs.sink.window_ids import WindowIds


def ids(count: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{i:08d}-5c1e-4f0a-9d2b-{i * 7919 % 10**12:012d}" for i in range(count)]


def feed(window_ids: WindowIds, stream: list[str]) -> list[str]:
    return [event_id for event_id in stream if not window_ids.is_repeat(event_id)]


def far_apart(distinct: list[str], seed: int = 3) -> list[str]:
    """Every id once, then each id again far after its first sight (the whole window later), shuffled."""
    rng = random.Random(seed)
    later = distinct[:]
    rng.shuffle(later)
    return distinct + later + distinct[::7]


def test_a_window_whose_repeats_are_far_apart_keeps_each_id_exactly_once(tmp_path):
    distinct = ids(30_000)
    with WindowIds(tmp_path, memory_ids=1_000, bloom_bits=1 << 20) as window_ids:
        kept = feed(window_ids, far_apart(distinct))
        stats = window_ids.stats()
    assert kept == distinct  # each id once, in its first position; no repeat written, no distinct id dropped
    assert stats["spilled"] >= 29_000 and stats["lookups"] >= 30_000  # the repeats were found on disk


def test_ids_whose_filter_positions_all_collide_are_still_each_kept(tmp_path):
    """A 64-bit filter answers "maybe seen" for nearly every id: the table, not the filter, decides."""
    distinct = ids(5_000)
    with WindowIds(tmp_path, memory_ids=100, bloom_bits=64) as window_ids:
        assert feed(window_ids, distinct + distinct[::-1]) == distinct
        assert window_ids.stats()["lookups"] > 9_000


def test_an_id_differing_only_in_case_type_tag_or_a_lone_surrogate_is_a_different_event(tmp_path):
    stream = ["Ab-1", "ab-1", "\0number:1", "1", "\ud800x", "\udc00x", "Ab-1", "1"] * 3
    with WindowIds(tmp_path, memory_ids=2, bloom_bits=64) as window_ids:
        assert feed(window_ids, stream) == ["Ab-1", "ab-1", "\0number:1", "1", "\ud800x", "\udc00x"]


@pytest.mark.parametrize("sqlite_has_json", [True, False])
def test_an_id_with_any_character_json_escapes_is_found_again_once_spilled(tmp_path, monkeypatch, sqlite_has_json):
    """Spilled ids go to the table as one JSON batch, NUL-holding ones (the type tag's) and lone surrogates
    row by row (all of them without SQLite's JSON): whichever way an id went in, its exact repeat is found and
    a one-character neighbour is not."""
    monkeypatch.setattr(window_ids_module, "_splits_json", lambda: sqlite_has_json)
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(1, 0x80)] + ["\u2028", "\u00e9", "\U0001f600", "\ufeff", "\\u0000"]
    distinct = list(dict.fromkeys("".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(3_000)))
    distinct = ["\0number:7", *distinct, "\0string:\ud800", "x\udfff"]  # NULs and surrogates in other batches
    neighbours = [event_id + "\u00ff" for event_id in distinct]  # a character the ids never hold
    with WindowIds(tmp_path, memory_ids=100, bloom_bits=64) as window_ids:
        assert feed(window_ids, distinct + distinct[::-1] + neighbours) == distinct + neighbours
        assert window_ids.stats()["spilled"] > 2 * len(distinct) - 100


def test_memory_stays_within_the_structures_bound_whatever_the_window_size(tmp_path):
    """Ten and a hundred times the ids it holds in memory: the same resident entries and bytes, within its
    stated bound, and the Python heap it allocates (tracemalloc) within that bound too."""
    peaks = {}
    for count in (10_000, 100_000):
        stream = far_apart(ids(count, prefix="w"))
        largest = max(sys.getsizeof(event_id) for event_id in stream)
        tracemalloc.start()
        with WindowIds(tmp_path, memory_ids=2_000, bloom_bits=1 << 22, cache_bytes=1 << 20) as window_ids:
            assert sum(not window_ids.is_repeat(event_id) for event_id in stream) == count
            stats = window_ids.stats()
            bound = window_ids.bound_bytes(largest)
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert stats["peak_resident_ids"] <= 2_000 and stats["peak_resident_bytes"] <= bound
        assert heap_peak <= bound
        peaks[count] = stats["peak_resident_bytes"]
    assert peaks[100_000] <= peaks[10_000] * 1.05  # ten times the window, no more memory


def test_a_small_window_never_touches_disk_and_closing_removes_the_spill(tmp_path):
    with WindowIds(tmp_path, memory_ids=1_000) as small:
        feed(small, ids(999) * 2)
        assert small.stats()["spilled"] == 0 and small.bloom is None and list(tmp_path.iterdir()) == []
    with WindowIds(tmp_path, memory_ids=10, bloom_bits=1 << 10) as large:
        feed(large, ids(100))
        assert [p.name for p in tmp_path.iterdir()][0].startswith("window-ids-")
    assert list(tmp_path.iterdir()) == []


def test_ids_remembered_for_a_resumed_try_are_repeats_and_new_ones_are_not(tmp_path):
    """A resumed try takes in what its run wrote (remember, no lookups), in memory and spilled alike; the
    rest of the window is then de-duplicated against them."""
    written, rest = ids(5_000, prefix="a"), ids(5_000, prefix="b")
    with WindowIds(tmp_path, memory_ids=1_000, bloom_bits=1 << 16) as window_ids:
        window_ids.remember(iter(written))
        assert window_ids.stats()["lookups"] == 0 and window_ids.stats()["spilled"] >= 4_000
        assert feed(window_ids, far_apart(rest) + written[::-1]) == rest

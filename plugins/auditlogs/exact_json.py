"""JSON that keeps an event exactly as received: integers of any size, not only those that fit 64 bits.

orjson is the fast path, but it reads an integer beyond 64 bits as a float and cannot write one back. A
page (or stored line) that may hold one (a run of 19 digits: a cheap scan whose false positives only slow
that page down) is parsed again by the stdlib, which keeps every integer exact, and an event holding one is
written by the stdlib. Every other page and event stays on orjson.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: 2**63 has 19 digits: anything shorter fits orjson's 64-bit integers (unsigned up to 2**64 - 1).
#: Found by mapping every digit to "0" and searching for 19 of them: ~7% of orjson's parse, a regex was ~100%.
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 46 for byte in range(256))
_RUN = b"0" * 19


def loads(content: bytes | bytearray) -> Any:
    """Parse a page or a stored line; raises orjson.JSONDecodeError for anything orjson refuses."""
    value = orjson.loads(content)
    if _RUN not in content.translate(_DIGITS_AS_ZERO):
        return value
    return json.loads(content)  # orjson accepted it: valid UTF-8 JSON without NaN or infinite numbers


def line(event: object) -> bytes:
    """One stored line: the event as compact JSON and a newline."""
    try:
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)  # no second copy to add the newline
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def canonical(event: object) -> bytes:
    """Sorted-key compact JSON, the same bytes on every page and every run (the key of an event without id)."""
    try:
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()

"""Gzip NDJSON parts, staged on local disk while the window is fetched.

Staging keeps memory flat (only the gzip buffer lives in RAM) and keeps the interval's existing objects in
GCS untouched until the new result is complete: a failed fetch never leaves a half-replaced interval.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

COMPRESSION_LEVEL = 6


@dataclass(frozen=True)
class StagedPart:
    path: Path
    events: int
    bytes: int
    sha256: str


class _HashingFile:
    """The compressed byte stream's size and sha256, computed as it is written."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class PartWriter:
    """Writes one NDJSON line per event, starting a new part when the current one reaches `part_size`
    compressed bytes. Always yields at least one part, so an empty interval is visibly empty."""

    def __init__(self, staging_dir: Path, part_size: int):
        self.staging_dir = Path(staging_dir)
        self.part_size = part_size
        self.parts: list[StagedPart] = []
        self._open_part()

    def _open_part(self) -> None:
        self._path = self.staging_dir / f"part-{len(self.parts):05d}.ndjson.gz"
        self._raw = _HashingFile(self._path)
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=COMPRESSION_LEVEL, mtime=0)
        self._events = 0

    def _close_part(self) -> None:
        self._gzip.close()
        self._raw.close()
        self.parts.append(StagedPart(self._path, self._events, self._raw.size, self._raw.sha256.hexdigest()))

    def write(self, line: bytes) -> None:
        if self._events and self._raw.size >= self.part_size:
            self._close_part()
            self._open_part()
        self._gzip.write(line)
        self._events += 1

    def close(self) -> list[StagedPart]:
        self._close_part()
        return self.parts

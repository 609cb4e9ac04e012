"""Gzip NDJSON parts, staged on local disk while the window is fetched.

Staging keeps memory flat (only the gzip buffer lives in RAM) and keeps the interval's existing objects in
GCS untouched until the new result is complete: a failed fetch never leaves a half-replaced interval.

Compression runs in one background thread (zlib and sha256 release the GIL, so it overlaps parsing the
next page) fed through a bounded queue of chunks: at most `QUEUE_CHUNKS` chunks of about `CHUNK_BYTES`
raw bytes are in flight, so memory stays flat whatever the window's size. Parts rotate at chunk
boundaries decided by the thread from the compressed size, which depends only on the bytes written, so a
rerun of the same events yields the same parts, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

COMPRESSION_LEVEL = 6
CHUNK_BYTES = 2 * 1024 * 1024
QUEUE_CHUNKS = 2


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


class EventWriter(Protocol):
    """What the collector writes a window into: a PartWriter, or the resumable staging around one."""

    staging_dir: Path

    def write(self, line: bytes) -> None: ...


class PartWriter:
    """Writes one NDJSON line per event, starting a new part when the current one has reached `part_size`
    compressed bytes (checked before each chunk of about min(`CHUNK_BYTES`, `part_size`) raw bytes, so a
    part overshoots by at most one compressed chunk). Always yields at least one part, so an empty interval
    is visibly empty."""

    def __init__(self, staging_dir: Path, part_size: int, first_index: int = 0):
        """Parts are numbered from `first_index` (a resumed try continues the numbers of the parts it keeps)."""
        self.staging_dir = Path(staging_dir)
        self.part_size = part_size
        self.first_index = first_index
        #: Lines handed to `write` so far.
        self.lines = 0
        self.parts: list[StagedPart] = []
        #: The chunk being filled, and its lines: one growing buffer, not a list of lines joined at the end.
        self._chunk = bytearray()
        self._chunk_lines = 0
        self._chunk_bytes = min(CHUNK_BYTES, part_size)
        self._error: BaseException | None = None
        self._chunks: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._thread = threading.Thread(target=self._compress, name="auditlogs-part-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops the thread when the window failed before `close` (a no-op after it)."""
        if self._thread.is_alive():
            self._chunk = bytearray()
            self._chunks.put(None)
            self._thread.join()

    def write(self, line: bytes) -> None:
        self.lines += 1
        self._chunk += line
        self._chunk_lines += 1
        if len(self._chunk) >= self._chunk_bytes:
            self._flush()

    def close(self) -> list[StagedPart]:
        self._flush()
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.parts

    def _flush(self) -> None:
        if self._chunk_lines:
            self._put((self._chunk, self._chunk_lines))  # handed over whole: the thread owns it from here
            self._chunk, self._chunk_lines = bytearray(), 0

    def _put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._chunks.put(item)

    def _compress(self) -> None:
        """The thread: compresses chunks into parts; after an error it drains the queue so `write` never blocks."""
        part, done = None, False
        try:
            part = _OpenPart(self.staging_dir / f"part-{self.first_index + len(self.parts):05d}.ndjson.gz")
            while not (done := (item := self._chunks.get()) is None):
                if part.events and part.raw.size >= self.part_size:
                    self.parts.append(part.close())
                    part = _OpenPart(self.staging_dir / f"part-{self.first_index + len(self.parts):05d}.ndjson.gz")
                data, events = item
                part.gzip.write(data)
                part.events += events
            self.parts.append(part.close())
        except BaseException as exc:  # handed to the writing thread, raised there
            self._error = exc
            if part is not None:
                part.raw.close()
            while not done:
                done = self._chunks.get() is None


class _OpenPart:
    def __init__(self, path: Path):
        self.path = path
        self.raw = _HashingFile(path)
        self.gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, compresslevel=COMPRESSION_LEVEL, mtime=0)
        self.events = 0

    def close(self) -> StagedPart:
        self.gzip.close()
        self.raw.close()
        return StagedPart(self.path, self.events, self.raw.size, self.raw.sha256.hexdigest())

"""The collection window: a half-open UTC time range [start, end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


def utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime (pendulum or stdlib in, stdlib out)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: every time inside auditlogs is timezone-aware UTC")
    value = value.astimezone(timezone.utc)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, timezone.utc
    )


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self):
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end < self.start:
            raise ValueError(f"window ends before it starts: {self}")

    def widened(self, delay: timedelta) -> Window:
        """The API window of a data interval: its start moved back by the ingestion delay."""
        return Window(self.start - delay, self.end)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def pieces(self, longest: timedelta | None) -> list[Window]:
        """The window as consecutive half-open pieces of at most `longest` (one piece when None)."""
        if longest is None or self.end - self.start <= longest:
            return [self]
        starts = [self.start + i * longest for i in range(-(-(self.end - self.start) // longest))]
        return [Window(start, min(start + longest, self.end)) for start in starts]

    def label(self) -> str:
        """`YYYYMMDDTHHMMSSZ_YYYYMMDDTHHMMSSZ`, the interval's folder name."""
        return f"{compact(self.start)}_{compact(self.end)}"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def compact(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")

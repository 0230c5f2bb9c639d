"""Durations of the SLA file: `30m`, `2h`, `3d` (or `1h30m`), all in business time.

The explicit business forms of the SPEC (`2 business hours`, `1 business day`, `30 business
minutes`, short `2bh`, `1bd`, `30bm`) are read as the same business time."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"(\d+)\s*([dhm])")
_WHOLE = re.compile(r"^\s*(\d+\s*[dhm]\s*)+$")
_BUSINESS = re.compile(
    r"^\s*(\d+)\s*(?:b([dhm])|business\s+(day|hour|minute)s?)\s*$", re.IGNORECASE
)


@dataclass(frozen=True, order=True)
class Duration:
    """A business-time duration: whole working days plus working minutes."""

    days: int = 0
    minutes: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse `2h`, `30m`, `3d`, `1h30m` (or `2 business hours`, `1bd`); raise ValueError
        with a readable message."""
        explicit = _BUSINESS.match(text) if isinstance(text, str) else None
        if explicit:
            amount, short, long = explicit.groups()
            text = f"{amount}{(short or long[0]).lower()}"
        if not isinstance(text, str) or not _WHOLE.match(text):
            raise ValueError(
                f"{text!r} is not a duration: use a number with m (minutes), h (working hours) "
                "or d (working days), e.g. 30m, 2h, 3d"
            )
        days = minutes = 0
        for amount, unit in _PART.findall(text):
            if unit == "d":
                days += int(amount)
            elif unit == "h":
                minutes += int(amount) * 60
            else:
                minutes += int(amount)
        if days == 0 and minutes == 0:
            raise ValueError(f"{text!r} is zero: a deadline needs a positive duration")
        return cls(days=days, minutes=minutes)

    def total_minutes(self, minutes_per_day: int) -> int:
        return self.days * minutes_per_day + self.minutes

    def __str__(self) -> str:
        hours, minutes = divmod(self.minutes, 60)
        parts = [f"{self.days}d" if self.days else "", f"{hours}h" if hours else ""]
        parts.append(f"{minutes}m" if minutes else "")
        return "".join(parts) or "0m"


def words(total_minutes: int) -> str:
    """`80` → `1h 20m`; used for business-time durations shown to people."""
    hours, minutes = divmod(max(0, int(total_minutes)), 60)
    if hours and minutes:
        return f"{hours}h {minutes}m"
    if hours:
        return f"{hours}h"
    return f"{minutes}m"

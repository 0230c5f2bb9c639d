"""Reading a `Retry-After` header, whoever sent it (Slack, HubSpot, a webhook receiver).

RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, where delay-seconds is "a
non-negative decimal integer, representing time in seconds". The header comes from outside,
so no value may crash a worker (`timedelta(seconds=inf)` and `datetime + timedelta(seconds=1e300)`
raise OverflowError) or stop it for ever: a wait is always a finite number of seconds between 0
and the caller's `most`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, overload

# Seconds. The longest Slack 429 wait honoured as given: Slack's waits are seconds to a minute
# (its rate-limit tiers are per minute), and a longer one, after it, is met by one request that
# Slack answers with the rest of its wait. As long as the members' reads wait at most
# (bot/services/people.py, RETRY_MOST).
SLACK_MOST = 15 * 60.0
# The longest HubSpot wait honoured as given: its 477 Migration in Progress asks for "typically
# up to 24 hours" (HubSpot's "Error handling" guide).
HUBSPOT_MOST = 24 * 3600.0

# delay-seconds: digits (a fraction tolerated); nothing else ("inf", "nan", "-5", "1e9").
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@overload
def retry_after_seconds(value: object, now: float, *, default: float, most: float) -> float: ...
@overload
def retry_after_seconds(
    value: object, now: float, *, default: None, most: float
) -> float | None: ...
def retry_after_seconds(
    value: object, now: float, *, default: float | None, most: float
) -> float | None:
    """The wait a `Retry-After` value asks for, in seconds from `now` (Unix seconds), between 0
    and `most`: delay-seconds as given, or the time until an HTTP-date (a date already past is
    no wait); more than `most` is `most`. `default` when there is no value or it is neither
    (empty, negative, `inf`, `nan`, a date out of range): an unreadable wait is the sender's
    mistake, and the usual one is taken for it."""
    text = _text(value)
    if text is None:
        return default
    if _SECONDS.fullmatch(text):
        seconds = float(text)  # digits only: past ~1e308 it is inf, and `most` below
    else:
        try:
            when = parsedate_to_datetime(text)
            if when.tzinfo is None:  # asctime's form names no zone: HTTP-dates are GMT
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - now
        except (TypeError, ValueError, OverflowError, IndexError):
            return default
    return min(most, max(0.0, seconds))


@overload
def header_seconds(
    headers: Mapping[str, Any] | None, now: float, *, default: float, most: float
) -> float: ...
@overload
def header_seconds(
    headers: Mapping[str, Any] | None, now: float, *, default: None, most: float
) -> float | None: ...
def header_seconds(
    headers: Mapping[str, Any] | None, now: float, *, default: float | None, most: float
) -> float | None:
    """`retry_after_seconds` of the `Retry-After` in `headers` (any case of the name; the
    first value where a client gives a list)."""
    if not headers:
        return default
    for name in headers:
        if isinstance(name, str) and name.lower() == "retry-after":
            return retry_after_seconds(headers[name], now, default=default, most=most)
    return default


def _text(value: object) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None

"""Keeping to Slack's rate limits: a token bucket per (method, channel) and Retry-After pauses.

Slack allows chat.postMessage about one message per second per channel with short bursts;
other write methods are limited per workspace by tier (Tier 3: 50+ per minute). A 429 says
how long to wait in Retry-After: nothing more is sent to that method until then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PER_CHANNEL = frozenset({"chat.postMessage", "chat.postEphemeral"})


@dataclass(frozen=True)
class Pace:
    """How fast Handoff may call Slack (the defaults are Slack's published limits)."""

    posts_per_second: float = 1.0  # chat.postMessage, per channel
    post_burst: float = 3.0
    calls_per_minute: float = 50.0  # every other method, per method (Tier 3)
    call_burst: float = 10.0


@dataclass
class _Bucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    at: float

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass
class Pacer:
    """Waits until a call to (method, channel) is within the pace and past any Retry-After."""

    pace: Pace = field(default_factory=Pace)
    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str | None], _Bucket] = field(default_factory=dict)
    _paused_until: dict[tuple[str, str | None], float] = field(default_factory=dict)

    def _bucket(self, method: str, channel: str | None) -> _Bucket:
        key = _key(method, channel)
        bucket = self._buckets.get(key)
        if bucket is None:
            if method in PER_CHANNEL:
                rate, burst = self.pace.posts_per_second, self.pace.post_burst
            else:
                rate, burst = self.pace.calls_per_minute / 60.0, self.pace.call_burst
            bucket = _Bucket(rate, max(1.0, burst), max(1.0, burst), self.monotonic())
            self._buckets[key] = bucket
        return bucket

    def delay(self, method: str, channel: str | None) -> float:
        """Seconds until a call may go; 0 takes the token for it now."""
        now = self.monotonic()
        paused = self._paused_until.get(_key(method, channel), 0.0) - now
        bucket = self._bucket(method, channel)
        wait = max(paused, bucket.wait_time(now))
        if wait <= 0:
            bucket.tokens -= 1.0
            return 0.0
        return wait

    async def wait(self, method: str, channel: str | None) -> None:
        # A timed wait for a token, not a condition another task would signal.
        while (seconds := self.delay(method, channel)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(seconds)

    def pause(self, method: str, channel: str | None, seconds: float) -> None:
        """Slack said 429: nothing more to what it limits (the method, or the method in this
        channel for per-channel limits) for `seconds`."""
        key = _key(method, channel)
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), self.monotonic() + seconds)


def _key(method: str, channel: str | None) -> tuple[str, str | None]:
    return (method, channel if method in PER_CHANNEL else None)

"""Slack requests being answered, so background work can let them go first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Traffic:
    """When Slack requests last arrived. Slack wants its ack within 3 seconds; a message update
    can wait a moment, so the outbox waits for a lull (bounded) before each delivery.

    Requests are mostly CPU work answered one after another, so "none in progress" happens
    between every two of them; a lull is a short time with no new request instead.
    """

    def __init__(self, lull: float = 0.02, monotonic: Callable[[], float] = time.monotonic):
        self.lull = lull
        self.monotonic = monotonic
        self.last = float("-inf")

    @contextmanager
    def request(self) -> Iterator[None]:
        self.last = self.monotonic()
        yield

    async def quiet(self, at_most: float) -> None:
        """Return after a lull of `lull` seconds without requests, or after `at_most`."""
        deadline = self.monotonic() + at_most
        while (now := self.monotonic()) < deadline:
            wait = self.last + self.lull - now
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, deadline - now))

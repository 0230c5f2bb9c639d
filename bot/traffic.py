"""Slack requests being answered, so background work can let them go first."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

LULL = 0.02  # seconds without a new Slack request

_shared: Any = None  # this process's last arrival, in memory its report worker reads
_shared_lock = threading.Lock()


def arrivals() -> Any:
    """When this process last received a Slack request (`time.monotonic()`, one clock for
    every process of the machine), as a double in shared memory: a report worker started with
    it (`bot/services/report_process.py`) reads it to give way. Every `Traffic` of the process
    writes it (a process has one report worker)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = multiprocessing.get_context("spawn").RawValue("d", float("-inf"))
        return _shared


def _lull_left(last: float, lull: float, now: float, deadline: float) -> float:
    """How long to wait yet for a lull of `lull` seconds after a request at `last`, not past
    `deadline`: 0 when there is one already (or the deadline has come)."""
    return max(0.0, min(last + lull - now, deadline - now))


class Traffic:
    """When Slack requests last arrived. Slack wants its ack within 3 seconds; a message update
    can wait a moment, so the outbox waits for a lull (bounded) before each delivery.

    Requests are mostly CPU work answered one after another, so "none in progress" happens
    between every two of them; a lull is a short time with no new request instead.
    """

    def __init__(self, lull: float = LULL, monotonic: Callable[[], float] = time.monotonic):
        self.lull = lull
        self.monotonic = monotonic
        self.last = float("-inf")
        # Another clock's times (a test's) mean nothing to the worker: kept to this object.
        real = monotonic is time.monotonic
        self.shared = arrivals() if real else SimpleNamespace(value=self.last)

    @contextmanager
    def request(self) -> Iterator[None]:
        self.last = self.shared.value = self.monotonic()
        yield

    async def quiet(self, at_most: float) -> None:
        """Return after a lull of `lull` seconds without requests, or after `at_most`."""
        deadline = self.monotonic() + at_most
        while True:
            wait = _lull_left(self.last, self.lull, self.monotonic(), deadline)
            if wait <= 0:
                return
            await asyncio.sleep(wait)


class GiveWay:
    """In another process (the report worker): between two slices of long work, wait for a
    lull in the requests of the process whose `arrivals()` it was given, so that while they
    keep coming the work takes at most `share` of the time.

    A priority is not enough on a machine of few cores: even a worker at SCHED_IDLE, which the
    kernel runs only on a core nothing else wants, made the acks' p99 1.4x slower on the
    2-core benchmark machine (docs/benchmarks.md, "Acks during a report"), while the same work
    in slices of 10 ms, each followed by 200 ms of rest, did not show. So after a slice of `t`
    seconds (waiting on the database included: on PostgreSQL a query's work is in the
    database's process) the wait is bounded by `t * (1 - share) / share`, and by `at_most`:
    the work is delayed while requests keep coming, never starved, and a lull ends the wait
    at once. A job's first wait in a thread (`start` marks a new job) is bounded by `first`.
    Each thread keeps its own slices (SQLite reads a report's two periods in two threads)."""

    def __init__(
        self,
        shared: Any,
        lull: float = LULL,
        share: float = 0.025,
        first: float = 0.25,
        at_most: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.shared = shared
        self.lull = lull
        self.rest = (1 - share) / share  # seconds of rest a second of work may take
        self.first = first
        self.at_most = at_most
        self.monotonic = monotonic
        self.sleep = sleep
        self.job = 0
        self.slices = threading.local()  # `began`: the job and time of this thread's slice

    def start(self) -> None:
        """A new job: the time since a thread's last slice of the previous one is no work."""
        self.job += 1

    def __call__(self) -> None:
        now = self.monotonic()
        job, began = getattr(self.slices, "began", (None, now))
        bound = self.first if job != self.job else min(self.at_most, (now - began) * self.rest)
        deadline = now + bound
        while wait := _lull_left(self.shared.value, self.lull, self.monotonic(), deadline):
            self.sleep(wait)
        self.slices.began = (self.job, self.monotonic())

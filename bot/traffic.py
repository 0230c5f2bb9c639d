"""Slack requests being answered, so background work can let them go first."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator, MutableSequence
from contextlib import contextmanager
from typing import Any

LULL = 0.02  # seconds without a new Slack request
BEAT = 0.005  # seconds between the server loop's beats while a report worker works for it
STALE = 0.015  # a beat older than this: the loop is held up (requests may wait unread)

# The shared state's places (`shared_state()`): `time.monotonic()` is one clock for every
# process of the machine.
LAST, IN_FLIGHT, BEATEN = 0, 1, 2

_shared: Any = None
_shared_lock = threading.Lock()


def shared_state() -> MutableSequence[float]:
    """This process's Slack traffic, in memory its report worker (`bot/services/
    report_process.py`) reads to give way: when the last request arrived (`LAST`), how many
    are being answered (`IN_FLIGHT`) and when the event loop last beat (`BEATEN`, while a
    report is being built: `beating`). Every `Traffic` of the process writes it, from the
    event loop's thread only (a process has one report worker)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            start = [float("-inf"), 0.0, float("-inf")]
            _shared = multiprocessing.get_context("spawn").RawArray("d", start)
        return _shared


async def beating(period: float = BEAT) -> None:
    """Beat every `period` seconds until cancelled (run while the worker builds something):
    a loop held up by other work (a batch's transaction, the outbox's deliveries) beats
    late, and the worker takes a late beat for a busy server, whose requests may be waiting
    in its socket, unread and so unseen."""
    while True:
        beat()
        await asyncio.sleep(period)


def beat() -> None:
    """One beat of this process's event loop, now (`beating` beats every `BEAT` seconds)."""
    shared_state()[BEATEN] = time.monotonic()


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
        self.shared = shared_state() if real else [self.last, 0.0, float("-inf")]

    @contextmanager
    def request(self) -> Iterator[None]:
        self.last = self.shared[LAST] = self.monotonic()
        self.shared[IN_FLIGHT] += 1
        try:
            yield
        finally:
            self.shared[IN_FLIGHT] -= 1

    async def quiet(self, at_most: float) -> None:
        """Return after a lull of `lull` seconds without requests, or after `at_most`."""
        deadline = self.monotonic() + at_most
        while (now := self.monotonic()) < deadline:
            wait = self.last + self.lull - now
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, deadline - now))


class GiveWay:
    """In another process (the report worker): between two slices of long work, wait while
    the process whose `shared_state()` it was given is busy with Slack's requests, so that
    while they keep coming the work takes at most `share` of the time.

    Busy: a request arrived in the last `lull` seconds, or one is being answered, or its event
    loop beat longer than `stale` seconds ago (held up: a request may be waiting unread).

    A priority is not enough on a machine of few cores: even a worker at SCHED_IDLE, which the
    kernel runs only on a core nothing else wants, made the acks' p99 1.3-1.4x slower on the
    2-core benchmark machine (docs/benchmarks.md, "Acks during a report"), while the same work
    in slices of 10 ms, each followed by 200 ms of rest, did not show. So after a slice of `t`
    seconds (waiting on the database included: on PostgreSQL a query's work is in the
    database's process) the wait is bounded by `t * (1 - share) / share`, and by `at_most`:
    the work is delayed while the server stays busy, never starved, and goes on as soon as it
    is not. A job's first wait in a thread (`start` marks a new job) is bounded by `first`.
    Each thread keeps its own slices (SQLite reads a report's two periods in two threads).

    Giving way is also what keeps the work out of the acks' way once the worker runs at the
    server's priority: SCHED_IDLE alone would starve it on a machine whose cores are busy
    with other work, so the server raises the worker while a job waits past its patience
    (`bot.services.report_process.ReportProcess.run`), and never lowers it where the system
    would not let it be raised again."""

    def __init__(
        self,
        shared: MutableSequence[float],
        lull: float = LULL,
        share: float = 0.025,
        first: float = 0.25,
        at_most: float = 2.0,
        stale: float = STALE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.shared = shared
        self.lull = lull
        self.rest = (1 - share) / share  # seconds of rest a second of work may take
        self.first = first
        self.at_most = at_most
        self.stale = stale
        self.monotonic = monotonic
        self.sleep = sleep
        self.job = 0
        self.slices = threading.local()  # `began`: the job and time of this thread's slice

    def start(self) -> None:
        """A new job: the time since a thread's last slice of the previous one is no work."""
        self.job += 1

    def busy(self, now: float) -> float:
        """How long the server stays busy with Slack (see the class) as seen at `now`: until
        its lull after the last request, or another beat's time; 0: not busy."""
        state = self.shared
        if state[IN_FLIGHT] > 0 or now - state[BEATEN] > self.stale:
            return BEAT
        return max(0.0, state[LAST] + self.lull - now)

    def __call__(self) -> None:
        now = self.monotonic()
        job, began = getattr(self.slices, "began", (None, now))
        bound = self.first if job != self.job else min(self.at_most, (now - began) * self.rest)
        deadline = now + bound
        while (wait := min(self.busy(now), deadline - now)) > 0:
            self.sleep(wait)
            now = self.monotonic()
        self.slices.began = (self.job, now)

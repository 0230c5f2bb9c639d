"""The CRM worker's rolling window counts HTTP requests, each from its answer, requests in flight
side by side included (an inbound webhook's read while a write is under way)."""

from __future__ import annotations

import asyncio

from bot.crm.worker import _Window


class Time:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_requests_in_flight_count_and_each_is_counted_from_its_answer() -> None:
    time = Time()
    window = _Window(2, 10.0, time, time.sleep)
    await window.take()
    await window.take()  # two in flight at once: the window is full
    assert window.wait() > 0
    time.now = 3.0
    window.finished()  # answered at 3 s
    time.now = 4.0
    window.finished()  # answered at 4 s
    await window.take()  # the third goes when the first answer leaves the window: at 13 s
    assert time.now == 13.0 and time.slept == [9.0]
    window.finished()
    await window.room()  # the second leaves at 14 s
    assert time.now == 14.0

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


async def test_a_request_waiting_first_takes_the_next_room_before_the_others() -> None:
    """An inbound webhook's read (first) and a row's write both wait on a full window, the
    write since before: the read goes when the first room frees, the write when the next does."""
    time = Time()
    window = _Window(2, 10.0, time, lambda _: asyncio.sleep(0))  # waiters look again each turn
    for answered in (1.0, 2.0):
        await window.take()
        time.now = answered
        window.finished()
    went: list[tuple[str, float]] = []

    async def request(name: str, first: bool) -> None:
        await window.take(first=first)
        went.append((name, time.now))
        window.finished()

    async def turns() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    write = asyncio.create_task(request("write", False))
    await turns()
    read = asyncio.create_task(request("read", True))
    await turns()
    time.now = 11.0  # the answer of 1 s leaves the window: room for one
    await turns()
    assert went == [("read", 11.0)]
    time.now = 12.0  # the answer of 2 s leaves it too
    await asyncio.gather(write, read)
    assert went == [("read", 11.0), ("write", 12.0)]
    assert window.first == 0

"""Background work gives way to Slack's requests (bot/traffic.py): the outbox and a report's
answer wait for a lull in the server (`Traffic.quiet`), and the report worker, in a process of
its own, waits between slices of its work (`GiveWay`), each wait bounded so that nothing
starves under a steady stream of requests. Time is a fake clock: no test waits on it."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.traffic import BEATEN, IN_FLIGHT, LAST, GiveWay, Traffic, beating, shared_state

INF = float("inf")


class Clock:
    """A monotonic clock that moves only when slept on."""

    def __init__(self, at: float = 100.0) -> None:
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds


def give_way(clock: Clock, last: float, in_flight: int = 0, beaten: float = INF) -> GiveWay:
    """A worker's `GiveWay` over a server's state (`beaten` INF: its loop beats on time)."""
    shared = [last, float(in_flight), beaten]
    return GiveWay(
        shared, 0.02, share=0.05, first=0.25, at_most=2.0, monotonic=clock, sleep=clock.sleep
    )


def slept(clock: Clock) -> float:
    """Seconds slept since asked last."""
    total = round(sum(clock.slept), 9)
    clock.slept.clear()
    return total


def test_with_no_request_in_the_last_moment_the_work_goes_on_at_once() -> None:
    clock = Clock()
    give_way(clock, last=clock.at - 0.5)()
    assert clock.slept == []


def test_after_a_request_the_work_waits_for_the_lull_that_follows_it() -> None:
    clock = Clock()
    give_way(clock, last=clock.at - 0.005)()
    assert slept(clock) == 0.015  # until 20 ms after the request


def test_while_a_request_is_being_answered_the_work_waits() -> None:
    clock = Clock()
    busy = give_way(clock, last=clock.at - 0.5, in_flight=1)
    busy.start()
    busy()
    assert slept(clock) == 0.25  # the job's first wait, to its bound


def test_while_the_servers_loop_is_held_up_the_work_waits() -> None:
    """A loop that beat long ago may have requests waiting in its socket, unread: busy."""
    clock = Clock()
    held_up = give_way(clock, last=clock.at - 0.5, beaten=clock.at - 0.1)
    held_up.start()
    held_up()
    assert slept(clock) == 0.25
    clock.at = 200.0
    give_way(clock, last=clock.at - 0.5, beaten=clock.at - 0.005)()  # beating: not busy
    assert slept(clock) == 0.0


def test_under_a_steady_stream_of_requests_the_work_takes_its_share_of_the_time() -> None:
    """A job's first wait is bounded by `first`; after it, each by 19 times the slice of work
    before it (`share` 0.05) and by `at_most`: delayed, never starved."""
    clock = Clock()
    steady = give_way(clock, last=INF)  # a request always just in
    steady.start()
    steady()
    assert slept(clock) == 0.25
    clock.at += 0.010  # a slice of 10 ms of work
    steady()
    assert slept(clock) == 0.19
    clock.at += 0.5  # a long slice: the wait is still at most `at_most`
    steady()
    assert slept(clock) == 2.0


def test_a_new_job_does_not_count_the_idle_time_since_the_last_as_work() -> None:
    clock = Clock()
    steady = give_way(clock, last=INF)
    steady.start()
    steady()
    clock.at += 60  # idle: the next report comes a minute later
    steady.start()
    steady()
    assert slept(clock) == 0.25 + 0.25


def test_each_thread_keeps_its_own_slices() -> None:
    clock = Clock()
    steady = give_way(clock, last=INF)
    steady.start()
    steady()
    slept(clock)
    clock.at += 0.010
    other = threading.Thread(target=steady)  # its first wait of the job
    other.start()
    other.join()
    assert slept(clock) == 0.25


def test_the_server_marks_each_request_where_its_worker_reads_it() -> None:
    """The real clock's requests go to the memory the report worker reads: when the last
    arrived, and how many are being answered; a test clock's stay with its own `Traffic`
    (its times mean nothing to another process)."""
    shared = shared_state()
    answering = shared[IN_FLIGHT]
    real = Traffic()
    with real.request():
        assert shared[LAST] == real.last
        assert shared[IN_FLIGHT] == answering + 1
    assert shared[IN_FLIGHT] == answering
    before = shared[LAST]
    clock = Clock(at=1e9)
    with Traffic(monotonic=clock).request():
        pass
    assert shared[LAST] == before


async def test_while_the_worker_works_the_servers_loop_beats() -> None:
    """`beating` writes the loop's beat on the real clock (the worker's) as soon as it runs."""
    shared = shared_state()
    asked = time.monotonic()
    beat = asyncio.create_task(beating())
    try:
        await asyncio.sleep(0)  # one turn of the loop: the task's first beat
        assert shared[BEATEN] >= asked
    finally:
        beat.cancel()

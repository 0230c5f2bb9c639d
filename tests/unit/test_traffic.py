"""Background work gives way to Slack's requests (bot/traffic.py): the outbox and a report's
answer wait for a lull in the server (`Traffic.quiet`), and the report worker, in a process of
its own, waits between slices of its work (`GiveWay`), each wait bounded so that nothing
starves under a steady stream of requests. Time is a fake clock: no test sleeps."""

from __future__ import annotations

from types import SimpleNamespace

from bot.traffic import GiveWay, Traffic, arrivals


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


def give_way(clock: Clock, last: float, at_most: float = 0.25) -> GiveWay:
    shared = SimpleNamespace(value=last)
    return GiveWay(shared, lull=0.02, at_most=at_most, monotonic=clock, sleep=clock.sleep)


def test_with_no_request_in_the_last_moment_the_work_goes_on_at_once() -> None:
    clock = Clock()
    give_way(clock, last=clock.at - 0.5)()
    assert clock.slept == []


def test_after_a_request_the_work_waits_for_the_lull_that_follows_it() -> None:
    clock = Clock()
    give_way(clock, last=clock.at - 0.005)()
    assert round(sum(clock.slept), 9) == 0.015  # until 20 ms after the request


def test_under_a_steady_stream_of_requests_the_work_waits_no_longer_than_its_bound() -> None:
    clock = Clock()
    steady = give_way(clock, last=float("inf"), at_most=0.25)  # a request always just in
    steady()
    assert round(sum(clock.slept), 9) == 0.25
    steady()
    assert round(sum(clock.slept), 9) == 0.5  # each call waits its bound, then goes on


def test_a_request_the_server_marks_is_what_another_process_reads() -> None:
    """The real clock's arrivals go to the memory the report worker reads; a test clock's stay
    with its own `Traffic` (its times mean nothing to another process)."""
    shared = arrivals()
    real = Traffic()
    with real.request():
        pass
    assert shared.value == real.last
    before = shared.value
    clock = Clock(at=1e9)
    with Traffic(monotonic=clock).request():
        pass
    assert shared.value == before

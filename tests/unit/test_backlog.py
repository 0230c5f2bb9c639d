"""The intake backlog rule: when the count of pending Slack deliveries is read, and what a
refusal says (bot/services/backlog.py)."""

from __future__ import annotations

import pytest

from bot.domain.refusal import Reason, Refusal
from bot.services.backlog import Backlog


class Outbox:
    def __init__(self, pending: int) -> None:
        self.value = pending
        self.reads = 0

    async def pending(self) -> int:
        self.reads += 1
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_under_half_the_limit_the_count_is_read_once_a_second() -> None:
    outbox, clock = Outbox(10), Clock()
    backlog = Backlog(outbox.pending, limit=1000, drained_per_second=1.0, monotonic=clock)
    for _ in range(50):
        await backlog.admit()
    assert outbox.reads == 1
    clock.now += 1.5
    await backlog.admit()
    assert outbox.reads == 2


async def test_past_half_the_limit_the_count_is_read_every_100_ms_not_every_request() -> None:
    outbox, clock = Outbox(10_000), Clock()
    backlog = Backlog(outbox.pending, limit=20_000, drained_per_second=1.0, monotonic=clock)
    for _ in range(100):  # a burst within 100 ms: one read
        await backlog.admit()
    assert outbox.reads == 1
    clock.now += 0.15
    outbox.value = 20_000  # another replica filled it meanwhile: seen 100 ms late at most
    with pytest.raises(Refusal):
        await backlog.admit()
    assert outbox.reads == 2


async def test_past_half_the_limit_admissions_that_could_reach_it_count_again() -> None:
    outbox, clock = Outbox(19_000), Clock()
    backlog = Backlog(outbox.pending, limit=20_000, drained_per_second=1.0, monotonic=clock)
    for _ in range(500):  # 2 deliveries each could take 19,000 to the limit: read again
        await backlog.admit()
    assert outbox.reads == 1
    outbox.value = 20_000
    with pytest.raises(Refusal):
        await backlog.admit()
    assert outbox.reads == 2


async def test_near_the_limit_every_request_counts_and_the_limit_refuses() -> None:
    outbox, clock = Outbox(2), Clock()
    backlog = Backlog(outbox.pending, limit=4, drained_per_second=0.5, monotonic=clock)
    await backlog.admit()  # read: 2, already half the limit
    await backlog.admit()
    assert outbox.reads == 2
    outbox.value = 7
    with pytest.raises(Refusal) as refused:
        await backlog.admit()
    assert refused.value.reason is Reason.BUSY and refused.value.reason.status == 503
    # 4 deliveries over the limit (7 - 4 + 1) at half a post a second: 8 seconds
    assert refused.value.retry_after == 8
    assert "7 Slack messages wait" in refused.value.message
    outbox.value = 3
    await backlog.admit()  # delivered meanwhile: in again


async def test_retry_after_is_capped_and_a_limit_of_zero_turns_it_off() -> None:
    outbox = Outbox(1_000_000)
    with pytest.raises(Refusal) as refused:
        await Backlog(outbox.pending, limit=10, drained_per_second=1.0).admit()
    assert refused.value.retry_after == 300
    await Backlog(outbox.pending, limit=0, drained_per_second=1.0).admit()

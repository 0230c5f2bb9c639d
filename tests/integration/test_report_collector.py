"""A report reads and builds with Python's cyclic garbage collector paused, and leaves it as it
found it (docs/benchmarks.md, "The SLA report": a quarter's 223,000 stage-time rows made each
full collection during its build walk them all again, about 30% of its time). The collector is
the whole process's: a report that fails, or two at once, must not leave it off for good (the
server would never collect a cycle again), nor turn on one that was off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from bot.domain.policy import Policy
from bot.domain.report import attempt_standard
from bot.services import report_process
from bot.services.reports import Reports
from storage.reports import Filter, ReportStore
from storage.repository import Store
from tests.integration.test_report_store import AS_OF, WEEK, history


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Each test starts with the collector on, and this process gets it back on whatever
    the test did."""
    gc.enable()
    yield
    gc.enable()


class Watched(ReportStore):
    """The report's reads, noting whether the collector runs while they do; `hold`: each
    read waits for it first; `fail`: each read fails after noting."""

    def __init__(self, store: ReportStore, hold: asyncio.Event | None = None, fail: bool = False):
        super().__init__(store.db)
        self.collecting: list[bool] = []
        self.hold = hold
        self.fail = fail

    async def both_periods(self, *args: Any, **kwargs: Any) -> Any:
        self.collecting.append(gc.isenabled())
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise RuntimeError("the database went away")
        found = await super().both_periods(*args, **kwargs)
        self.collecting.append(gc.isenabled())
        return found


async def test_a_report_reads_with_the_collector_paused_and_turns_it_back_on(
    store: Store, policy: Policy
) -> None:
    services = await history(store, policy)
    reads = Watched(ReportStore(store.db))
    report = await Reports(reads, services.policies).report(WEEK, AS_OF)
    assert report.received >= 4
    assert reads.collecting == [False, False]
    assert gc.isenabled()


async def test_a_failing_report_turns_the_collector_back_on(store: Store, policy: Policy) -> None:
    services = await history(store, policy)
    reads = Watched(ReportStore(store.db), fail=True)
    with pytest.raises(RuntimeError, match="went away"):
        await Reports(reads, services.policies).report(WEEK, AS_OF)
    assert reads.collecting == [False]
    assert gc.isenabled()


async def test_two_reports_at_once_turn_the_collector_on_when_the_last_is_done(
    store: Store, policy: Policy
) -> None:
    services = await history(store, policy)
    second_held = asyncio.Event()
    first = Watched(ReportStore(store.db))
    second = Watched(ReportStore(store.db), hold=second_held)
    held = asyncio.create_task(Reports(second, services.policies).report(WEEK, AS_OF))
    await asyncio.sleep(0)  # the second is reading (held) when the first begins
    assert second.collecting == [False]
    await Reports(first, services.policies).report(WEEK, AS_OF)
    assert first.collecting == [False, False]
    assert not gc.isenabled()  # the second still reads
    second_held.set()
    await held
    assert second.collecting == [False, False]
    assert gc.isenabled()


async def test_a_report_leaves_a_collector_that_was_off_off(store: Store, policy: Policy) -> None:
    services = await history(store, policy)
    gc.disable()
    reads = Watched(ReportStore(store.db))
    await Reports(reads, services.policies).report(WEEK, AS_OF)
    assert reads.collecting == [False, False]
    assert not gc.isenabled()


def _report_in_worker(*args: object) -> tuple[int, bool]:
    """In the report worker process: a report built as `serve` builds one there, and whether
    the collector is on after it."""
    report = report_process._in_worker(*args)
    return report.received, gc.isenabled()


async def test_the_report_worker_reads_with_the_collector_paused_and_turns_it_back_on(
    store: Store, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker process (`serve`'s default) pauses it too: here in this process, through
    the worker's own entry (`_in_worker`), then in the worker itself."""
    services = await history(store, policy)
    standard = attempt_standard(policy, AS_OF)
    args = (store.db.url, WEEK, WEEK.previous(), AS_OF, standard, Filter(), True, policy, None)
    collecting: list[bool] = []
    read = ReportStore.both_periods

    async def watched(self: ReportStore, *given: Any, **named: Any) -> Any:
        collecting.append(gc.isenabled())
        return await read(self, *given, **named)

    monkeypatch.setattr(ReportStore, "both_periods", watched)
    here = await asyncio.to_thread(report_process._in_worker, *args)
    assert collecting == [False]
    assert gc.isenabled()
    process = report_process.ReportProcess(store.db.url)
    there = await process.run(partial(_report_in_worker, *args), "a report")
    assert there == (here.received, True)
    assert services is not None

"""Reports built in a worker process, so a Slack ack never waits behind one.

Reading a 20,000-lead week and turning its rows into KPIs is Python work: in a thread of the
server's process it still holds the interpreter's lock, and every ack waits for its turn
(docs/benchmarks.md, "Acks during a report"). Here the reads and the building run in one worker
process of their own, with a connection of their own to the same database; the server's event
loop only waits for the finished `Report`. The worker is started on the first report and kept
(a pool of one, shared by the process); a worker that dies is replaced, and meanwhile the
report is built in the server as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, MutableSequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from bot.domain.policy import Policy
from bot.domain.report import AttemptStandard, Period, Report, build_report
from bot.traffic import GiveWay, beat, beating, shared_state
from storage.db import Backend, Database
from storage.reports import Filter, ReportStore

log = logging.getLogger("handoff.reports")
T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()
_lowered: set[int] = set()  # the workers whose priority the server lowered already
_give_way: GiveWay | None = None  # in the worker: waits for a lull in the server's requests
LOWEST_NICE = 19  # where SCHED_IDLE is not offered or not permitted
# Seconds a job may wait at the lowest priority: past them, the worker runs at the server's
# own priority until the job is done (`ReportProcess.run`). Well beyond a report's time on a
# quiet machine, also while presses keep coming and GiveWay holds it back (1.2-2 s; the
# worker's start, 1.5-2 s; PostgreSQL's long blocks, 3.7-7 s: docs/benchmarks.md), so that
# only a machine busy with other work hurries it; a manager waits seconds more, not for ever.
PATIENCE = 10.0
# Listings of a worker's threads a priority change makes at most (`_each_thread`): one thread
# started in the instant between a listing and its creator's change is rare; one in each of
# five rounds is a worker starting threads without end, which must not hold the event loop.
THREAD_ROUNDS = 5
_hurried = 0  # jobs waiting past their patience: while any does, the worker is not lowered
_can_restore: bool | None = None  # `_restorable()`, once asked
_collecting = threading.Lock()
_pausing = 0  # reports reading or building under `collector_paused`, in this process
_resume = False  # whether the collector was on when the first of them began


def _tasks(pid: int) -> list[int]:
    """The threads of process `pid` (a scheduling policy and a nice value are a thread's)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        return [pid]


def _each_thread(pid: int, change: Callable[[int], None]) -> None:
    """`change` every thread of process `pid`, also those it starts meanwhile: a new thread
    takes its creator's priority, so one started after the listing but before its creator
    changed has the old one. Listed again after each round until no thread is new: every
    thread then was changed, and any started later takes the new priority from its creator.
    At most THREAD_ROUNDS listings: this runs on the server's event loop, and a process
    starting threads without end (a thread each listing finds) would hold every ack."""
    changed: set[int] = set()
    for _ in range(THREAD_ROUNDS):
        new = [tid for tid in _tasks(pid) if tid not in changed]
        if not new:
            return
        for tid in new:
            change(tid)
        changed.update(new)


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn: a fresh interpreter (forking a process with threads and event loops is
            # unsafe), started once and kept.
            _pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_yielding,
                initargs=(os.getpid(), shared_state()),
            )
        return _pool


def lowest_priority(pid: int = 0) -> None:
    """Give process `pid` (0: this thread) the lowest CPU priority the system offers, quietly
    keeping what it can where it is not permitted: nice 19, then Linux's SCHED_IDLE, for each
    of its threads. Under SCHED_IDLE a process runs only on a core nothing else wants, and any
    other process that wakes takes the core from it at once; at nice 10 or 19 it still had
    its weighted share, and a server woken for an ack could wait out the rest of the worker's
    time slice. On a machine whose cores are all busy with other work it hardly runs at all
    (Linux's weight for SCHED_IDLE is about 0.3% of a core): `ReportProcess.run` raises the
    worker back to the server's priority while a job waits past its patience."""

    def lower(tid: int) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, tid, LOWEST_NICE)
        with contextlib.suppress(OSError, AttributeError):  # not on macOS; not in some sandboxes
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))

    if pid:
        _each_thread(pid, lower)
    else:
        lower(0)


def servers_priority(pid: int) -> None:
    """Give every thread of process `pid` Linux's normal policy (SCHED_OTHER) at this
    thread's nice value (the server's), quietly keeping what it has where not permitted."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)

    def restore(tid: int) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, nice)

    _each_thread(pid, restore)


def _restorable() -> bool:
    """Whether this system lets the server give a worker it lowered its priority back: leaving
    SCHED_IDLE, and going from nice 19 back to the server's, take CAP_SYS_NICE (root, outside
    containers that drop it) or a RLIMIT_NICE that permits it (`ulimit -e`; 0 by default).
    Where not, a worker at the lowest priority would stay there for good, and on a busy
    machine never get through a report: it is not lowered at all (giving way to Slack's
    requests, `give_way`, still keeps it out of the acks' way). Tried once, on a thread of
    its own that then ends (a priority is a thread's)."""
    global _can_restore
    if _can_restore is None:
        answer: list[bool] = []

        def probe() -> None:
            if not hasattr(os, "SCHED_IDLE"):
                # Not Linux: no SCHED_IDLE to lower to, and a thread's id is no pid there
                # (NetBSD numbers a process's threads 1, 2, …), so `setpriority` on it
                # would renice another process. Nothing is tried.
                answer.append(False)
                return
            tid = threading.get_native_id()
            try:  # what `lowest_priority` and then `servers_priority` do
                nice = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, LOWEST_NICE)
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except (OSError, AttributeError):
                answer.append(False)
            else:
                answer.append(True)

        thread = threading.Thread(target=probe, name="priority probe")
        thread.start()
        thread.join()
        _can_restore = answer == [True]
        if not _can_restore:
            log.info(
                "the report worker runs at the server's priority: this system has no "
                "SCHED_IDLE, or does not let a lowered priority be raised again "
                "(CAP_SYS_NICE, or RLIMIT_NICE)"
            )
    return _can_restore


def _workers(pool: ProcessPoolExecutor) -> list[int]:
    return list((pool._processes or {}).keys())  # no public handle on them


def _lower(pool: ProcessPoolExecutor) -> None:
    """Lower a worker's priority from the server as soon as it is started (before it starts
    a thread: its threads take its priority), where it can be raised again (`_restorable`):
    a new worker spends a second or more importing what it needs before its initializer
    runs, and that start must not take the CPU from the acks either."""
    # No `_lock` for `_lowered` and `_hurried`: this, `_hurry` and `_settle` run only on the
    # event loop's thread (`ReportProcess.run`); the lock guards `_pool` from `shutdown`'s.
    for pid in _workers(pool):
        if pid not in _lowered:
            _lowered.add(pid)
            if _restorable() and not _hurried:
                lowest_priority(pid)


def _hurry() -> None:
    """A job has waited past its patience: the worker runs at the server's priority (still
    giving way to Slack's requests) until no job is waiting past it (`_settle`)."""
    global _hurried
    with _lock:
        _hurried += 1
        if _pool is not None and _restorable():
            for pid in _workers(_pool):
                servers_priority(pid)


def _settle() -> None:
    """A job that waited past its patience is done: the worker goes back to the lowest
    priority, unless another is still waiting past its own."""
    global _hurried
    with _lock:
        _hurried -= 1
        if not _hurried and _pool is not None and _restorable():
            for pid in _workers(_pool):
                lowest_priority(pid)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a report's rows are read and built, then as it
    was. A quarter keeps some 223,000 stage-time rows (`Times`, named tuples holding a `Group`:
    CPython never untracks those), so each full collection during its build walked them all
    again: 3 to 4 per report, about 30% of its time (docs/benchmarks.md, "The SLA report").
    Safe to pause: everything the report frees without a cycle is still freed at once (by its
    count of references); what it leaves in cycles (the reads' and the event loop's
    bookkeeping) waits the seconds of one report and is collected with the next allocations
    after it. Counted: with two reports at once, the collector comes back when the last is
    done; one that fails restores it too; one begun with the collector off leaves it off."""
    global _pausing, _resume
    with _collecting:
        if not _pausing:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _collecting:
            _pausing -= 1
            if not _pausing and _resume:
                gc.enable()


def give_way() -> None:
    """Between two slices of a report's work (a few milliseconds to a chart's 100): in the
    worker, wait while the server is answering Slack's requests, until they let up for a
    moment, so that under a steady stream of them the report takes at most a fortieth of the
    time (`bot.traffic.GiveWay`); elsewhere (a report built in the server, when there is no
    worker) nothing."""
    if _give_way is not None:
        _give_way()


def _job(work: Callable[[], T]) -> T:
    """In the worker: `work()` as a new job of its `GiveWay` (a report, its charts)."""
    if _give_way is not None:
        _give_way.start()
    return work()


def _yielding(server: int, shared: MutableSequence[float]) -> None:
    """In the worker, at its start (`server`: the pid of the server that started it; `shared`:
    the server's Slack traffic, `bot.traffic.shared_state()`):
    - its scheduling priority is the server's to set, not its own: the server lowered it as
      it started (`_lower`, where it can be raised again), so the server's acks get the CPU
      before a report does (a report may take a second longer; an ack may not), and raises it
      while a job waits past its patience (`ReportProcess.run`), which may be while the
      worker is still starting;
    - `give_way` set up: the report's work waits between its slices while the server is
      answering Slack (a priority alone still slowed the acks: `bot.traffic.GiveWay`);
    - its own standard output let go (to /dev/null): the server's is often a pipe that a
      supervisor reads until it closes, which must not wait for the worker too (its failures
      come back to the server as exceptions);
    - a watch on the server: when it is gone (kill -9 included), the worker goes too. The
      server's pid comes from the server itself, not from `os.getppid()` here: a worker takes
      a second or more to import what it needs, and a server killed meanwhile would have left
      it with init as its parent, which it would then have watched for ever (holding the
      resource tracker's pipe, so that the tracker held the server's output open too)."""
    global _give_way
    _give_way = GiveWay(shared)
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.dup2(quiet, fd)
    os.close(quiet)
    threading.Thread(target=_watch, args=(server,), daemon=True, name="server watch").start()


def yielding_backend(backend: Backend) -> None:
    """On PostgreSQL a report's queries run in a server process at the normal priority (about
    40 ms of a 20,000-lead week's): where that process is on this machine and ours to change
    (the same user, or root), give it nice 19 too. It serves only this report's connection
    and ends with it. Its command line is checked first (PostgreSQL names the database and
    the client's port there), so a server on another machine or in another pid namespace,
    whose pid means another process here, is left alone. Nice, not SCHED_IDLE: it may hold
    locks that a claim's transaction waits for, and at nice 19 it still gets a share of a
    busy core to release them."""
    try:
        command = Path(f"/proc/{backend.pid}/cmdline").read_bytes()
    except OSError:
        return  # not on this machine, or no /proc
    client = "[local]" if backend.client_port is None else f"({backend.client_port})"
    serves = f" {backend.database} ".encode() in command and client.encode() in command
    if command.startswith(b"postgres: ") and serves:
        with contextlib.suppress(OSError):  # not ours to change: quietly as it is
            os.setpriority(os.PRIO_PROCESS, backend.pid, LOWEST_NICE)


def _watch(server: int) -> None:
    while os.getppid() == server:
        time.sleep(0.5)
    os._exit(0)


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown(grace: float = 5.0) -> None:
    """Stop the worker now (`serve` is stopping; a later report starts another). In-process
    stacks (tests, the demo) leave it running: one worker serves every stack of a process. A report
    under way is only reads: it is abandoned (its caller gets BrokenProcessPool or a
    cancellation), so that stopping never waits for a quarter's report. Blocks up to `grace`
    seconds for the worker to be gone: call it in a thread."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    workers = list((pool._processes or {}).values())  # no public handle on them
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.terminate()
    for worker in workers:
        with contextlib.suppress(ValueError):
            worker.join(grace)


async def _read_and_build(
    url: str,
    period: Period,
    earlier: Period,
    now: datetime,
    standard: AttemptStandard,
    where: Filter,
    durations: bool,
    policy: Policy,
    segment: str | None,
) -> Report:
    # Opened and closed per report: nothing held between them (and on PostgreSQL, the server
    # processes serving its connections serve this report only).
    database = Database(url, backends=yielding_backend, pause=give_way)
    try:
        store = ReportStore(database)
        read = store.both_periods(period, earlier, now, standard, where, durations, give_way)
        facts, before = await read
    finally:
        await database.dispose()
    give_way()
    return build_report(period, facts, before, policy, now, segment)


async def _paused_read_and_build(*args: object) -> Report:
    """`_read_and_build` with the collector paused (`collector_paused`): resumed once its
    rows are freed (they go with its frame), so the first collection after walks the report
    only."""
    with collector_paused():
        return await _read_and_build(*args)  # type: ignore[arg-type]


def _in_worker(*args: object) -> Report:
    """In the worker process: read both periods and build the report."""
    return asyncio.run(_paused_read_and_build(*args))


class ReportProcess:
    """Builds reports (and their charts) of the database at `url` in the worker process; a
    job waiting longer than `patience` seconds has the worker run at the server's priority
    until it is done."""

    def __init__(self, url: str, patience: float = PATIENCE) -> None:
        self.url = url
        self.patience = patience

    def building(self, *args: object) -> Callable[[], Report]:
        """The work of building a report in the worker (`args`: `_read_and_build`'s, after
        the database), for `run`."""
        return partial(_in_worker, self.url, *args)

    async def run(self, work: Callable[[], T], what: str) -> T | None:
        """`work()` in the worker process (`what` it makes, for the log), or None when the
        worker stopped (then do it here).

        Delayed, never starved: the worker waits at the lowest priority, but a job not done
        `patience` seconds after it was handed over (the worker still starting, or every core
        busy with other work, where SCHED_IDLE hardly runs at all) has the worker run at the
        server's own priority until it is done; it still gives way to Slack's requests
        (`give_way`), which is what keeps it out of the acks' way while they come."""
        pool = _executor()
        beat()  # the first, before the job (the task's come from the loop)
        beats = asyncio.create_task(beating())  # the worker reads them to give way
        hurried = False

        def hurry() -> None:
            nonlocal hurried
            hurried = True
            log.info(
                "%s is not done after %.1f s: its worker runs at the server's priority until it is",
                what,
                self.patience,
            )
            _hurry()

        patience = asyncio.get_running_loop().call_later(self.patience, hurry)
        try:
            done = asyncio.get_running_loop().run_in_executor(pool, partial(_job, work))
            _lower(pool)  # the executor started the worker, if it was not running
            return await done
        except BrokenProcessPool:
            log.warning("the report worker process stopped; building %s in the server", what)
            _discard(pool)
            return None
        finally:
            beats.cancel()
            patience.cancel()
            if hurried:
                _settle()

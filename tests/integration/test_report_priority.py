"""A report on a busy machine is delayed, never starved (issue 15, item 5): the report worker
runs at the lowest CPU priority there is (Linux's SCHED_IDLE, which runs only on a core nothing
else wants), and a job kept waiting past its patience has the worker run at the server's own
priority until it is done, then back at the lowest. Before, with every core busy with other
work (another service, a CI job), a manager's /sla-report never came back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from bot.domain.policy import Policy
from bot.domain.report import attempt_standard
from bot.services import report_process
from bot.services.report_process import ReportProcess, give_way
from bot.services.reports import Reports, charts
from storage.reports import Filter, ReportStore
from storage.repository import Store
from tests.e2e.test_report_worker import niceness, policies
from tests.integration.test_report_store import AS_OF, WEEK, history

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "SCHED_IDLE"),
    reason="Linux's scheduling policies, read from /proc",
)

# A CPU burner that stops on its own after argv[1] seconds (and is killed before that).
BURN = (
    "import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: pass"
)


def _priority_once_hurried(within: float) -> tuple[int, int, int]:
    """In the worker: wait (at most `within` seconds) for this thread to leave SCHED_IDLE;
    the worker's pid, this thread's policy and nice value."""
    import time

    end = time.monotonic() + within
    while os.sched_getscheduler(0) == os.SCHED_IDLE and time.monotonic() < end:
        time.sleep(0.01)
    return os.getpid(), os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def _priority() -> tuple[int, int, int]:
    return _priority_once_hurried(0)


def restorable() -> bool:
    """Whether this system lets the server raise the worker's priority back (root, or
    CAP_SYS_NICE, or a RLIMIT_NICE that permits it): where not, the worker is never lowered."""
    return report_process._restorable()


async def test_a_job_kept_waiting_past_its_patience_runs_at_the_servers_priority(
    tmp_path: Path,
) -> None:
    """Within its patience a job runs at SCHED_IDLE; past it (here at once: a patience of 0),
    the worker runs at the server's scheduling policy and nice value, and once the job is done
    it is back at the lowest priority, every thread of it."""
    if not restorable():
        pytest.skip("this system does not let a lowered priority be raised back")
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    await ReportProcess(url).run(os.getpid, "its pid")  # the worker up (its start takes seconds)
    patient = ReportProcess(url, patience=3600.0)
    pid, policy, nice = await patient.run(_priority, "its priority")
    assert (policy, nice) == (os.SCHED_IDLE, 19)

    hurried = ReportProcess(url, patience=0.0)
    job = await hurried.run(partial(_priority_once_hurried, 20.0), "its priority once hurried")
    assert job == (pid, os.SCHED_OTHER, os.getpriority(os.PRIO_PROCESS, 0))
    assert policies(pid) == {os.SCHED_IDLE} and niceness(pid) == 19


async def test_a_report_on_a_machine_busy_with_other_work_comes_back(
    store: Store, policy: Policy
) -> None:
    """Every core the worker may use busy with other programs (two CPU burners on it): the
    report built in the worker and its charts come back (before, at SCHED_IDLE, they waited
    for an idle core that never came), and they are what is built without it. The burners and
    the worker are held to one core, the worker's affinity given back after: CI runs the suite
    in two processes on two cores, and the other process's tests keep the other core (with
    burners on every core they ran at a fraction of one, their own bounds at risk)."""
    services = await history(store, policy)
    process = ReportProcess(store.db.url, patience=2.0)  # the mechanism, not the default's wait
    worker = await process.run(os.getpid, "its pid")  # the worker up while the machine is quiet
    assert worker is not None
    cores = os.sched_getaffinity(0)
    one = {min(cores)}
    standard = attempt_standard(policy, AS_OF)
    work = process.building(WEEK, WEEK.previous(), AS_OF, standard, Filter(), True, policy, None)
    burners: list[asyncio.subprocess.Process] = []
    try:
        pin(worker, one)  # its threads to come take its main thread's affinity
        for _ in range(2):
            burner = await asyncio.create_subprocess_exec(sys.executable, "-c", BURN, "45")
            burners.append(burner)
            os.sched_setaffinity(burner.pid, one)
        async with asyncio.timeout(30):  # a generous bound: 0.5 s on a quiet machine
            built = await process.run(work, "this report")
            assert built is not None, "built in the server: the worker stopped"
            drawn = await process.run(partial(charts, built, give_way), "these charts")
    finally:
        for burner in burners:
            with contextlib.suppress(ProcessLookupError):
                burner.kill()
        for burner in burners:
            await burner.wait()
        pin(worker, cores)
    here = await Reports(ReportStore(store.db), services.policies).report(WEEK, AS_OF)
    assert built == here
    assert drawn is not None and drawn == charts(here)


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of process `pid` on `cores` (an affinity, like a priority, is a thread's,
    and a new thread takes its creator's)."""
    for tid in report_process._tasks(pid):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cores)


@pytest.mark.skipif(
    shutil.which("capsh") is None or os.geteuid() != 0,
    reason="drops CAP_SYS_NICE from a root process with capsh",
)
def test_where_a_lowered_priority_could_not_be_raised_again_the_worker_is_not_lowered(
    tmp_path: Path,
) -> None:
    """Without CAP_SYS_NICE and with RLIMIT_NICE at its default 0 (a process run by a plain
    user, or root in a container that drops it, as Docker does), a worker at SCHED_IDLE or
    nice 19 could never be raised again, and a report kept waiting would wait for good: there
    the worker runs at the server's priority (and still gives way to Slack's requests)."""
    script = (
        "import asyncio, os, resource\n"
        "from functools import partial\n"
        "from bot.services.report_process import ReportProcess, shutdown\n"
        "resource.setrlimit(resource.RLIMIT_NICE, (0, 0))\n"
        f"process = ReportProcess('sqlite+aiosqlite:///{tmp_path / 'h.db'}')\n"
        "async def main():\n"
        "    policy = await process.run(partial(os.sched_getscheduler, 0), 'its policy')\n"
        "    nice = await process.run(partial(os.getpriority, os.PRIO_PROCESS, 0), 'its nice')\n"
        "    here = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)\n"
        "    print(policy == here[0], nice == here[1])\n"
        "asyncio.run(main())\n"
        "shutdown()\n"
    )
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    done = subprocess.run(
        ["capsh", "--drop=cap_sys_nice", "--", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"], done.stdout


def test_where_there_is_no_sched_idle_the_probe_changes_no_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without Linux's SCHED_IDLE (macOS, the BSDs) the worker is never lowered, and the probe
    must not try: a priority per thread, set by its id through `setpriority`, is Linux's alone.
    Elsewhere a thread's id is no pid (NetBSD numbers a process's threads 1, 2, …), and
    `setpriority(PRIO_PROCESS, that id, 19)` reniced whichever process had that pid, for good,
    as root. Here on Linux: SCHED_IDLE taken away, every priority change recorded."""
    changes: list[tuple[object, ...]] = []
    monkeypatch.delattr(os, "SCHED_IDLE")
    monkeypatch.setattr(os, "setpriority", lambda *args: changes.append(("nice", *args)))
    monkeypatch.setattr(os, "sched_setscheduler", lambda *args: changes.append(("policy", *args)))
    monkeypatch.setattr(report_process, "_can_restore", None)  # asked again, then forgotten
    assert restorable() is False
    assert changes == []


# A process that starts a thread each time it reads a line, and prints the thread's id.
THREADS_ON_DEMAND = (
    "import sys, threading\n"
    "for line in sys.stdin:\n"
    "    thread = threading.Thread(target=threading.Event().wait, daemon=True)\n"
    "    thread.start()\n"
    "    print(thread.native_id, flush=True)\n"
)


def priorities(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of process `pid`: its scheduling policy and nice value."""
    return {
        tid: (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid))
        for tid in report_process._tasks(pid)
    }


@pytest.mark.parametrize("direction", ["lowered", "raised"])
def test_a_thread_started_while_the_priority_changes_takes_the_new_one_too(
    monkeypatch: pytest.MonkeyPatch, direction: str
) -> None:
    """The worker starts a thread (a report's SQLite connection has one) just after the server
    listed the worker's threads and before it changed its main thread's priority: the new
    thread took the main thread's old priority, and the server, changing the threads it had
    listed, missed it. Raised (a job past its patience), that thread stayed at SCHED_IDLE, and
    on a busy machine the report it read for never came back; lowered, it took the CPU from
    the acks. Here the listing is the real one, and the thread is started right after it."""
    if direction == "raised" and not restorable():
        pytest.skip("this system does not let a lowered priority be raised back")
    worker = subprocess.Popen(
        [sys.executable, "-c", THREADS_ON_DEMAND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    listed = report_process._tasks
    started: list[int] = []

    def listed_then_a_thread_started(pid: int) -> list[int]:
        tasks = listed(pid)
        if not started:  # once: the thread started between the listing and the change
            worker.stdin.write("\n")
            worker.stdin.flush()
            started.append(int(worker.stdout.readline()))
        return tasks

    try:
        if direction == "lowered":
            expected = (os.SCHED_IDLE, report_process.LOWEST_NICE)
            change = report_process.lowest_priority
        else:
            report_process.lowest_priority(worker.pid)
            expected = (os.SCHED_OTHER, os.getpriority(os.PRIO_PROCESS, 0))
            change = report_process.servers_priority
        monkeypatch.setattr(report_process, "_tasks", listed_then_a_thread_started)
        change(worker.pid)
        monkeypatch.undo()
        threads = priorities(worker.pid)
        assert started and started[0] in threads
        assert threads == dict.fromkeys(threads, expected), threads
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.parametrize("direction", ["lowered", "raised"])
def test_a_worker_starting_threads_without_end_does_not_hold_the_server(
    monkeypatch: pytest.MonkeyPatch, direction: str
) -> None:
    """The priority changes on the server's event loop, every ack waiting behind it: a worker
    that starts a thread at every listing (a report opening connection after connection) must
    not keep it listing for ever. Its threads listed in a few rounds are changed, and the
    change returns (one started later by a changed thread takes the new priority anyway)."""
    listings: list[int] = []

    def tasks_growing(pid: int) -> list[int]:
        listings.append(pid)
        assert len(listings) <= 1000, "still listing the worker's threads"
        return [pid + n for n in range(len(listings))]  # one new thread at each listing

    changed: list[int] = []
    monkeypatch.setattr(report_process, "_tasks", tasks_growing)
    monkeypatch.setattr(report_process.os, "setpriority", lambda _w, tid, _n: changed.append(tid))
    monkeypatch.setattr(report_process.os, "sched_setscheduler", lambda tid, _p, _s: None)
    change = (
        report_process.lowest_priority
        if direction == "lowered"
        else report_process.servers_priority
    )
    change(900_000)
    assert 2 <= len(listings) <= 10, len(listings)
    assert sorted(changed) == [900_000 + n for n in range(len(listings))]

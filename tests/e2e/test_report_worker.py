"""The report worker process (issue 15, item 5) leaves with its server: a `handoff serve` killed
with `kill -9` leaves no process behind holding its output open (a supervisor reading it sees its
end) and no worker running on as an orphan, whether the worker was still starting or had built a
report already; on SIGTERM the server exits 0 and its worker is gone with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.stack import INTAKE_TOKEN, SIGNING_SECRET
from bot.simulator.server import SlackSimulator
from tests.e2e.servers import replica
from tests.e2e.test_claim_race import new_simulator
from tests.e2e.test_cli import clean_env
from tests.e2e.test_replicas import replica_sla

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def parents() -> dict[int, int]:
    """Every live process's parent (zombies count as gone)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state not in ("Z", "X"):
            found[int(entry)] = int(ppid)
    return found


def descendants(pid: int) -> set[int]:
    table = parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def policies(pid: int) -> set[int]:
    """The scheduling policies of the process's threads (SCHED_IDLE is 5)."""
    found = set()
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.add(int((thread / "stat").read_text().rsplit(")", 1)[1].split()[38]))
    return found


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def posted(sim: SlackSimulator) -> Callable[[], object]:
    return lambda: sim.calls_to("chat.postMessage")


def server_env(tmp_path: Path, sim: SlackSimulator) -> dict[str, str]:
    """A server on a SQLite file whose weekly digest is due as it starts: it builds a report
    (in its worker process, the default) at once."""
    return clean_env(
        SLACK_BOT_TOKEN="xoxb-worker",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=sim.api_url,
        HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
        HANDOFF_SLA_FILE=str(replica_sla(tmp_path)),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}",
        HANDOFF_REPORT_PROCESS="1",
        LOG_FORMAT="text",
    )


@pytest.mark.parametrize("when", ["while the worker starts", "after a report"])
async def test_a_server_killed_with_kill_9_takes_its_report_worker_along(
    tmp_path: Path, when: str
) -> None:
    async with new_simulator() as sim, replica(server_env(tmp_path, sim), tmp_path) as server:
        pid = server.process.pid

        def worker() -> set[int]:
            return {p for p in descendants(pid) if "multiprocessing" in command(p)}

        await sim.wait_for(worker, timeout=20, what="the report worker")
        if when == "after a report":
            await sim.wait_for(posted(sim), timeout=30, what="the digest")
        left = descendants(pid)  # the worker (and multiprocessing's resource tracker)
        workers = [p for p in left if "spawn_main" in command(p)]
        assert workers, [command(p) for p in left]
        # It yields the CPU to the server from its start (not only once it has imported all):
        # the lowest priority there is, SCHED_IDLE (nice 19 where that is refused).
        assert all(niceness(p) == 19 for p in workers)
        assert all(policies(p) == {os.SCHED_IDLE} for p in workers), [policies(p) for p in workers]
        server.process.send_signal(signal.SIGKILL)
        # Nobody holds the server's output open: a supervisor reading it sees its end.
        await asyncio.wait({server.reader}, timeout=20)
        assert server.reader.done(), "the server's output is still held open"
        async with asyncio.timeout(10):
            assert await server.process.wait() == -signal.SIGKILL
        await sim.wait_for(lambda: not left & set(parents()), timeout=20, what="the worker gone")


async def test_sigterm_stops_the_server_and_its_report_worker(tmp_path: Path) -> None:
    async with new_simulator() as sim, replica(server_env(tmp_path, sim), tmp_path) as server:
        pid = server.process.pid
        await sim.wait_for(posted(sim), timeout=30, what="the digest")
        left = descendants(pid)
        assert any("spawn_main" in command(p) for p in left), [command(p) for p in left]
        server.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await server.process.wait() == 0, "".join(server.output)
        await asyncio.wait({server.reader}, timeout=20)
        assert server.reader.done(), "the server's output is still held open"
        await sim.wait_for(lambda: not left & set(parents()), timeout=20, what="the worker gone")


def test_where_sched_idle_is_refused_the_worker_still_takes_nice_19() -> None:
    """`lowest_priority` never fails a report: where the system refuses SCHED_IDLE (or has
    none), the process keeps the lowest nice value, quietly. In a process of its own: a
    process cannot take its own priority back."""
    script = (
        "import os\n"
        "from bot.services.report_process import lowest_priority\n"
        "def refuse(*args): raise PermissionError('not here')\n"
        "os.sched_setscheduler = refuse\n"
        "lowest_priority()\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0) == os.SCHED_OTHER)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["19", "True"]

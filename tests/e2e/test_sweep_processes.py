"""`handoff sweep` as cron runs it: separate processes, each step fired exactly once.

Two sweeps at the same instant, as two processes on one PostgreSQL database, fire each due step
once between them (the database decides, not process memory), and deliver every Slack message
they cause before exiting. On SQLite, one process; a second run at the same instant does nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli.stack import BOT_TOKEN, SIGNING_SECRET, LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from tests.conftest import ROOT, lead_payload, postgres_database
from tests.e2e.conftest import MONDAY_11AM_SYDNEY

ENTERPRISE = "C0ENT"
AT = "2026-11-23T00:31:00Z"  # Mon 11:31 in Sydney: half the hot leads' 1h claim window gone
SUMMARY = re.compile(
    r"^escalation sweep as of 2026-11-23T00:31:00\+00:00: (\d+) leads due, (\d+) escalated$"
)
LEADS = 30


def sweep_env(stack: LocalStack, database_url: str) -> dict[str, str]:
    """What cron would set for `handoff sweep`, pointed at the stack's Slack simulator."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": stack.sim.api_url,
        "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml"),
        "HANDOFF_SLACK_POSTS_PER_SECOND": "200",
        "HANDOFF_SLACK_POST_BURST": "50",
        "HANDOFF_SLACK_CALLS_PER_MINUTE": "60000",
        "HANDOFF_SLACK_CALL_BURST": "500",
    }


async def handoff(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `python -m bot.cli ARGS` without blocking the loop the simulator answers on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def summary(out: str) -> tuple[int, int]:
    """(leads due, leads escalated) from the one line `handoff sweep` prints."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    return int(match.group(1)), int(match.group(2))


async def new_leads(stack: LocalStack, count: int) -> None:
    for index in range(count):
        status, _ = await stack.post_lead(lead_payload(f"hs-{index}"))
        assert status == 201
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == count


def thread_replies(stack: LocalStack) -> list[list[str]]:
    """Each lead post's thread replies, as text."""
    return [
        [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]
        for post in stack.sim.messages(ENTERPRISE)
    ]


async def escalation_rows(stack: LocalStack) -> list[tuple[int, int, str, int, str]]:
    rows = await stack.services.store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT lead_id, cycle, ladder, step, status FROM escalations ORDER BY lead_id"
        ).all()
    )
    return [(int(a), int(b), str(c), int(d), str(e)) for a, b, c, d, e in rows]


@pytest.fixture
async def pg_stack(policy: Policy) -> AsyncIterator[tuple[LocalStack, str]]:
    """A Handoff stack on a fresh PostgreSQL database (skipped without one), no sweeps of its
    own: its clock stays at Monday 11:00 while the sweeps run as of 11:31."""
    url, drop = await postgres_database()
    stack = await start_stack(
        url, policy, clock=TravelClock(MONDAY_11AM_SYDNEY), HANDOFF_SWEEP_SECONDS="0"
    )
    try:
        yield stack, url
    finally:
        await stack.close()
        await drop()


@pytest.fixture
async def sqlite_stack(policy: Policy, tmp_path: Path) -> AsyncIterator[tuple[LocalStack, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}"
    stack = await start_stack(
        url, policy, clock=TravelClock(MONDAY_11AM_SYDNEY), HANDOFF_SWEEP_SECONDS="0"
    )
    try:
        yield stack, url
    finally:
        await stack.close()


async def test_two_sweep_processes_on_postgresql_fire_each_step_once(
    pg_stack: tuple[LocalStack, str],
) -> None:
    stack, url = pg_stack
    await new_leads(stack, LEADS)
    env = sweep_env(stack, url)

    results = await asyncio.gather(*(handoff(env, "sweep", "--at", AT) for _ in range(2)))

    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
        assert "wait in the outbox" not in out  # each delivered what it caused before exiting
    counts = [summary(out) for _, out, _ in results]
    assert sum(escalated for _, escalated in counts) == LEADS  # between them, once per lead
    assert all(due <= LEADS for due, _ in counts)

    rows = await escalation_rows(stack)
    assert rows == [(lead, 1, "unclaimed", 0, "fired") for lead in range(1, LEADS + 1)]

    await stack.settle()
    replies = thread_replies(stack)
    assert len(replies) == LEADS
    for thread in replies:
        assert len(thread) == 1, thread  # exactly one reminder per lead, none twice
        assert "still waiting for a claim" in thread[0]
    reminders = [
        call
        for call in stack.sim.calls_to("chat.postMessage")
        if call.ok and call.channel == ENTERPRISE and call.args.get("thread_ts")
    ]
    assert len(reminders) == LEADS  # no second post that Slack had to swallow
    assert stack.sim.messages("C0ESCALATE") == []  # 100% is not due yet
    # Each post re-rendered once for its new clock colour (by whichever process delivered it).
    updates = [c for c in stack.sim.calls_to("chat.update") if c.ok and c.channel == ENTERPRISE]
    assert len(updates) == LEADS

    # A third sweep at the same instant finds nothing left to do.
    code, out, err = await handoff(env, "sweep", "--at", AT)
    assert code == 0, err
    assert summary(out) == (0, 0)
    assert len(await escalation_rows(stack)) == LEADS


async def test_sweep_on_sqlite_prints_its_summary_and_runs_once(
    sqlite_stack: tuple[LocalStack, str],
) -> None:
    stack, url = sqlite_stack
    await new_leads(stack, 3)
    env = sweep_env(stack, url)

    code, out, err = await handoff(env, "sweep", "--at", "2026-11-23T11:31:00+11:00")
    assert code == 0, err
    assert summary(out) == (3, 3)
    await stack.settle()
    assert [len(thread) for thread in thread_replies(stack)] == [1, 1, 1]
    rows = await escalation_rows(stack)
    assert rows == [(lead, 1, "unclaimed", 0, "fired") for lead in (1, 2, 3)]

    code, out, err = await handoff(env, "sweep", "--at", AT)  # the same instant, in UTC
    assert code == 0, err
    assert summary(out) == (0, 0)
    assert [len(thread) for thread in thread_replies(stack)] == [1, 1, 1]
    assert len(await escalation_rows(stack)) == 3

    # Without --at, as of now, named to the second as cron's log reads it (docs/operations.md).
    code, out, err = await handoff(env, "sweep")
    assert code == 0, err
    assert re.match(r"^escalation sweep as of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00: ", out), out


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (
            "nonsense",
            "handoff: --at 'nonsense' is not an ISO-8601 instant like 2026-11-23T09:30+11:00",
        ),
        (
            "2026-11-23T00:31",
            "handoff: --at '2026-11-23T00:31' needs a time zone, like 2026-11-23T09:30+11:00 or …Z",
        ),
    ],
)
async def test_sweep_refuses_an_instant_it_cannot_place(
    sqlite_stack: tuple[LocalStack, str], at: str, message: str
) -> None:
    stack, url = sqlite_stack
    await new_leads(stack, 1)
    code, out, err = await handoff(sweep_env(stack, url), "sweep", "--at", at)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [message]
    assert await escalation_rows(stack) == []  # nothing swept

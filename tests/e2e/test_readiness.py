"""`GET /readyz` names each check (issue 15): the database, the scheduler, the outbox, the CRM,
Slack's bot token (tests/e2e/test_token_refused.py); 503 while one fails, with why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from tests.conftest import lead_payload


async def ready(stack: LocalStack) -> tuple[int, dict[str, Any]]:
    async with stack.session.get(f"{stack.base_url}/readyz") as response:
        return response.status, await response.json()


async def test_ready_names_every_check(stack: LocalStack) -> None:
    status, answer = await ready(stack)
    assert status == 200 and answer["ready"] is True
    assert set(answer["checks"]) == {"database", "scheduler", "outbox", "crm", "slack_token"}
    assert answer["checks"]["slack_token"] == {"ok": True, "detail": "Slack has not refused it"}
    assert answer["checks"]["outbox"] == {"ok": True, "detail": "nothing waits"}
    assert answer["checks"]["scheduler"] == {"ok": True, "detail": "running"}


async def test_not_ready_while_slack_deliveries_are_stuck(
    stack: LocalStack, clock: TravelClock
) -> None:
    stack.sim.inject("chat.postMessage", status=500, seconds=3600)
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    clock.advance(minutes=5)
    assert (await ready(stack))[0] == 200  # waiting 5 minutes: still ready
    clock.advance(minutes=6)
    status, answer = await ready(stack)
    assert status == 503 and answer["ready"] is False
    outbox = answer["checks"]["outbox"]
    assert outbox["ok"] is False and "waited 660 s (limit 600 s)" in outbox["detail"]
    assert answer["checks"]["database"]["ok"] is True


async def test_a_max_outbox_age_of_0_turns_the_check_off(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """As its setting's error message says, 0 turns it off (it failed at once): the age is
    still shown, and the replica stays in its load balancer while Slack is down."""
    stack = await start_stack(sqlite_url, policy, clock=clock, HANDOFF_READY_MAX_OUTBOX_AGE="0")
    try:
        stack.sim.inject("chat.postMessage", status=500, seconds=3600)
        assert (await stack.post_lead(lead_payload()))[0] == 201
        clock.advance(minutes=11)
        status, answer = await ready(stack)
    finally:
        await stack.close()
    assert status == 200 and answer["checks"]["outbox"] == {
        "ok": True,
        "detail": "the oldest delivery has waited 660 s",
    }


async def test_not_ready_when_the_database_does_not_answer(
    stack: LocalStack, tmp_path: Path
) -> None:
    database = stack.handoff.database
    path = Path(str(database.url).split("///", 1)[1])
    await database.dispose()
    os.rename(path, tmp_path / "away.db")
    os.mkdir(path)  # where the file was, a directory: SQLite cannot open it
    try:
        status, answer = await ready(stack)
        # Liveness says so without failing: restarting the process mends no database.
        async with stack.session.get(f"{stack.base_url}/healthz") as response:
            alive = (response.status, await response.json())
        # /metrics still answers (it was a 500: every counter and histogram lost with it)
        async with stack.session.get(f"{stack.base_url}/metrics") as response:
            scraped = (response.status, await response.text())
    finally:
        await database.dispose()
        os.rmdir(path)
        os.rename(tmp_path / "away.db", path)
    assert status == 503 and answer["ready"] is False
    assert answer["checks"]["database"]["ok"] is False
    assert answer["checks"]["database"]["detail"].startswith("does not answer")
    assert answer["checks"]["outbox"]["ok"] is False
    assert scraped[0] == 200 and "handoff_claims_total 0.0" in scraped[1]
    assert alive[0] == 200 and alive[1]["database"].startswith("does not answer")
    assert "handoff_metrics_probe_failures 1.0" in scraped[1]
    assert (await ready(stack))[0] == 200  # and ready again once it answers


async def test_sweeps_failing_in_a_row_are_not_ready_and_are_counted(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that fails every time escalates nothing: /readyz said "running" for ever, and
    no metric moved. Three in a row are not ready; one that works is ready again."""
    handoff = stack.handoff

    async def broken(now: object) -> object:
        raise RuntimeError("the sweep's query failed")

    working = handoff.sweeper.run
    monkeypatch.setattr(handoff.sweeper, "run", broken)
    for _ in range(3):
        await handoff.sweep()
    status, answer = await ready(stack)
    assert status == 503 and answer["checks"]["scheduler"] == {
        "ok": False,
        "detail": "running, but the last 3 escalation sweeps failed (the log says why)",
    }
    assert handoff.metrics.counts["sweep_failures_total"] == 3
    monkeypatch.setattr(handoff.sweeper, "run", working)
    await handoff.sweep()
    assert (await ready(stack))[0] == 200 and handoff.last_sweep > 0

"""Slack refuses Handoff's bot token for good (the app uninstalled, the token revoked): the
delivery worker stops at the first refusal (or at Slack's `app_uninstalled` / `tokens_revoked`
event), keeps every row, logs one error, asks Slack's auth.test once a minute, and delivers
everything exactly once when the token works again. /readyz and a gauge say so meanwhile. The
members' reads stop at the first refusal too, and the names and time zones are read again, once,
soon after the token works again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bot.cli.stack import BOT_TOKEN, LocalStack, TravelClock
from bot.domain.policy import parse_policy, snapshot
from bot.simulator.server import SlackSimulator
from tests.conftest import lead_payload

CHANNELS = {"C0ENT": 2400, "C0MID": 450, "C0SMB": 40}  # a company size for each segment channel


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # SQLite and PostgreSQL


def lead(external_id: str, channel: str) -> dict[str, Any]:
    return lead_payload(external_id, company={"name": external_id, "employees": CHANNELS[channel]})


def posts(sim: SlackSimulator) -> Counter[str]:
    """How many messages each lead has in Slack, by its external id."""
    seen: Counter[str] = Counter()
    for channel in CHANNELS:
        for message in sim.messages(channel):
            meta = message.metadata or {}
            if meta.get("event_type") == "handoff_lead":
                seen[str(meta["event_payload"]["external_id"])] += 1
    return seen


async def until(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def ready(stack: LocalStack) -> tuple[int, dict[str, Any]]:
    async with stack.session.get(f"{stack.base_url}/readyz") as response:
        return response.status, await response.json()


async def refused_gauge(stack: LocalStack) -> str:
    async with stack.session.get(f"{stack.base_url}/metrics") as response:
        text = await response.text()
    (line,) = [row for row in text.splitlines() if row.startswith("handoff_slack_token_refused ")]
    return line.split()[1]


async def wait_ready(stack: LocalStack, ok: bool) -> dict[str, Any]:
    """/readyz's `slack_token` check, once it is `ok` (a refusal is learnt from Slack's answer)."""
    deadline = time.monotonic() + 10
    while True:
        status, answer = await ready(stack)
        check = answer["checks"].get("slack_token")
        if check is not None and check["ok"] is ok:
            assert status == (200 if ok else 503), answer
            return dict(check)
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.05)


def token_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and "token" in record.getMessage()
    ]


async def refreshed(stack: LocalStack) -> None:
    """The members' reads at start are done: `serve`'s background refresh as well as the
    stack's own (each asks users.info once per member), so neither meets the refusal a test
    sets up (the first call Slack refuses tells the delivery worker, whichever it is)."""
    members = len(stack.handoff.people.members())
    await until(lambda: len(stack.sim.calls_to("users.info")) >= 2 * members)


async def probe(stack: LocalStack, clock: TravelClock, before: int) -> None:
    """A minute passes: the worker asks auth.test once more."""
    clock.advance(seconds=61)
    await until(lambda: len(stack.sim.calls_to("auth.test")) > before)


async def test_a_refused_token_stops_every_delivery_until_it_works_again(
    stack: LocalStack, clock: TravelClock, caplog: pytest.LogCaptureFixture
) -> None:
    sim = stack.sim
    caplog.set_level(logging.INFO, logger="handoff")
    # `handoff demo`, run in this process by an earlier test, quiets the outbox's logger.
    caplog.set_level(logging.INFO, logger="handoff.outbox")
    await refreshed(stack)
    assert (await stack.post_lead(lead("before-1", "C0ENT")))[0] == 201
    await stack.settle()
    assert posts(sim) == Counter({"before-1": 1})
    assert await refused_gauge(stack) == "0.0"

    sim.refused_tokens.add(BOT_TOKEN)  # the app was uninstalled: Slack answers invalid_auth
    mark = len(sim.calls)
    probes = len(sim.calls_to("auth.test"))
    assert (await stack.post_lead(lead("first", "C0ENT")))[0] == 201
    check = await wait_ready(stack, ok=False)
    assert "invalid_auth" in check["detail"] and "SLACK_BOT_TOKEN" in check["detail"]
    assert await refused_gauge(stack) == "1.0"

    # More leads, in three channels: nothing goes to Slack, nothing is retried meanwhile.
    for index, channel in enumerate([*CHANNELS, *CHANNELS]):
        assert (await stack.post_lead(lead(f"waiting-{index}", channel)))[0] == 201
    await asyncio.sleep(2.5)  # longer than several retries' backoff used to be
    calls = [call.method for call in sim.calls[mark:]]
    assert calls == ["chat.postMessage"], calls  # the one that met the refusal
    (logged,) = token_errors(caplog)
    assert "invalid_auth" in logged and "SLACK_BOT_TOKEN" in logged and "reinstall" in logged

    # A minute later Slack is asked again (auth.test), and still refuses: no more lines.
    await probe(stack, clock, probes)
    await asyncio.sleep(0.3)
    calls = [call.method for call in sim.calls[mark:]]
    assert calls == ["chat.postMessage", "auth.test"], calls
    assert len(token_errors(caplog)) == 1
    assert (await wait_ready(stack, ok=False))["ok"] is False
    rows = [row for row in await stack.handoff.outbox.rows.rows() if row["state"] == "pending"]
    assert len(rows) == 7 and sum(row["attempts"] for row in rows) == 1  # none burned waiting

    # The token works again (reinstalled): at the next probe every lead is posted, once.
    sim.refused_tokens.discard(BOT_TOKEN)
    await probe(stack, clock, probes + 1)
    await stack.settle()
    seen = posts(sim)
    assert set(seen.values()) == {1} and len(seen) == 8, seen
    assert await wait_ready(stack, ok=True) == {"ok": True, "detail": "Slack has not refused it"}
    assert await refused_gauge(stack) == "0.0"
    assert any("accepts Handoff's bot token again" in r.getMessage() for r in caplog.records)
    assert len(token_errors(caplog)) == 1


@pytest.mark.parametrize(
    "event",
    [{"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}}],
    ids=["app_uninstalled", "tokens_revoked"],
)
async def test_slacks_uninstall_events_stop_deliveries_at_once(
    stack: LocalStack, clock: TravelClock, caplog: pytest.LogCaptureFixture, event: dict[str, Any]
) -> None:
    """Slack's events (https://docs.slack.dev/reference/events/app_uninstalled, tokens_revoked:
    "No scopes required") say it before any delivery meets the refusal."""
    sim = stack.sim
    caplog.set_level(logging.INFO, logger="handoff")
    await refreshed(stack)
    sim.refused_tokens.add(BOT_TOKEN)
    mark = len(sim.calls)
    assert (await stack.driver.event(event)).status == 200
    check = await wait_ready(stack, ok=False)
    assert event["type"] in check["detail"]
    for index, channel in enumerate(CHANNELS):
        assert (await stack.post_lead(lead(f"lead-{index}", channel)))[0] == 201
    await asyncio.sleep(1.5)
    assert [call.method for call in sim.calls[mark:]] == []  # not one refused call
    (logged,) = token_errors(caplog)
    assert event["type"] in logged and "SLACK_BOT_TOKEN" in logged

    sim.refused_tokens.discard(BOT_TOKEN)  # reinstalled with the same token
    await probe(stack, clock, len(sim.calls_to("auth.test")))
    await stack.settle()
    assert posts(sim) == Counter({"lead-0": 1, "lead-1": 1, "lead-2": 1})
    assert (await wait_ready(stack, ok=True))["ok"] is True


async def test_a_revoked_user_token_is_not_handoffs(stack: LocalStack) -> None:
    """`tokens_revoked` lists user tokens under `oauth` and bot tokens under `bot`: Handoff has
    only a bot token, so a user token's revocation stops nothing."""
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U0REP1"], "bot": []}}
    assert (await stack.driver.event(event)).status == 200
    assert (await stack.post_lead(lead("lead-1", "C0ENT")))[0] == 201
    await stack.settle()
    assert posts(stack.sim) == Counter({"lead-1": 1})
    assert (await wait_ready(stack, ok=True))["ok"] is True


def member_reads(stack: LocalStack, mark: int) -> Counter[str]:
    """How many users.info and users.profile.get calls Handoff made since `mark`."""
    reads = ("users.info", "users.profile.get")
    return Counter(call.method for call in stack.sim.calls[mark:] if call.method in reads)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines at WARNING or above, but the worker's news that the token works again."""
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return [line for line in lines if "bot token again" not in line]


@pytest.mark.parametrize("first", ["refresh", "statuses"])
async def test_a_refused_token_stops_the_member_reads_at_the_first_refusal(
    stack: LocalStack, clock: TravelClock, caplog: pytest.LogCaptureFixture, first: str
) -> None:
    """The daily members' refresh (users.info) and the status read (users.profile.get) ask
    Slack once per member: with the token refused (Slack's `invalid_auth`, "Some aspect of
    authentication cannot be validated"), they stop at the first refusal with one line saying
    what to do, as the delivery worker's, not one warning per member; while it is refused
    they ask nothing; once auth.test accepts it again they read everyone."""
    caplog.set_level(logging.INFO, logger="handoff")
    caplog.set_level(logging.INFO, logger="handoff.outbox")
    people = stack.handoff.people
    book = people.policies
    book.current = parse_policy(snapshot(book.current) | {"away_statuses": [":palm_tree:"]})
    members, reps = len(people.members()), len(people.reps())
    assert (members, reps) == (8, 6)  # the example SLA's six reps and two managers
    sim = stack.sim
    sim.set_status("U0REP1", "Offsite", ":palm_tree:", 0)
    await refreshed(stack)
    caplog.clear()

    sim.refused_tokens.add(BOT_TOKEN)
    mark = len(sim.calls)
    probes = len(sim.calls_to("auth.test"))
    reads = {"refresh": people.refresh, "statuses": people.statuses}
    other = "statuses" if first == "refresh" else "refresh"
    await reads[first](clock())
    method = "users.info" if first == "refresh" else "users.profile.get"
    assert member_reads(stack, mark) == Counter({method: 1})  # not one per member
    (logged,) = warnings(caplog)
    assert "invalid_auth" in logged and "SLACK_BOT_TOKEN" in logged and "reinstall" in logged
    check = await wait_ready(stack, ok=False)  # the delivery worker knows it too
    assert "invalid_auth" in check["detail"]

    await reads[other](clock())  # known refused: Slack is not asked
    await reads[first](clock())
    assert member_reads(stack, mark) == Counter({method: 1})
    assert len(warnings(caplog)) == 1

    sim.refused_tokens.discard(BOT_TOKEN)  # reinstalled: the worker's probe learns it
    await probe(stack, clock, probes)
    await wait_ready(stack, ok=True)
    mark = len(sim.calls)
    await people.refresh(clock())
    assert await people.statuses(clock()) == 1  # @maya's status read again
    assert member_reads(stack, mark) == Counter({"users.info": members, "users.profile.get": reps})
    assert len(warnings(caplog)) == 1


async def test_names_and_time_zones_are_read_again_soon_after_the_token_works_again(
    stack: LocalStack, clock: TravelClock
) -> None:
    """While Slack refuses the token (the app uninstalled) it sends Handoff no `user_change`
    event: a rep who moved meanwhile would keep the old clock until the next daily refresh.
    Once auth.test accepts the token again, `serve`'s next look (every 30 s) reads everyone,
    once: not while it is refused, nor again at the next looks."""
    sim, handoff = stack.sim, stack.handoff
    members = len(handoff.people.members())
    await refreshed(stack)
    sim.refused_tokens.add(BOT_TOKEN)
    assert (await stack.driver.event({"type": "app_uninstalled"})).status == 200
    await wait_ready(stack, ok=False)
    sim.users["U0REP1"].tz, sim.users["U0REP1"].name = "Europe/London", "maya.london"
    mark = len(sim.calls)
    await probe(stack, clock, len(sim.calls_to("auth.test")))  # still refused
    await handoff.read_people()
    assert member_reads(stack, mark) == Counter()

    sim.refused_tokens.discard(BOT_TOKEN)  # reinstalled
    await probe(stack, clock, len(sim.calls_to("auth.test")))
    await wait_ready(stack, ok=True)
    await handoff.read_people()
    assert member_reads(stack, mark) == Counter({"users.info": members})
    assert handoff.people.names["U0REP1"] == "maya.london"
    assert (await handoff.store.zones())["U0REP1"] == "Europe/London"
    for _ in range(3):  # once
        clock.advance(minutes=5)
        await handoff.read_people()
    assert member_reads(stack, mark) == Counter({"users.info": members})

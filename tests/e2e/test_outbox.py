"""Nothing lost, nothing twice: the outbox against Slack outages, 429s, refusals and kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest

from bot.cli.stack import (
    BOT_TOKEN,
    CHANNELS,
    ERASURE_KEY,
    INTAKE_TOKEN,
    PEOPLE,
    SIGNING_SECRET,
    LocalStack,
)
from bot.simulator.server import SlackSimulator
from storage.outbox import OutboxStore
from tests.conftest import ROOT, lead_payload

SEGMENT_SIZES = (2400, 450, 40)  # enterprise, mid-market, SMB: three channels
LEAD_CHANNELS = ("C0ENT", "C0MID", "C0SMB")


def payload(index: int, prefix: str = "lead") -> dict[str, Any]:
    company = {"name": f"Company {index}", "employees": SEGMENT_SIZES[index % 3]}
    return lead_payload(f"{prefix}-{index}", company=company, name=f"Person {index}")


def posts_per_lead(sim: SlackSimulator) -> Counter[str]:
    """How many messages each lead has in Slack, by its external id (from message metadata)."""
    seen: Counter[str] = Counter()
    for channel in LEAD_CHANNELS:
        for message in sim.messages(channel):
            meta = message.metadata or {}
            if meta.get("event_type") == "handoff_lead":
                seen[str(meta["event_payload"]["external_id"])] += 1
    return seen


async def press(stack: LocalStack, user: str, channel: str, label: str, lead_text: str) -> None:
    message = stack.sim.find_message(channel, lead_text)
    assert message is not None, lead_text
    await stack.driver.press(user, label, channel=channel, message_ts=message.ts)


async def send_leads(stack: LocalStack, payloads: list[dict[str, Any]]) -> None:
    for start in range(0, len(payloads), 25):
        batch = payloads[start : start + 25]
        answers = await asyncio.gather(*(stack.post_lead(p) for p in batch))
        assert all(status == 201 for status, _ in answers), answers


async def test_an_outage_of_500s_and_dropped_connections_loses_and_doubles_nothing(
    stack: LocalStack,
) -> None:
    sim = stack.sim
    # For 60 s nothing Slack does reaches Handoff: half the posts fail with 500, a third of
    # the rest lose their connection before Slack acts, and the others are posted by Slack
    # but the answer is lost (the case that needs the channel's history).
    sim.inject("chat.*", status=500, every=2, seconds=60)
    sim.inject_connection_drop("chat.*", every=3, seconds=60)
    sim.inject_connection_drop("chat.*", seconds=60, after=True)
    await send_leads(stack, [payload(i) for i in range(500)])  # intake does not wait on Slack
    assert await stack.services.store.count_leads() == 500
    assert posts_per_lead(sim) == Counter() or max(posts_per_lead(sim).values()) == 1

    assert await stack.handoff.outbox.drain(150)
    seen = posts_per_lead(sim)
    assert len(seen) == 500 and set(seen.values()) == {1}
    counts = stack.handoff.metrics.counts
    assert counts["slack_adopted_total"] > 0  # some posts were found, not posted again
    assert counts["slack_retries_total"] > 0
    for lead_id in range(1, 501):
        lead = await stack.services.lead(lead_id)
        assert lead.message_ts is not None
        message = sim.message(lead.message_channel or "", lead.message_ts)
        assert message is not None and lead.external_id in str(message.metadata)
    assert sim.invalid_payloads == []


async def test_429s_are_waited_out_and_nothing_is_lost(stack: LocalStack) -> None:
    sim = stack.sim
    sim.inject("chat.*", retry_after=1, every=2)  # every second call: 429, Retry-After: 1
    await send_leads(stack, [payload(i) for i in range(6)])
    await stack.sim.wait_for(lambda: len(posts_per_lead(sim)) == 6, timeout=60, what="6 posts")
    await press(stack, "U0REP1", "C0ENT", "Claim", "Person 0")
    await press(stack, "U0REP3", "C0MID", "Claim", "Person 1")
    assert await stack.handoff.outbox.drain(60)

    assert set(posts_per_lead(sim).values()) == {1} and len(posts_per_lead(sim)) == 6
    assert sim.retry_windows, "the simulator answered 429s"
    assert sim.early_retries() == []  # no request before its Retry-After
    assert "<@U0REP1>" in sim.find_message("C0ENT", "Person 0").all_text  # type: ignore[union-attr]
    assert "<@U0REP3>" in sim.find_message("C0MID", "Person 1").all_text  # type: ignore[union-attr]


async def test_a_channel_slack_refuses_for_good_is_reported_once(stack: LocalStack) -> None:
    stack.sim.inject("chat.postMessage", error="not_in_channel", channel="C0MID")
    await send_leads(stack, [payload(1), payload(0)])
    assert await stack.handoff.outbox.drain(30)

    assert posts_per_lead(stack.sim) == Counter({"lead-0": 1})
    alerts = stack.sim.messages("C0ESCALATE")
    assert len(alerts) == 1
    text = alerts[0].all_text
    for expected in ("could not post a lead", "Person 1", "/lead lead-1", "not_in_channel"):
        assert expected in text, expected
    assert "/invite @Handoff" in text
    rows = await OutboxStore(stack.handoff.database).rows()
    failed = [row for row in rows if row["state"] == "failed"]
    assert [(row["kind"], row["last_error"]) for row in failed] == [("post_lead", "not_in_channel")]
    assert stack.handoff.metrics.counts["slack_errors_total"] == 1


async def test_a_channel_slack_cannot_find_is_told_how_to_find_out_why(stack: LocalStack) -> None:
    """chat.postMessage's `channel_not_found` ("Value passed for `channel` was invalid.") is
    also Slack's answer for a private channel the app was not invited to: the alert names the
    command that checks the ids against Slack (`handoff check` only reads the file) and the
    invitation."""
    stack.sim.missing_channels.add("C0MID")
    await send_leads(stack, [payload(1)])
    assert await stack.handoff.outbox.drain(30)

    (alert,) = [m.all_text for m in stack.sim.messages("C0ESCALATE")]
    assert "`channel_not_found`" in alert and "/lead lead-1" in alert
    assert "`handoff doctor`" in alert and "/invite @Handoff" in alert
    assert "handoff check" not in alert


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        # chat.postMessage's reference: "A workspace preference prevents the authenticated
        # user from posting." / "Cannot post any message into a read-only channel."
        ("restricted_action", "a Slack admin"),
        ("restricted_action_read_only_channel", "a Slack admin"),
        # "Your message couldn't be sent because your admins have disabled sending messages
        # to this channel."
        ("ekm_access_denied", "Slack admins"),
        # A scope the app was installed without (Slack's common `missing_scope`).
        ("missing_scope", "reinstall the app"),
    ],
)
async def test_a_refusal_only_an_admin_can_mend_says_who_and_what(
    stack: LocalStack, error: str, fix: str
) -> None:
    stack.sim.inject("chat.postMessage", error=error, channel="C0MID")
    await send_leads(stack, [payload(1)])
    assert await stack.handoff.outbox.drain(30)

    (alert,) = [m.all_text for m in stack.sim.messages("C0ESCALATE")]
    assert "/lead lead-1" in alert and f"`{error}`" in alert
    assert fix in alert


async def test_updates_wait_for_their_post_and_collapse_into_the_latest(
    stack: LocalStack,
) -> None:
    await send_leads(stack, [payload(0)])
    await stack.settle()
    await press(stack, "U0REP1", "C0ENT", "Claim", "Person 0")
    await stack.settle()
    stack.sim.answer_delay = 0.3  # Slack is slow: presses pile up behind the first update
    for label in ("Log email", "Log call", "Log LinkedIn"):
        await press(stack, "U0REP1", "C0ENT", label, "Person 0")
    await stack.settle()

    updates = stack.sim.calls_to("chat.update")
    # The claim's, then three attempts in one or two updates (the first may already be on
    # its way when the others arrive): never one per change.
    assert 2 <= len(updates) <= 3
    message = stack.sim.find_message("C0ENT", "Person 0")
    assert message is not None and "Attempts 3/6" in message.all_text  # the latest


# --- kill -9 in the middle of a burst --------------------------------------------------------


def serve_env(sim: SlackSimulator, database: Path, port: int) -> dict[str, str]:
    names = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "HANDOFF_INTAKE_TOKEN", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {
        **env,
        "HANDOFF_ERASURE_KEY": ERASURE_KEY,
        "SLACK_BOT_TOKEN": "xoxb-kill-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": sim.api_url,
        "HANDOFF_INTAKE_TOKEN": INTAKE_TOKEN,
        "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "HANDOFF_SLACK_POSTS_PER_SECOND": "200",
        "HANDOFF_SLACK_POST_BURST": "20",
        "HANDOFF_SLACK_CALLS_PER_MINUTE": "60000",
        "HANDOFF_SLACK_CALL_BURST": "100",
    }


async def start_serve(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("handoff serve did not start")


async def test_kill_9_in_the_middle_of_a_burst_posts_every_accepted_lead_once(
    tmp_path: Path,
) -> None:
    from tests.conftest import free_port

    async with SlackSimulator() as sim:
        for user_id, (name, real_name) in PEOPLE.items():
            sim.add_user(user_id, name, real_name)
        for channel_id, name in CHANNELS.items():
            sim.add_channel(channel_id, name)
        sim.answer_delay = 0.005  # Slack has done the work a moment before Handoff hears it
        port = free_port()
        env = serve_env(sim, tmp_path / "kill.db", port)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        accepted: set[str] = set()
        process = await start_serve(env, tmp_path)

        async def send(session: aiohttp.ClientSession, index: int) -> None:
            body = payload(index, "burst")
            try:
                async with session.post(f"{base}/leads", json=body, headers=headers) as response:
                    if response.status in (200, 201):
                        accepted.add(body["external_id"])
            except (aiohttp.ClientError, TimeoutError):
                pass  # not accepted: the marketing system will send it again

        async def burst(indexes: list[int]) -> None:
            semaphore = asyncio.Semaphore(20)
            async with aiohttp.ClientSession() as session:

                async def one(index: int) -> None:
                    async with semaphore:
                        await send(session, index)

                await asyncio.gather(*(one(i) for i in indexes))

        try:
            sending = asyncio.create_task(burst(list(range(1000))))
            await sim.wait_for(
                lambda: len(accepted) >= 400 and posts_per_lead(sim), timeout=60, what="a burst"
            )
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await sending
            assert 400 <= len(accepted) < 1000, len(accepted)
            before = len(posts_per_lead(sim))

            process = await start_serve(env, tmp_path)
            missing = [i for i in range(1000) if f"burst-{i}" not in accepted]
            await burst(missing)  # the sender retries what was not accepted
            assert len(accepted) == 1000
            await sim.wait_for(
                lambda: len(posts_per_lead(sim)) == 1000, timeout=120, what="all 1000 posts"
            )
            await asyncio.sleep(1.0)  # anything posted twice would show up by now
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=30)

        seen = posts_per_lead(sim)
        assert set(seen) == accepted and set(seen.values()) == {1}
        assert before < 1000
        assert sim.invalid_payloads == []


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_without_history_scope_a_lost_answer_is_posted_again_not_lost(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.sim.inject_connection_drop("chat.postMessage", times=1, after=True)
    stack.sim.inject("conversations.history", error="missing_scope")
    await send_leads(stack, [payload(0)])
    assert await stack.handoff.outbox.drain(30)

    assert posts_per_lead(stack.sim) == Counter({"lead-0": 2})  # a duplicate, never a loss
    assert "missing_scope: add channels:history" in caplog.text
    lead = await stack.services.lead(1)
    assert lead.message_ts is not None


async def test_an_app_posting_too_much_waits_and_loses_nothing(stack: LocalStack) -> None:
    # chat.postMessage's reference: `rate_limited` "Application has posted too many messages",
    # an answer of its own (HTTP 200), not the 429: nothing was posted, so it is sent again.
    stack.sim.inject("chat.postMessage", error="rate_limited", every=2, seconds=30)
    await send_leads(stack, [payload(i) for i in range(6)])
    assert await stack.handoff.outbox.drain(60)

    assert set(posts_per_lead(stack.sim).values()) == {1} and len(posts_per_lead(stack.sim)) == 6
    assert any(call.error == "rate_limited" for call in stack.sim.calls_to("chat.postMessage"))
    rows = await OutboxStore(stack.handoff.database).rows()
    assert [row for row in rows if row["state"] == "failed"] == []
    assert stack.sim.messages("C0ESCALATE") == []


@pytest.mark.parametrize(
    "error",
    [
        # chat.update's reference: "Internal update failure." (Slack's own, as internal_error)
        "update_failed",
        # "The channel is in the process of migrating and so the message cannot be updated
        # at this time.": it can be, later.
        "external_channel_migrating",
    ],
)
async def test_an_update_slack_cannot_make_for_now_is_made_later(
    stack: LocalStack, error: str
) -> None:
    """Before, these were given up for good: the lead's message kept showing it unclaimed
    and the escalations channel was told Slack refused it."""
    await send_leads(stack, [payload(0)])
    await stack.settle()
    stack.sim.inject("chat.update", error=error, times=2)
    await press(stack, "U0REP1", "C0ENT", "Claim", "Person 0")
    assert await stack.handoff.outbox.drain(60)

    assert [call.error for call in stack.sim.calls_to("chat.update")][:2] == [error, error]
    message = stack.sim.find_message("C0ENT", "Person 0")
    assert message is not None and "Claimed by" in message.all_text
    assert stack.sim.messages("C0ESCALATE") == []
    rows = await OutboxStore(stack.handoff.database).rows()
    assert [row for row in rows if row["state"] == "failed"] == []


async def test_an_archived_channel_is_reported_with_what_to_do(stack: LocalStack) -> None:
    await send_leads(stack, [payload(0)])
    assert await stack.handoff.outbox.drain(30)
    stack.sim.archive_channel("C0MID")  # chat.postMessage: is_archived
    stack.sim.archive_channel("C0ENT")  # chat.update of lead-0's post: is_inactive
    await send_leads(stack, [payload(1)])
    await press(stack, "U0REP1", "C0ENT", "Claim", "Person 0")
    assert await stack.handoff.outbox.drain(30)

    assert posts_per_lead(stack.sim) == Counter({"lead-0": 1})
    alerts = sorted(alert.all_text for alert in stack.sim.messages("C0ESCALATE"))
    assert len(alerts) == 2
    for text, error in zip(alerts, ("is_archived", "is_inactive"), strict=True):
        assert error in text and "archived: unarchive it or change sla.yaml" in text
    assert "/lead lead-1" in alerts[0] and "/lead lead-0" in alerts[1]
    rows = await OutboxStore(stack.handoff.database).rows()
    failed = sorted((row["kind"], row["last_error"]) for row in rows if row["state"] == "failed")
    assert failed == [("post_lead", "is_archived"), ("update_lead", "is_inactive")]


@pytest.mark.parametrize(
    "hostile",
    ["inf", "nan", "-5", "1e999", "99999999999999999999", "Fri, 31 Dec 99999 23:59:59 GMT"],
)
async def test_a_hostile_retry_after_does_not_stop_deliveries(
    stack: LocalStack, hostile: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack's 429 carries a `Retry-After` that is no wait RFC 9110 §10.2.3 allows (delay-seconds,
    a non-negative integer, or an HTTP-date): `inf`, `nan`, a negative number, a number past any
    clock, a date out of range. The delivery worker takes its usual wait for an unreadable one
    and at most 15 minutes for a huge one; it neither stops (before: OverflowError from
    `timedelta(seconds=inf)`) nor holds the other channels, and every lead is posted once."""
    sim = stack.sim
    # The first post to C0MID is refused with the hostile header; the others go through.
    sim.inject("chat.postMessage", channel="C0MID", retry_after_header=hostile, times=1)
    await send_leads(stack, [payload(1)])  # to C0MID
    await sim.wait_for(lambda: len(sim.rate_limited_calls) == 1, timeout=30, what="the 429")
    await send_leads(stack, [payload(0), payload(2)])  # to C0ENT and C0SMB, after it
    await sim.wait_for(
        lambda: {"lead-0", "lead-2"} <= set(posts_per_lead(sim)), timeout=30, what="other posts"
    )
    if hostile.isdigit():  # huge: the cap, a finite wait for C0MID alone
        (waiting,) = [
            row
            for row in await stack.handoff.outbox.rows.rows()
            if row["channel"] == "C0MID" and row["state"] == "pending"
        ]
        not_before = waiting["not_before"].replace(tzinfo=UTC)
        assert not_before <= datetime.now(UTC) + timedelta(minutes=15)
    else:  # unreadable: the usual wait, then C0MID's post too
        await sim.wait_for(lambda: "lead-1" in posts_per_lead(sim), timeout=30, what="lead-1")
        assert await stack.handoff.outbox.drain(30)
        assert set(posts_per_lead(sim).values()) == {1}
    assert "OverflowError" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)


# What a proxy or load balancer in front of Slack answers instead of Slack (its own page, not
# Slack's JSON), as slack_sdk meets it: plain text (kept as the answer's text), an HTML page
# (no body kept), and a page that says it is JSON and is not (slack_sdk raises with its raw
# aiohttp answer). Slack's Web API always answers a JSON object with a boolean `ok` (its Web
# API basics): none of these is Slack's answer.
UPSTREAM = "upstream connect error or disconnect/reset before headers. reset reason: overflow"


class ProxyPage(NamedTuple):
    """A proxy's page: its HTTP status, its Content-Type and its body."""

    status: int
    content_type: str
    text: str

    def answers(self, sim: SlackSimulator, method: str) -> None:
        """The proxy answers the next two calls of `method` with this page, not Slack."""
        sim.inject(
            method, status=self.status, text=self.text, content_type=self.content_type, times=2
        )


NOT_SLACK = [
    pytest.param(ProxyPage(503, "text/plain", UPSTREAM), id="plain-503"),
    pytest.param(ProxyPage(200, "text/plain", "Service temporarily unavailable"), id="plain-200"),
    pytest.param(
        ProxyPage(200, "text/html", "<html><body>Please sign in to the network</body></html>"),
        id="html-200",
    ),
    pytest.param(
        ProxyPage(502, "application/json", "<html>502 Bad Gateway</html>"), id="not-json-502"
    ),
]


@pytest.fixture(params=NOT_SLACK)
def page(request: pytest.FixtureRequest) -> ProxyPage:
    """Each of the proxy's pages in turn (the tests' ids are the pages')."""
    page: ProxyPage = request.param
    return page


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "failed unexpectedly" not in caplog.text
    assert "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)


async def test_a_lead_post_answered_by_a_proxy_not_slack_is_posted_once_later(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, page: ProxyPage
) -> None:
    """chat.postMessage is answered twice by a proxy's page, not Slack's JSON. It is Slack's
    5xx to the outbox: retried after the usual backoff, each with one warning line naming the
    answer, no traceback; its outcome unknown (a 200 may hide a post), the channel's history
    is read before the retry, and the lead is posted once (before: AttributeError on the
    text's `.get`, "failed unexpectedly" with a traceback, the lane paused the most backoff;
    an HTML 200 was given up as Slack's refusal `HTTP 200`, the lead never posted)."""
    sim = stack.sim
    page.answers(sim, "chat.postMessage")
    await send_leads(stack, [payload(0)])
    assert await stack.handoff.outbox.drain(30)

    assert posts_per_lead(sim) == Counter({"lead-0": 1})
    statuses = [call.status for call in sim.calls_to("chat.postMessage")]
    assert statuses == [page.status, page.status, 200]
    assert sim.calls_to("conversations.history"), "the post was looked for before its retry"
    assert sim.messages("C0ESCALATE") == []
    rows = await OutboxStore(stack.handoff.database).rows()
    assert {row["state"] for row in rows} == {"done"}
    no_traceback(caplog)
    warned = [r.getMessage() for r in caplog.records if "Slack delivery of row" in r.getMessage()]
    assert len(warned) == 2, warned
    # The status and the host that answered: a proxy's page answers for the API's host.
    named = f"HTTP {page.status} from 127.0.0.1, not Slack's answer ({page.content_type}"
    assert all(named in line for line in warned), warned
    assert not any(BOT_TOKEN in line for line in warned), warned
    if page.content_type != "text/html":  # slack_sdk reads no body it does not take for text
        assert all(page.text[:20] in line for line in warned), warned


async def test_an_update_answered_by_a_proxy_not_slack_is_made_later(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, page: ProxyPage
) -> None:
    """A claim's chat.update answered by a proxy's page twice: made later, no traceback."""
    await send_leads(stack, [payload(0)])
    await stack.settle()
    page.answers(stack.sim, "chat.update")
    await press(stack, "U0REP1", "C0ENT", "Claim", "Person 0")
    assert await stack.handoff.outbox.drain(30)

    message = stack.sim.find_message("C0ENT", "Person 0")
    assert message is not None and "Claimed by" in message.all_text
    statuses = [c.status for c in stack.sim.calls_to("chat.update")]
    assert statuses[:3] == [page.status, page.status, 200]
    assert stack.sim.messages("C0ESCALATE") == []
    rows = await OutboxStore(stack.handoff.database).rows()
    assert [row for row in rows if row["state"] == "failed"] == []
    no_traceback(caplog)


async def test_a_post_whose_answer_a_proxys_page_replaced_is_found_not_posted_twice(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack posts the lead, and a captive portal's HTML 200 replaces its answer: the outcome
    is unknown, the post is found in the channel's history and adopted, not posted a second
    time (the tests above answer before Slack acts, so a second post could not show there)."""
    sim = stack.sim
    page = "<html><body>Please sign in to the network</body></html>"
    sim.inject(
        "chat.postMessage", status=200, text=page, content_type="text/html", times=1, after=True
    )
    await send_leads(stack, [payload(0)])
    assert await stack.handoff.outbox.drain(30)

    assert posts_per_lead(sim) == Counter({"lead-0": 1})
    assert len(sim.calls_to("chat.postMessage")) == 1
    assert stack.handoff.metrics.counts["slack_adopted_total"] == 1
    lead = await stack.services.lead(1)
    assert lead.message_ts == sim.messages("C0ENT")[0].ts
    no_traceback(caplog)


async def test_the_delivery_worker_stops_when_stopped_as_it_is_woken(stack: LocalStack) -> None:
    """`close` cancels the dispatcher; a cancellation that comes just as it is woken (rows
    written, `deliver_soon`) must stop it. On Python 3.11 `asyncio.wait_for` returned the
    wake-up and dropped the cancellation (gh-86296): the dispatcher went on polling and
    `close` waited for ever (`handoff forget` hung in CI)."""
    outbox = stack.handoff.outbox
    dispatcher = next(task for task in outbox._tasks if task.get_name() == "outbox dispatcher")
    await asyncio.sleep(0.05)  # idle: waiting to be woken
    outbox.deliver_soon()
    await asyncio.sleep(0)  # the wait is over, its waiter not yet told
    dispatcher.cancel()
    done, _ = await asyncio.wait({dispatcher}, timeout=2)
    assert dispatcher in done and dispatcher.cancelled()

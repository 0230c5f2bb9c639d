"""The signed outbound webhook end to end: the real server and Slack simulator, and a real
aiohttp receiver that verifies every request with the `standardwebhooks` package.

Claims, attempts and dispositions reach the receiver once each, in order per lead; an hour's
outage loses and doubles nothing; a receiver that refuses (401) leaves the writes waiting,
raises one alert, and shows the CRM degraded until it is fixed; Slack is never held up."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook, WebhookVerificationError

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from storage.crm import CrmOutboxStore
from tests.conftest import free_port, lead_payload, local_server

SECRET = "whsec_" + base64.b64encode(b"handoff-test-webhook-secret-32b!").decode()
ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"


@dataclass
class Receiver:
    """A webhook receiver as a customer would write one: verify, then take the event."""

    port: int
    status: int = 200  # what it answers once verified
    reply: str = "no thanks"  # the body of an answer other than 200
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (id, body)
    forged: int = 0  # requests whose signature did not verify
    serving: contextlib.AsyncExitStack | None = None  # while it is up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/handoff"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = Webhook(SECRET).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.forged += 1
            return web.Response(status=400)
        if self.status != 200:
            return web.Response(status=self.status, text=self.reply)
        self.received.append((request.headers["webhook-id"], event))
        return web.Response(status=204)

    async def up(self, app: web.Application | None = None) -> None:
        """Serve on its port: the receiver, or `app` (routes of a test's own around it)."""
        if app is None:
            app = web.Application()
            app.router.add_post("/hooks/handoff", self.handle)
        self.serving = contextlib.AsyncExitStack()
        await self.serving.enter_async_context(local_server(app, self.port))

    async def down(self) -> None:
        if self.serving is not None:
            await self.serving.aclose()
            self.serving = None

    def events(self, external_id: str) -> list[str]:
        return [
            b["data"]["event"] for _, b in self.received if b["data"]["external_id"] == external_id
        ]


def with_webhook(policy: Policy, **crm: Any) -> Policy:
    section = {"kind": "webhook", "writes_per_second": 100, **crm}
    return parse_policy({**snapshot(policy), "crm": section})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port())
    try:
        yield receiver
    finally:
        await receiver.down()


@pytest.fixture
async def hooked(
    sqlite_url: str, policy: Policy, clock: TravelClock, receiver: Receiver
) -> AsyncIterator[LocalStack]:
    events = ["claimed", "attempt", "dispositioned"]
    local = await start_stack(
        sqlite_url,
        with_webhook(policy, events=events),
        clock=clock,
        HANDOFF_WEBHOOK_URL=receiver.url,
        HANDOFF_WEBHOOK_SECRET=SECRET,
    )
    try:
        yield local
    finally:
        await local.close()


async def work_leads(stack: LocalStack, count: int) -> None:
    """`count` leads posted, each claimed, called and qualified through Slack."""
    for index in range(count):
        status, _ = await stack.post_lead(lead_payload(f"hs-{index}"))
        assert status == 201
    await stack.settle()
    for message in stack.sim.messages(ENTERPRISE)[:count]:
        for label in ("Claim", "Log call", "Qualified"):
            answer = await stack.driver.press(
                "U0REP1", label, channel=ENTERPRISE, message_ts=message.ts
            )
            assert answer.status == 200
            await stack.settle()


async def drain(stack: LocalStack) -> None:
    crm = stack.handoff.crm
    assert crm is not None
    assert await crm.drain(30)


async def health(stack: LocalStack, path: str) -> tuple[int, dict[str, Any]]:
    async with stack.session.get(f"{stack.base_url}/{path}") as response:
        return response.status, await response.json()


async def test_claim_attempt_and_disposition_reach_the_receiver_once_each_in_order(
    hooked: LocalStack, receiver: Receiver
) -> None:
    await receiver.up()
    await work_leads(hooked, 3)
    await drain(hooked)
    assert receiver.forged == 0
    for index in range(3):
        assert receiver.events(f"hs-{index}") == ["claimed", "attempt", "dispositioned"]
    ids = [webhook_id for webhook_id, _ in receiver.received]
    assert len(ids) == 9 and len(set(ids)) == 9
    body = receiver.received[-1][1]
    assert body["type"] == "lead.dispositioned"
    data = body["data"]
    assert (data["stage"], data["owner"], data["segment"]) == ("sql", "U0REP1", "enterprise")
    assert data["data"]["code"] == "qualified" and data["actor"] == "U0REP1"
    status, answer = await health(hooked, "healthz")
    assert status == 200 and answer["crm"] == "ok"
    async with hooked.session.get(f"{hooked.base_url}/metrics") as response:
        scraped = {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(await response.text())
            for sample in family.samples
        }
    assert scraped["handoff_crm_write_seconds_count[('crm', 'webhook')]"] == 9
    assert scraped["handoff_crm_outbox_depth[('kind', 'crm_event')]"] == 0
    assert scraped["handoff_crm_outbox_oldest_pending_seconds[]"] == 0
    assert scraped["handoff_crm_refusing[]"] == 0


async def test_a_claim_tells_the_receiver_whom_it_took_the_lead_from(
    hooked: LocalStack, receiver: Receiver
) -> None:
    """docs/crm.md: a `claimed` event's `data.from` is the rep the lead was suggested to when
    another rep claimed it (their first-touch miss, docs/reports.md "By rep"); none otherwise."""
    await receiver.up()
    for index in range(2):
        status, _ = await hooked.post_lead(lead_payload(f"hs-{index}"))
        assert status == 201
    await hooked.settle()
    taken, kept = await hooked.services.lead(1), await hooked.services.lead(2)
    assert taken.suggested_owner is not None and kept.suggested_owner is not None
    thief = next(rep for rep in ("U0REP1", "U0REP2") if rep != taken.suggested_owner)
    for rep, lead in ((thief, taken), (kept.suggested_owner, kept)):
        await hooked.driver.press(rep, "Claim", channel=ENTERPRISE, message_ts=lead.message_ts)
        await hooked.settle()
    await drain(hooked)
    claims = {b["data"]["external_id"]: b["data"] for _, b in receiver.received}
    assert claims["hs-0"]["actor"] == thief
    assert claims["hs-0"]["data"] == {"from": taken.suggested_owner}
    assert claims["hs-1"]["data"] == {}


async def test_a_rejection_carries_what_marketing_acts_on(
    hooked: LocalStack, receiver: Receiver
) -> None:
    """Marketing automation takes the rejection from the webhook as marketing's channel shows
    it: the code, the reason and the note, and the lead's source and campaign, so the reason
    goes back to the campaign that brought the lead (seed 000: "Marketing learns which lead
    sources actually convert"; seed 002: "Win Rates by Source")."""
    await receiver.up()
    payload = lead_payload("hs-9", source="paid_search", campaign="Q4 <Brand> & *Launch*")
    assert (await hooked.post_lead(payload))[0] == 201
    await hooked.settle()
    await hooked.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await hooked.settle()
    await hooked.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await hooked.settle()
    await hooked.driver.submit_view("U0REP1", {"reason": "No budget", "note": "Frozen to Q3."})
    await hooked.settle()
    await drain(hooked)

    (rejection,) = [b["data"] for _, b in receiver.received if b["type"] == "lead.dispositioned"]
    assert rejection["external_id"] == "hs-9" and rejection["stage"] == "reject"
    told = {key: rejection["data"][key] for key in ("code", "reason", "note")}
    assert told == {"code": "not_a_fit", "reason": "No budget", "note": "Frozen to Q3."}
    assert (rejection["source"], rejection["campaign"]) == ("paid_search", "Q4 <Brand> & *Launch*")


async def test_an_hours_outage_delivers_everything_afterwards_once_in_order(
    hooked: LocalStack, receiver: Receiver, clock: TravelClock
) -> None:
    # The receiver is down (connection refused) while the reps work: Slack is not held up.
    await work_leads(hooked, 3)
    for message in hooked.sim.messages(ENTERPRISE)[:3]:
        assert "Qualified" in message.all_text
    metrics = hooked.handoff.metrics
    assert metrics.counts["crm_retries_total"] >= 1
    # Then it answers 503 for the rest of the hour.
    receiver.status = 503
    await receiver.up()
    for _ in range(6):
        clock.advance(minutes=10)
        hooked.handoff.crm.deliver_soon()  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
    assert receiver.received == []
    status, answer = await health(hooked, "readyz")
    assert status == 503 and answer["checks"]["crm"]["ok"] is False
    # Back: everything arrives, once, in order per lead.
    receiver.status = 200
    clock.advance(minutes=11)
    await drain(hooked)
    for index in range(3):
        assert receiver.events(f"hs-{index}") == ["claimed", "attempt", "dispositioned"]
    ids = [webhook_id for webhook_id, _ in receiver.received]
    assert len(ids) == 9 == len(set(ids))
    assert receiver.forged == 0


async def test_a_refusing_receiver_holds_the_writes_raises_one_alert_and_degrades(
    hooked: LocalStack, receiver: Receiver, clock: TravelClock
) -> None:
    receiver.status = 401
    await receiver.up()
    await work_leads(hooked, 2)
    await asyncio.sleep(0.2)
    await hooked.settle()
    alerts = [m for m in hooked.sim.messages(ESCALATIONS) if "refuses Handoff's writes" in m.text]
    assert len(alerts) == 1
    assert "webhook" in alerts[0].text and "HTTP 401" in alerts[0].text
    assert "HANDOFF_WEBHOOK_URL" in alerts[0].text  # what to do
    status, answer = await health(hooked, "healthz")
    assert status == 200 and answer["crm"].startswith("degraded")
    status, answer = await health(hooked, "readyz")
    assert status == 503 and "refuses" in answer["checks"]["crm"]["detail"]
    pending = await CrmOutboxStore(hooked.handoff.database).pending()
    assert pending == 6  # all waiting

    # Probed again a few minutes later: still refused, still one alert.
    clock.advance(minutes=6)
    hooked.handoff.crm.deliver_soon()  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    await hooked.settle()
    assert len([m for m in hooked.sim.messages(ESCALATIONS) if "refuses" in m.text]) == 1

    # Fixed: everything goes out, in order; no second alert; healthy again.
    receiver.status = 200
    clock.advance(minutes=6)
    await drain(hooked)
    for index in range(2):
        assert receiver.events(f"hs-{index}") == ["claimed", "attempt", "dispositioned"]
    await hooked.settle()
    assert len([m for m in hooked.sim.messages(ESCALATIONS) if "refuses" in m.text]) == 1
    assert (await health(hooked, "healthz"))[1]["crm"] == "ok"
    assert (await health(hooked, "readyz"))[1]["checks"]["crm"]["ok"] is True


async def test_what_a_refusing_receiver_says_cannot_ping_the_escalations_channel(
    hooked: LocalStack, receiver: Receiver
) -> None:
    """The receiver's words go into the managers' alert as its text, not as Slack markup
    (SPEC: outside text can never ping `@channel` or break a message)."""
    receiver.status, receiver.reply = 403, "<!channel> read <https://evil.example|this> & go"
    await receiver.up()
    await work_leads(hooked, 1)
    await asyncio.sleep(0.2)
    await hooked.settle()
    (alert,) = [m for m in hooked.sim.messages(ESCALATIONS) if "refuses Handoff's writes" in m.text]
    assert "<!channel>" not in alert.text and "<https://evil" not in alert.text
    assert "&lt;!channel&gt; read &lt;https://evil.example|this&gt; &amp; go" in alert.text


async def test_without_a_crm_section_no_crm_row_is_written(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    assert await CrmOutboxStore(stack.handoff.database).rows() == []
    assert stack.handoff.crm is None
    status, answer = await health(stack, "healthz")
    assert status == 200 and answer["crm"] == "none"


async def test_intake_stores_the_crm_id_and_the_webhook_carries_it(
    hooked: LocalStack, receiver: Receiver
) -> None:
    await receiver.up()
    status, _ = await hooked.post_lead(lead_payload("hs-1", crm_id="0031x00000ABCDE"))
    assert status == 201
    too_long, answer = await hooked.post_lead(lead_payload("hs-2", crm_id="x" * 65))
    assert too_long == 400 and answer["errors"][0]["field"] == "crm_id"
    await hooked.settle()
    await hooked.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await drain(hooked)
    ((_, body),) = receiver.received
    assert body["data"]["crm_id"] == "0031x00000ABCDE"
    assert json.dumps(body)  # plain JSON


async def test_a_429_pauses_every_write_until_its_retry_after(
    hooked: LocalStack, receiver: Receiver, clock: TravelClock
) -> None:
    limited = {"left": 1}
    verify = receiver.handle

    async def handle(request: web.Request) -> web.Response:
        if limited["left"]:
            limited["left"] -= 1
            return web.Response(status=429, headers={"Retry-After": "120"})
        return await verify(request)

    receiver.handle = handle  # type: ignore[method-assign]
    await receiver.up()
    await work_leads(hooked, 2)
    await asyncio.sleep(0.2)
    assert receiver.received == []  # nothing sent inside the 120 s, for any lead
    clock.advance(seconds=119)
    hooked.handoff.crm.deliver_soon()  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    assert receiver.received == []
    clock.advance(seconds=2)
    await drain(hooked)
    for index in range(2):
        assert receiver.events(f"hs-{index}") == ["claimed", "attempt", "dispositioned"]
    assert hooked.handoff.metrics.counts["crm_rate_limited_total"] == 1


@pytest.mark.parametrize(
    ("wait", "honoured"),
    [
        (timedelta(minutes=5), timedelta(minutes=5)),
        # A date a day away is honoured up to the worker's longest backoff (600 s).
        (timedelta(days=1), timedelta(minutes=10)),
    ],
    ids=["five-minutes", "a-day-bounded"],
)
async def test_a_retry_after_given_as_an_http_date_is_honoured(
    hooked: LocalStack,
    receiver: Receiver,
    clock: TravelClock,
    wait: timedelta,
    honoured: timedelta,
) -> None:
    """RFC 9110 §10.2.3: `Retry-After` is an HTTP-date or a number of seconds. Before, a date
    was ignored and the write was sent again after the normal backoff (2 s), at a receiver
    that had said when it would be back."""
    until = {"date": ""}
    verify = receiver.handle

    async def handle(request: web.Request) -> web.Response:
        if not until["date"]:
            until["date"] = format_datetime(clock() + wait, usegmt=True)
            return web.Response(status=503, headers={"Retry-After": until["date"]})
        return await verify(request)

    receiver.handle = handle  # type: ignore[method-assign]
    await receiver.up()
    await work_leads(hooked, 1)
    crm = hooked.handoff.crm
    assert crm is not None
    await asyncio.sleep(0.2)
    assert until["date"].endswith(" GMT") and receiver.received == []
    clock.advance(seconds=honoured.total_seconds() - 3)  # well past the normal backoff
    crm.deliver_soon()
    await asyncio.sleep(0.2)
    assert receiver.received == []
    clock.advance(seconds=4)
    await drain(hooked)
    assert receiver.events("hs-0") == ["claimed", "attempt", "dispositioned"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(500, "retry"), (503, "retry"), (404, "refused"), (403, "refused")],
)
async def test_the_adapter_sorts_the_receivers_answers(
    receiver: Receiver, status: int, outcome: str
) -> None:
    from datetime import UTC, datetime

    from bot.crm.port import CrmRefused, CrmRetry
    from bot.crm.webhook import WebhookAdapter
    from bot.domain.crm import CrmEvent

    adapter = WebhookAdapter(receiver.url, SECRET)
    paced: list[str] = []

    @contextlib.asynccontextmanager
    async def request() -> AsyncIterator[None]:
        paced.append("request")  # the receiver's limit counts each POST, the failed ones too
        yield

    adapter.pace = SimpleNamespace(request=request)
    event = CrmEvent("k1", 1, "hs-1", "claimed", "U0REP1", datetime(2026, 11, 23, tzinfo=UTC))
    try:
        with pytest.raises(CrmRetry) as down:  # nobody listens: may it have arrived? unknown
            await adapter.event(event)
        assert down.value.unknown
        receiver.status = status
        await receiver.up()
        expected = CrmRetry if outcome == "retry" else CrmRefused
        with pytest.raises(expected) as answer:
            await adapter.event(event)
        assert f"HTTP {status}" in str(answer.value)
        receiver.status = 200
        await adapter.event(event)
        assert receiver.received[0][0] == "k1" and receiver.forged == 0
        assert len(paced) == 3
        # Another secret's signature does not verify at the receiver.
        other = WebhookAdapter(receiver.url, "whsec_" + base64.b64encode(b"x" * 32).decode())
        with pytest.raises(CrmRefused):
            await other.event(event)
        await other.aclose()
        assert receiver.forged == 1
    finally:
        await adapter.aclose()


async def test_owner_emails_come_from_slack_once(stack: LocalStack) -> None:
    from bot.crm.emails import SlackEmails

    stack.sim.add_user("U0MAIL", "mail", "Mail Person", email="Mail.Person@acme.example")
    emails = SlackEmails(stack.handoff.bolt.client)
    assert await emails("U0MAIL") == "mail.person@acme.example"
    calls = len(stack.sim.calls_to("users.info"))
    assert await emails("U0MAIL") == "mail.person@acme.example"
    assert len(stack.sim.calls_to("users.info")) == calls  # cached
    assert await emails("U0NOBODY") is None


async def test_stopping_lets_the_write_under_way_finish_within_the_grace(
    hooked: LocalStack, receiver: Receiver
) -> None:
    verify = receiver.handle

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return await verify(request)

    receiver.handle = slow  # type: ignore[method-assign]
    await receiver.up()
    status, _ = await hooked.post_lead(lead_payload("hs-1"))
    assert status == 201
    await hooked.settle()
    await hooked.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    rows = CrmOutboxStore(hooked.handoff.database)
    for _ in range(200):  # until the write is under way
        if any(row["attempts"] for row in await rows.rows()):
            break
        await asyncio.sleep(0.01)
    crm = hooked.handoff.crm
    assert crm is not None
    await crm.close(grace=5)
    assert [row["state"] for row in await rows.rows()] == ["done"]
    assert receiver.events("hs-1") == ["claimed"]


async def test_doctor_checks_the_webhook_receiver(receiver: Receiver, policy: Policy) -> None:
    from bot.cli.doctor import examine_crm
    from bot.settings import Settings

    hooked = with_webhook(policy)
    env = {"HANDOFF_WEBHOOK_URL": receiver.url, "HANDOFF_WEBHOOK_SECRET": SECRET}
    (down,) = await examine_crm(Settings.from_env(env), hooked)
    assert not down.ok and "could not be reached" in down.line()
    receiver.status = 401
    await receiver.up()
    (refused,) = await examine_crm(Settings.from_env(env), hooked)
    assert not refused.ok and "HTTP 401" in refused.line()
    receiver.status = 200
    (fine,) = await examine_crm(Settings.from_env(env), hooked)
    assert fine.ok and "crm (webhook)" in fine.line()
    (missing,) = await examine_crm(Settings.from_env({"HANDOFF_WEBHOOK_URL": receiver.url}), hooked)
    assert not missing.ok and "HANDOFF_WEBHOOK_SECRET is not set" in missing.line()
    assert await examine_crm(Settings.from_env(env), policy) == []


async def test_a_receiver_that_moved_is_not_taken_for_one_that_took_the_event(
    sqlite_url: str, policy: Policy, clock: TravelClock, receiver: Receiver
) -> None:
    """Standard Webhooks: a 3xx is a failure, the sender updates its URL. Followed, a 301 or
    302 turns the POST into a GET without the event, which the new address may well answer
    200."""
    moved = receiver.url.replace("/hooks/handoff", "/old-hooks")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(receiver.url)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="Handoff's receiver is here")

    app = web.Application()
    app.router.add_post("/hooks/handoff", receiver.handle)
    app.router.add_get("/hooks/handoff", page)
    app.router.add_post("/old-hooks", redirect)
    await receiver.up(app)
    local = await start_stack(
        sqlite_url,
        with_webhook(policy, events=["claimed"]),
        clock=clock,
        HANDOFF_WEBHOOK_URL=moved,
        HANDOFF_WEBHOOK_SECRET=SECRET,
    )
    try:
        status, _ = await local.post_lead(lead_payload("hs-1"))
        assert status == 201
        await local.settle()
        await local.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
        await asyncio.sleep(0.3)
        await local.settle()
        assert [row["state"] for row in await CrmOutboxStore(local.handoff.database).rows()] == [
            "pending"
        ]
        (alert,) = [m for m in local.sim.messages(ESCALATIONS) if "refuses" in m.text]
        assert "HTTP 301" in alert.text and receiver.url in alert.text
        assert (await health(local, "healthz"))[1]["crm"].startswith("degraded")
    finally:
        await local.close()
    assert receiver.received == []


async def test_a_receiver_that_answers_410_gone_is_sent_nothing_more_and_the_events_wait(
    hooked: LocalStack, receiver: Receiver, clock: TravelClock
) -> None:
    """Standard Webhooks: 410 Gone says the receiver wants no more webhooks from this source;
    the sender disables the endpoint and stops sending to it."""
    asked = {"requests": 0}
    verify = receiver.handle

    async def handle(request: web.Request) -> web.Response:
        asked["requests"] += 1
        return await verify(request)

    receiver.handle = handle  # type: ignore[method-assign]
    receiver.status = 410
    await receiver.up()
    await work_leads(hooked, 1)
    await asyncio.sleep(0.2)
    await hooked.settle()
    assert asked["requests"] == 1
    for _ in range(4):  # an hour: nothing more is sent to it
        clock.advance(minutes=15)
        hooked.handoff.crm.deliver_soon()  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
    await hooked.settle()
    assert asked["requests"] == 1
    (alert,) = [m for m in hooked.sim.messages(ESCALATIONS) if "refuses" in m.text]
    assert "HTTP 410" in alert.text and "restart" in alert.text
    assert "tried again every" not in alert.text  # it is not
    assert await CrmOutboxStore(hooked.handoff.database).pending() == 3  # nothing is lost
    assert (await health(hooked, "healthz"))[1]["crm"].startswith("degraded")


async def test_each_events_timestamp_is_when_it_happened_also_when_sent_after_an_outage(
    hooked: LocalStack, receiver: Receiver, clock: TravelClock
) -> None:
    """Standard Webhooks: the payload's `timestamp` is when the event occurred, not when it
    was delivered (the `webhook-timestamp` header is the attempt's)."""
    pressed = clock()
    await work_leads(hooked, 1)  # the receiver is down
    clock.advance(hours=1)
    await receiver.up()
    await drain(hooked)
    assert [body["type"] for _, body in receiver.received] == [
        "lead.claimed",
        "lead.attempt",
        "lead.dispositioned",
    ]
    for _, body in receiver.received:
        happened = datetime.fromisoformat(body["timestamp"])
        assert happened == datetime.fromisoformat(body["data"]["at"])
        assert pressed <= happened < pressed + timedelta(hours=1)

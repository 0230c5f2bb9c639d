"""The whole loop through the real server, as people would see it: once with signed HTTP
requests and once over Socket Mode (a real AsyncSocketModeHandler on the simulator's socket)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.cli.stack import SIGNING_SECRET, LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from bot.simulator.data import Message
from bot.simulator.driver import SlackDriver
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
FEEDBACK = "C0MKTFEED"


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
async def every_envelope_acknowledged(stack: LocalStack) -> AsyncIterator[None]:
    """In Socket Mode, the simulator saw an acknowledgement for every envelope it sent."""
    yield
    assert stack.sim.socket_mode.missing_acks == []
    assert stack.sim.socket_mode.strays == []


async def posted(
    stack: LocalStack, payload: dict | None = None, channel: str = ENTERPRISE
) -> Message:
    status, answer = await stack.post_lead(payload or lead_payload())
    assert status == 201, answer
    await stack.settle()
    messages = stack.sim.messages(channel)
    assert messages, f"nothing was posted to {channel}"
    return messages[-1]


def labels(message: Message) -> list[str]:
    return [button["text"]["text"] for _, button in message.buttons()]


async def claimed(stack: LocalStack, rep: str = "U0REP1") -> Message:
    message = await posted(stack)
    response = await stack.driver.press(rep, "Claim", channel=ENTERPRISE)
    assert response.status == 200
    await stack.settle()
    current = stack.sim.message(ENTERPRISE, message.ts)
    assert current is not None
    return current


async def test_a_new_mql_is_posted_with_its_intelligence_package(stack: LocalStack) -> None:
    message = await posted(stack)
    text = message.all_text
    for expected in (
        "Priya Raman",
        "VP Revenue Operations",
        "Northwind Logistics",
        "2,400 employees",
        "webinar",
        "Q4 Pipeline Webinar",
        "88",
        "Fixing lead leakage",
        "Talk track",
        "Reference the webinar",
        "First touch due by",
        "Mon 23 Nov 13:00 AEDT",  # 11:00 + 2 working hours
        "<@U0REP1>",  # suggested owner by round robin
    ):
        assert expected in text, expected
    assert labels(message) == ["Claim"]
    assert message.metadata == {
        "event_type": "handoff_lead",
        "event_payload": {"key": "lead:1", "outbox_id": 1, "lead_id": 1, "external_id": "hs-1"},
    }
    assert stack.sim.invalid_payloads == []


async def test_the_same_lead_twice_is_stored_and_posted_once(stack: LocalStack) -> None:
    answers = await asyncio.gather(*(stack.post_lead(lead_payload()) for _ in range(10)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 9 + [201]
    assert {answer["id"] for _, answer in answers} == {1}
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == 1


async def test_simultaneous_claims_have_one_winner_and_everyone_else_hears_who(
    stack: LocalStack,
) -> None:
    message = await posted(stack)
    presses = ["U0REP1", "U0REP2", "U0MGR1", "U0MGR2"] * 3
    responses = await asyncio.gather(
        *(
            stack.driver.press(user, "Claim", channel=ENTERPRISE, message_ts=message.ts)
            for user in presses
        )
    )
    assert all(response.status == 200 for response in responses)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.owner in presses
    final = stack.sim.message(ENTERPRISE, message.ts)
    assert final is not None
    assert f"Claimed by <@{lead.owner}>" in final.all_text
    assert "Claim" not in labels(final)
    assert labels(final)[:3] == ["Log email", "Log call", "Log LinkedIn"]
    notes = stack.sim.ephemerals()
    losers = [user for user in presses if user != lead.owner]
    assert sorted(note.user for note in notes) == sorted(losers)  # the winner hears nothing
    for note in notes:
        assert f"already claimed by <@{lead.owner}>" in note.text
    events = [e.type for e in await stack.services.store.events(1)]
    assert events.count("claimed") == 1


async def test_a_burst_of_claims_on_many_leads_claims_and_updates_every_one(
    stack: LocalStack,
) -> None:
    for index in range(24):
        status, _ = await stack.post_lead(lead_payload(f"hs-burst-{index}"))
        assert status == 201
    await stack.settle()
    messages = stack.sim.messages(ENTERPRISE)
    assert len(messages) == 24
    reps = ["U0REP1", "U0REP2", "U0MGR1"]
    claimers = {message.ts: reps[index % 3] for index, message in enumerate(messages)}

    responses = await asyncio.gather(  # together: they commit in shared transactions
        *(
            stack.driver.press(user, "Claim", channel=ENTERPRISE, message_ts=ts)
            for ts, user in claimers.items()
        )
    )

    assert [response.status for response in responses] == [200] * 24
    await stack.settle()
    assert stack.sim.ephemerals() == []  # nobody was refused or told "too late"
    for ts, user in claimers.items():
        final = stack.sim.message(ENTERPRISE, ts)
        assert final is not None and f"Claimed by <@{user}>" in final.all_text
        assert "Claim" not in labels(final)
    for lead_id in range(1, 25):
        lead = await stack.services.lead(lead_id)
        assert lead.owner in reps
        assert [e.type for e in await stack.services.store.events(lead_id)].count("claimed") == 1
    assert stack.sim.invalid_payloads == []


async def test_a_rep_outside_the_pool_is_refused_politely(stack: LocalStack) -> None:
    message = await posted(stack)
    await stack.driver.press("U0REP5", "Claim", channel=ENTERPRISE)
    await stack.settle()
    (note,) = stack.sim.ephemerals(user="U0REP5")
    assert note.text.startswith("Sorry, only the enterprise reps and the sales managers")
    assert labels(stack.sim.message(ENTERPRISE, message.ts) or message) == ["Claim"]
    assert (await stack.services.lead(1)).owner is None


async def test_attempts_count_against_the_standard_and_stop_the_clock(
    stack: LocalStack, clock: TravelClock
) -> None:
    message = await claimed(stack)
    clock.advance(minutes=30)
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    clock.advance(minutes=30)
    await stack.driver.press("U0REP1", "Log email", channel=ENTERPRISE)
    await stack.driver.press("U0REP2", "Log email", channel=ENTERPRISE)  # not the owner
    await stack.settle()
    text = (stack.sim.message(ENTERPRISE, message.ts) or message).all_text
    assert "Attempts 2/6" in text  # every attempt counts, the email 30 minutes on too
    assert "first touch after 30m of business time ✅" in text
    (refusal,) = stack.sim.ephemerals(user="U0REP2")
    assert "Only <@U0REP1>, who owns this lead, or a manager" in refusal.text
    lead = await stack.services.lead(1)
    assert lead.attempts == 2


async def test_a_rejection_needs_a_reason_and_reaches_marketing_once(stack: LocalStack) -> None:
    message = await claimed(stack)
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    assert view is not None and view.callback_id == "lead_dispose_modal"
    empty = await stack.driver.submit_view(
        "U0REP1", {"note": "   "}, view_id=view.id, allow_empty_required=True
    )
    assert empty.json == {
        "response_action": "errors",
        "errors": {
            "reason": "Pick the reason marketing should hear.",
            "note": "Add a short note for marketing: what did you learn?",
        },
    }
    assert (await stack.services.lead(1)).stage.value == "sal"
    with pytest.raises(ValueError, match="over its 2000 characters"):  # Slack's client stops it
        await stack.driver.submit_view("U0REP1", {"reason": "No budget", "note": "x" * 2001})
    made_by_hand = await stack.driver.submit_view(
        "U0REP1", {"reason": "No budget", "note": "x" * 100_000}, view_id=view.id, by_hand=True
    )
    assert made_by_hand.json == {
        "response_action": "errors",
        "errors": {"note": "Keep the note to 2,000 characters (it has 100,000)."},
    }
    assert (await stack.services.lead(1)).stage.value == "sal"
    values = {"reason": "No budget", "note": "Budget frozen until July & <b>re-org</b>"}
    first, second = await asyncio.gather(
        stack.driver.submit_view("U0REP1", values, view_id=view.id),
        stack.driver.submit_view("U0REP1", values, view_id=view.id),
    )
    assert first.status == second.status == 200
    await stack.settle()
    final = stack.sim.message(ENTERPRISE, message.ts)
    assert final is not None and labels(final) == []
    assert "Not a fit* → Rejected by <@U0REP1> on <!date^" in final.all_text
    assert "; owner" not in final.all_text  # the owner did it: named once
    (feedback,) = stack.sim.messages(FEEDBACK)
    text = feedback.all_text
    for expected in (
        "Not a fit",
        "webinar",
        "Q4 Pipeline Webinar",
        "not_a_fit",
        "No budget",
        "<@U0REP1>",
        "Budget frozen until July &amp; &lt;b&gt;re-org&lt;/b&gt;",
        "external id hs-1",  # the id marketing's systems know it by, not the database's
    ):
        assert expected in text, expected
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.disposition_reason) == ("reject", "No budget")
    # The same modal sent again with another answer (a second tab) is told it changed nothing.
    other = {"reason": "Not ICP", "note": "Too small"}
    late = await stack.driver.submit_view("U0REP1", other, view_id=view.id, by_hand=True)
    assert late.json is not None, late
    assert "already closed as Not a fit (No budget); nothing was changed" in str(late.json)
    assert (await stack.services.lead(1)).disposition_reason == "No budget"


async def test_a_form_opened_too_late_tells_the_rep_to_press_again(stack: LocalStack) -> None:
    """Slack takes a press's trigger_id once and for 3 seconds: when Handoff's database made it
    late (the simulator's trigger expires at once here), the rep is told privately to press
    again, instead of a button that seems to do nothing."""
    message = await claimed(stack)
    stack.sim.trigger_ttl = 0.0
    response = await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    assert response.status == 200
    await stack.settle()
    assert stack.sim.latest_view("U0REP1") is None
    (note,) = stack.sim.ephemerals(user="U0REP1")
    assert note.text == (
        "Slack closed the form before Handoff could open it (it took too long); nothing was "
        "changed. Press the button again."
    )
    assert labels(stack.sim.message(ENTERPRISE, message.ts) or message) == labels(message)


async def test_qualified_closes_the_lead_without_feedback(
    stack: LocalStack, clock: TravelClock
) -> None:
    message = await claimed(stack)
    await stack.driver.press("U0REP1", "Qualified", channel=ENTERPRISE)
    await stack.settle()
    final = stack.sim.message(ENTERPRISE, message.ts)
    assert final is not None and labels(final) == []
    # Not "Qualified → Qualified"; the owner did it, named once.
    assert "✅ *Qualified (SQL)* by <@U0REP1> on <!date^" in final.all_text
    assert "; owner" not in final.all_text
    assert stack.sim.messages(FEEDBACK) == []
    again = await stack.services.dispose(1, "U0REP1", "qualified", clock())
    assert again.repeated and again.message == ""  # a double click changes nothing


async def test_unable_to_contact_waits_for_the_minimum_attempts(stack: LocalStack) -> None:
    message = await claimed(stack)
    await stack.driver.press("U0REP1", "Unable to contact", channel=ENTERPRISE)
    await stack.settle()
    (refusal,) = stack.sim.ephemerals(user="U0REP1")
    assert "needs 6 contact attempts first (0 of 6 so far)" in refusal.text
    assert "Unable to contact" in labels(stack.sim.message(ENTERPRISE, message.ts) or message)


async def test_a_press_for_a_lead_that_does_not_exist_changes_nothing(stack: LocalStack) -> None:
    await posted(stack)
    response = await stack.driver.press(
        "U0REP1", "Claim", channel=ENTERPRISE, override_value="987654"
    )
    assert response.status == 200
    await stack.settle()
    (note,) = stack.sim.ephemerals(user="U0REP1")
    assert note.text == "Lead 987654 no longer exists in Handoff; nothing was changed."
    forged = await stack.driver.press(
        "U0REP1", "Claim", channel=ENTERPRISE, override_value="x; drop"
    )
    assert forged.status == 200
    await stack.settle()
    assert "does not carry a lead" in stack.sim.ephemerals(user="U0REP1")[-1].text
    assert (await stack.services.lead(1)).owner is None


async def test_bad_and_stale_signatures_are_refused(stack: LocalStack) -> None:
    await posted(stack)
    url = f"{stack.base_url}/slack/events"
    http = SlackDriver(url, SIGNING_SECRET, stack.sim)
    forged = await http.press("U0REP1", "Claim", channel=ENTERPRISE, bad_signature=True)
    stale = await http.press(
        "U0REP1", "Claim", channel=ENTERPRISE, timestamp=int(time.time()) - 6 * 60
    )
    assert (forged.status, stale.status) == (401, 401)
    if stack.driver.mode == "socket":  # no signing secret: /slack/events takes nothing at all
        signed = await http.press("U0REP1", "Claim", channel=ENTERPRISE)
        unkeyed = await SlackDriver(url, "", stack.sim).press("U0REP1", "Claim", channel=ENTERPRISE)
        assert (signed.status, unkeyed.status) == (401, 401)
    await http.close()
    assert (await stack.services.lead(1)).owner is None


NO_ZONE = (
    "must say its time zone, like 2026-11-20T09:30:00Z or 2026-11-20T09:30:00+11:00 "
    "(without one it could be UTC or the sender's own time)"
)


async def test_intake_refuses_bad_requests_and_stores_nothing(stack: LocalStack) -> None:
    assert (await stack.post_lead(lead_payload(), token=None))[0] == 401
    assert (await stack.post_lead(lead_payload(), token="wrong"))[0] == 401
    status, answer = await stack.post_lead(None, raw=b"{not json")
    assert status == 400 and answer["errors"][0]["field"] == "(body)"
    status, answer = await stack.post_lead({"external_id": "x", "score": "hot", "company": []})
    assert status == 400
    assert {(e["field"], e["message"]) for e in answer["errors"]} == {
        ("email", "is required"),
        ("score", "must be a whole number"),
        ("company", "must be an object"),
    }
    status, answer = await stack.post_lead(None, raw=b'{"pad": "' + b"x" * (1024 * 1024) + b'"}')
    assert status == 413 and "1048576" in answer["error"]
    status, answer = await stack.post_lead([1, 2])
    assert status == 400 and answer["errors"] == [
        {"field": "(body)", "message": "must be a JSON object"}
    ]
    for change, field, message in (
        ({"received_at": "2099-06-01T00:00:00Z"}, "received_at", "must not be in the future"),
        ({"score": True}, "score", "must not be true or false"),  # was stored as a score of 1
        ({"name": "\ud800x"}, "name", "must be text (it holds a lone surrogate, such as \\ud800)"),
        # A CRM's local time with no zone: read as UTC it started the clock hours off (or, a
        # Sydney one of minutes ago, was refused as "in the future").
        ({"received_at": "2026-11-20T09:30:00"}, "received_at", NO_ZONE),
        ({"engagement": [{"type": "demo", "at": "2026-11-20 09:30"}]}, "engagement[0].at", NO_ZONE),
    ):
        status, answer = await stack.post_lead(lead_payload(**change))
        assert (status, answer["errors"]) == (400, [{"field": field, "message": message}])
    assert await stack.services.store.count_leads() == 0
    assert stack.sim.calls_to("chat.postMessage") == []


async def test_a_lead_below_the_mql_bar_goes_back_to_marketing_with_why(stack: LocalStack) -> None:
    status, answer = await stack.post_lead(lead_payload(score=30))
    assert (status, answer["status"]) == (201, "nurture")
    await stack.settle()
    assert stack.sim.messages(ENTERPRISE) == []
    (notice,) = stack.sim.messages(FEEDBACK)
    assert "score 30 is below the MQL threshold 60" in notice.all_text


async def test_hostile_lead_text_cannot_ping_or_link(stack: LocalStack) -> None:
    hostile = lead_payload(
        name="<!channel> Eve",
        title="<@U0REP2> & <#C0ENT|sales>",
        company={"name": "<https://evil.example|Your bank> <!here>", "employees": 5000},
        campaign="\u202eevil\u202c " + "x" * 490,
        engagement=[{"type": "webinar", "title": "<!everyone> " + "y" * 1980}],
    )
    message = await posted(stack, hostile)
    text = message.all_text
    assert "<!channel>" not in text and "<!here>" not in text
    assert (
        "<!everyone>" not in text
        and "<@U0REP2>" not in text
        and "<#C0ENT" not in text
        and "<https://evil" not in text
    )
    assert "&lt;!channel&gt; Eve" in text and "&amp;" in text
    assert "\u202e" not in text
    assert stack.sim.invalid_payloads == []


async def test_a_campaign_with_underscores_inside_its_words_reads_as_written(
    stack: LocalStack,
) -> None:
    """Slack's formatting guide has lead text escape `&`, `<` and `>` only, and gives mrkdwn
    no escape for `_`, `*`, `~` or a backtick (docs.slack.dev/messaging/formatting-message-
    text), so a campaign is sent as written. An underscore inside a word opens no italics
    (Slack's clients leave `snake_case` plain; the guide states no rule; the simulator's
    mrkdwn model keeps markers to word edges): `Q4_promo_2026` reads as written."""
    message = await posted(stack, lead_payload(campaign="Q4_promo_2026"))
    assert "*Campaign*\nQ4_promo_2026" in message.all_text
    assert "Campaign: Q4_promo_2026" in message.render().splitlines()


async def test_slash_commands_answer_privately(stack: LocalStack) -> None:
    await claimed(stack)
    card = await stack.driver.command("U0REP2", "/lead", "hs-1@northwind.example")
    assert card.json is not None and card.json["response_type"] == "ephemeral"
    text = json.dumps(card.json["blocks"])
    for expected in ("Timeline", "received", "posted to Slack", "claimed", "Priya Raman"):
        assert expected in text
    unknown = await stack.driver.command("U0REP2", "/lead", "nobody@example.com")
    assert unknown.json == {
        "text": "No lead you may see has the email or external id 'nobody@example.com'. A "
        "lead's details are shown to the lead's segment reps, its owner, the sales managers, "
        "the SLA's reporters and its viewers.",
        "response_type": "ephemeral",
    }
    usage = await stack.driver.command("U0REP2", "/lead", "")
    assert usage.json is not None  # escaped: `<email or external id>` would be a broken link
    usage_text = "Usage: /lead &lt;email or external id&gt;, e.g. /lead jane@acme.com"
    assert usage.json["text"] == usage_text
    sla = await stack.driver.command("U0REP2", "/sla")
    assert sla.json is not None and "Speed to lead" in json.dumps(sla.json["blocks"])
    away = await stack.driver.command("U0MGR1", "/handoff", "away 3d")
    assert away.json is not None and away.json["text"].startswith("You're away until")
    help_text = await stack.driver.command("U0REP1", "/handoff", "help")
    assert help_text.json is not None
    assert "/lead &lt;email or external id&gt;" in help_text.json["text"]  # no link syntax


async def test_lead_finds_the_email_or_id_as_slack_sends_it(stack: LocalStack) -> None:
    """Slack escapes `&`, `<` and `>` in a command's text, and sends an email as a mailto link
    when the command escapes links (`should_escape`): `/lead` looks up what was typed."""
    await posted(stack, lead_payload("R&D-7", email="r&d@northwind.example"))
    for typed in (
        "r&d@northwind.example",
        "R&D-7",
        "<mailto:r&d@northwind.example|r&d@northwind.example>",
    ):
        card = await stack.driver.command("U0MGR1", "/lead", typed)
        assert card.json is not None and "blocks" in card.json, (typed, card.json)
        assert "Priya Raman" in json.dumps(card.json["blocks"]), typed
    unknown = await stack.driver.command("U0MGR1", "/lead", "<b>&co")
    assert unknown.json is not None
    assert "or external id '&lt;b&gt;&amp;co'." in unknown.json["text"]  # shows as typed


async def test_app_home_lists_the_reps_open_leads(stack: LocalStack) -> None:
    await claimed(stack)
    response = await stack.driver.app_home_opened("U0REP1")
    assert response.status == 200
    await stack.sim.wait_for(lambda: stack.sim.home("U0REP1"), what="App Home")
    home = json.dumps(stack.sim.home("U0REP1"))
    assert "Your open leads" in home and "Priya Raman" in home and "Attempts 0/6" in home


async def test_health_and_metrics(
    stack: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/metrics` as Prometheus reads it, parsed with prometheus-client's own parser: the
    counters, the latency histograms (ack per kind of Slack request, intake, first touch in
    working minutes, outbox delivery lag per kind) and the outbox gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    await claimed(stack)
    clock.advance(minutes=30)
    logging_attempt = stack.services.log_attempt

    async def slowly(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.25)  # a listener Slack waits for: the ack histogram must see it
        return await logging_attempt(*args, **kwargs)

    monkeypatch.setattr(stack.services, "log_attempt", slowly)
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.settle()
    async with stack.session.get(f"{stack.base_url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["database"] == "ok"
    async with stack.session.get(f"{stack.base_url}/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("handoff_leads_received_total") == 1
    assert value("handoff_claims_total") == 1
    assert value("handoff_attempts_total") == 1
    assert value("handoff_slack_ack_seconds_count", kind="block_actions") == 2  # claim, call
    # Timed around the listener, not around Bolt's middleware chain (which returns before the
    # listener runs: the histogram read about 60 µs whatever the listener took).
    assert value("handoff_slack_ack_seconds_sum", kind="block_actions") >= 0.25
    assert value("handoff_intake_seconds_count", route="leads") == 1
    assert value("handoff_first_touch_business_seconds_count") == 1
    assert value("handoff_first_touch_business_seconds_sum") == 1800  # Monday 11:00 → 11:30
    assert value("handoff_outbox_delivery_lag_seconds_count", kind="post_lead") == 1
    assert value("handoff_outbox_depth", kind="post_lead") == 0  # all delivered
    assert value("handoff_outbox_oldest_pending_seconds") == 0
    assert value("handoff_slack_outbox_pending") == 0
    # The process's own figures (a restart shows in its start time), and no `_created` series.
    assert value("process_start_time_seconds") > 0 and value("process_resident_memory_bytes") > 0
    assert not [name for name, _ in samples if name.endswith("_created")]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_claim_race_on_postgresql(backend: str, policy: Policy, clock: TravelClock) -> None:
    from tests.conftest import postgres_database

    url, drop = await postgres_database()
    local = await start_stack(url, policy, clock=clock)
    try:
        message = await posted(local)
        users = ["U0REP1", "U0REP2", "U0MGR1", "U0MGR2"] * 5
        await asyncio.gather(
            *(
                local.driver.press(u, "Claim", channel=ENTERPRISE, message_ts=message.ts)
                for u in users
            )
        )
        await local.settle()
        events = [e.type for e in await local.services.store.events(1)]
        assert events.count("claimed") == 1
        owner = (await local.services.lead(1)).owner
        assert len(local.sim.ephemerals()) == len([u for u in users if u != owner])
    finally:
        await local.close()
        await drop()


async def test_slack_is_asked_who_the_bot_is_at_start_not_in_the_first_ack(
    stack: LocalStack,
) -> None:
    """Bolt asks auth.test once, lazily: the first press after a start waited for it inside
    its ack (seconds, with Slack slow). The server asks at start; the press asks nothing."""
    await stack.sim.wait_for(lambda: stack.sim.calls_to("auth.test"), what="auth.test")
    asked = len(stack.sim.calls_to("auth.test"))
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert len(stack.sim.calls_to("auth.test")) == asked == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"error": "internal_error"},  # Slack's own refusal, HTTP 200 ok:false
        {"status": 502, "text": "Bad Gateway"},  # a proxy's page in front of Slack
    ],
)
async def test_a_form_slack_would_not_open_tells_the_rep_in_plain_words(
    stack: LocalStack, fault: dict[str, Any]
) -> None:
    """A press whose modal views.open refused for any other reason than a late trigger
    (Slack's `internal_error`, a proxy's page) must not look like a button that does nothing:
    the rep hears privately that nothing was changed and to press again."""
    message = await claimed(stack)
    stack.sim.inject("views.open", times=1, **fault)
    response = await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    assert response.status == 200
    await stack.settle()
    await stack.handoff.publisher.drain(5)
    assert stack.sim.latest_view("U0REP1") is None
    (note,) = stack.sim.ephemerals(user="U0REP1")
    assert "nothing was changed" in note.text and "Traceback" not in note.text
    assert "again" in note.text
    assert labels(stack.sim.message(ENTERPRISE, message.ts) or message) == labels(message)


SORRY = (
    "Something went wrong on our side, so this may not have gone through. Check before you try "
    "again."
)


async def test_a_failure_on_our_side_is_answered_in_plain_words_not_slacks_error(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack shows its own error to a person whose press, command or form got no 200 in time
    ("This slash command experienced a problem", a warning on the button, "We had some
    trouble connecting" on the modal); Slack sends these once, never again. A failure on
    Handoff's side (the database went away) is answered 200 with one plain sentence where the
    person is: privately for a press, as the command's answer, on the modal's first input
    (the modal stays open: nothing was saved). The log keeps the traceback."""
    message = await claimed(stack)

    async def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(stack.services, "log_attempt", fails)
    pressed = await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.settle()
    assert pressed.status == 200
    assert [e.text for e in stack.sim.ephemerals(user="U0REP1")] == [SORRY]

    monkeypatch.setattr(stack.services, "find", fails)
    asked = await stack.driver.command("U0REP1", "/lead", "hs-1", channel_id=ENTERPRISE)
    await stack.settle()
    assert asked.status == 200
    assert isinstance(asked.json, dict) and asked.json.get("text") == SORRY
    assert len(stack.sim.ephemerals(user="U0REP1")) == 1  # not told twice

    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    assert view is not None
    monkeypatch.setattr(stack.services, "dispose", fails)
    values = {"reason": "No budget", "note": "Budget frozen"}
    submitted = await stack.driver.submit_view("U0REP1", values, view_id=view.id)
    assert submitted.status == 200
    assert submitted.json == {"response_action": "errors", "errors": {"reason": SORRY}}
    assert not view.closed
    assert (await stack.services.lead(1)).stage.value == "sal"
    assert "Traceback" not in str(stack.sim.ephemerals()) and message.ts
    assert any(record.exc_info for record in caplog.records)  # the operator still sees it


async def test_a_failure_after_the_disposition_was_saved_does_not_say_nothing_changed(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection may drop after the database took the disposition (its commit's answer,
    or the lead read back after it): the rep must not read "nothing was changed" on a modal
    over a lead that is closed; they are told it may not have gone through, to check first."""
    await claimed(stack)
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    assert view is not None
    store = stack.services.store
    saved = store.dispose

    async def saved_then_lost(*args: Any, **kwargs: Any) -> Any:
        await saved(*args, **kwargs)
        raise RuntimeError("connection lost")

    monkeypatch.setattr(store, "dispose", saved_then_lost)
    values = {"reason": "No budget", "note": "Budget frozen"}
    submitted = await stack.driver.submit_view("U0REP1", values, view_id=view.id)
    monkeypatch.undo()
    assert submitted.status == 200
    assert (await stack.services.lead(1)).stage.value == "reject"
    assert isinstance(submitted.json, dict)
    (said,) = submitted.json["errors"].values()
    assert "nothing was changed" not in said
    assert "Check" in said


@pytest.mark.parametrize("lost", ["drop", "page"])
async def test_a_form_whose_answer_was_lost_is_not_said_to_be_unopened(
    stack: LocalStack, lost: str
) -> None:
    """views.open may open the modal and its answer be lost (the connection dropped, a proxy's
    page in place of Slack's answer: Slack said neither yes nor no, bot/slack/publisher.py
    NoSlackAnswer); the client's retry of a dropped call then hears `exchanged_trigger_id`
    ("already exchanged in a previous call": that call opened it). The rep, looking at the
    open form, must not read that Slack did not open it or closed it: Handoff says it could
    not tell, and to press again if the form is not there."""
    await claimed(stack)
    if lost == "drop":
        stack.sim.inject_connection_drop("views.open", times=1, after=True)
    else:
        stack.sim.inject("views.open", times=1, status=502, text="Bad Gateway", after=True)
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    await stack.handoff.publisher.drain(5)
    assert stack.sim.latest_view("U0REP1") is not None  # Slack did open it
    (note,) = stack.sim.ephemerals(user="U0REP1")
    assert "did not open" not in note.text and "closed the form" not in note.text
    assert "again" in note.text


async def test_an_event_that_fails_on_our_side_is_not_acknowledged_so_slack_sends_it_again(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Unlike a press, a command or a form, an event is sent again by Slack when it is not
    answered 200 in time (docs.slack.dev/apis/events-api, "Retries"): one that fails on
    Handoff's side must not get the plain-words 200 (`sorry`), or Slack would never retry it."""

    async def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    from bot.services.home import Homes

    monkeypatch.setattr(Homes, "opened", fails)
    stack.driver.ack_timeout = 1.0  # Socket Mode: no acknowledgement at all
    response = await stack.driver.app_home_opened("U0REP1")
    assert response.status == (500 if transport == "http" else 504)
    monkeypatch.undo()
    again = await stack.driver.resend(1)
    assert again.status == 200  # the retry runs, and is answered
    if transport == "socket":  # the one envelope left unacknowledged on purpose
        (unanswered,) = stack.sim.socket_mode.missing_acks
        stack.sim.socket_mode.envelopes.remove(unanswered)

"""`handoff forget` (issue 15): a person's data leaves the database and every Slack message
Handoff sent about them, an erasure is recorded without personal data, and the week's report
does not change."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from typing import Any

from sqlalchemy import inspect, text

from bot.cli.stack import INTAKE_TOKEN, SIGNING_SECRET, LocalStack, TravelClock
from bot.domain.report import week_of
from bot.services.erasure import forget
from tests.conftest import lead_payload
from tests.e2e.test_cli import HANDOFF, clean_env
from tests.e2e.test_crm_activity import activity

ENTERPRISE, FEEDBACK = "C0ENT", "C0MKTFEED"
LEAD = lead_payload(email="priya.raman@northwind.example")
NOTE = "Priya said budget is frozen until July"
TRACES = (
    "priya",
    "Priya Raman",
    "+61 2 5550 1234",
    "Northwind Logistics",
    "northwind.example",
    "Fixing lead leakage",
    "example.com/pricing",
    "VP Revenue Operations",
    "budget is frozen",
    "hs-1",
)


async def database_text(stack: LocalStack) -> str:
    """Every row of every table, as text (what a database dump would show)."""

    def dump(db: Any) -> str:
        found = []
        for name in inspect(db).get_table_names():
            for row in db.execute(text(f'SELECT * FROM "{name}"')).all():
                found.append(f"{name}: {json.dumps([str(v) for v in row])}")
        return "\n".join(found)

    return str(await stack.handoff.database.run(dump))


def slack_text(stack: LocalStack) -> str:
    """Every message the simulated Slack holds, in every channel and DM: text, blocks and
    metadata as they are now."""
    sim = stack.sim
    return "\n".join(
        json.dumps([m.text, m.blocks, m.metadata], default=str)
        for channel in sim.all_channels()
        for m in sim.all_messages(channel)
    )


def traces(found: str) -> list[str]:
    lowered = found.lower()
    return [trace for trace in TRACES if trace.lower() in lowered]


async def worked(stack: LocalStack, clock: TravelClock) -> None:
    """The lead's life: posted, reminded in its thread, claimed, called, and rejected with a
    note (told to marketing)."""
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    clock.advance(minutes=31)
    await stack.handoff.sweeper.run(clock())  # nobody claimed it yet: a reminder in its thread
    await stack.settle()
    claim = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    assert claim.status == 200, claim
    await stack.settle()
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    assert view is not None
    values = {"reason": "No budget", "note": NOTE}
    await stack.driver.submit_view("U0REP1", values, view_id=view.id)
    await stack.settle()


async def forget_cli(stack: LocalStack, who: str, *options: str, **more: str) -> tuple[int, str]:
    """`handoff forget` as an operator runs it, beside the running server (with the same
    erasure key, from clean_env, unless `more` says otherwise), with `options`."""
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-forget",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=stack.sim.api_url,
        HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
        DATABASE_URL=stack.handoff.settings.database_url,
        HANDOFF_SLA_FILE=stack.handoff.settings.sla_file,
        **more,
    )
    process = await asyncio.create_subprocess_exec(
        *HANDOFF,
        "forget",
        who,
        *options,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return int(process.returncode or 0), out.decode()


async def claimed(stack: LocalStack) -> None:
    """The lead posted and claimed by its rep."""
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    assert (await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)).status == 200
    await stack.settle()


async def forgotten(stack: LocalStack) -> None:
    """`handoff forget` the person by email, successfully, and its Slack changes delivered."""
    status, output = await forget_cli(stack, LEAD["email"])
    assert status == 0, output
    await stack.settle()


async def test_forget_leaves_nothing_of_the_person_and_the_report_unchanged(
    stack: LocalStack, clock: TravelClock
) -> None:
    await worked(stack, clock)
    assert traces(await database_text(stack)) and traces(slack_text(stack))  # they were there
    feedback_before = stack.sim.messages(FEEDBACK)
    assert feedback_before and NOTE in feedback_before[0].all_text
    week = week_of(clock().date(), "Australia/Sydney")
    before = await stack.handoff.reports.report(week, clock())

    status, output = await forget_cli(stack, "Priya.Raman@northwind.example")
    assert status == 0, output
    assert "lead 1: personal data erased" in output
    await stack.settle()

    assert traces(await database_text(stack)) == []
    assert traces(slack_text(stack)) == []
    post = stack.sim.messages(ENTERPRISE)[0]
    assert "erased at the person's request" in post.all_text and post.buttons() == []
    assert "erased at their request" in stack.sim.messages(FEEDBACK)[0].all_text
    events = [(e.type, e.data) for e in await stack.services.store.events(1)]
    assert ("erased", {"messages": events[-1][1]["messages"]}) == events[-1]
    assert events[-1][1]["messages"] >= 2  # the feedback to marketing, the thread reminder

    after = await stack.handoff.reports.report(week, clock())
    assert after.headline == before.headline
    assert (after.dispositions, after.reasons) == (before.dispositions, before.reasons)
    assert [s.kpis for s in after.by_source] == [s.kpis for s in before.by_source]


async def test_forget_names_what_it_cannot_find_and_changes_nothing(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    status, output = await forget_cli(stack, "nobody@nowhere.example")
    assert status == 1
    assert "No lead has the email or external id 'nobody@nowhere.example'" in output
    assert (await stack.services.lead(1)).email == LEAD["email"]


async def test_a_post_whose_answer_is_on_its_way_when_the_person_is_forgotten_is_emptied(
    stack: LocalStack, clock: TravelClock
) -> None:
    stack.sim.answer_delay = 1.0  # Slack posts the lead at once and answers a second later
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.sim.wait_for(lambda: stack.sim.messages(ENTERPRISE), what="the lead's post")
    assert traces(slack_text(stack))  # in the channel, its ts not yet known to Handoff
    await forget(stack.services.store, stack.handoff.outbox, LEAD["email"], "test", clock())
    stack.sim.answer_delay = 0.0
    await asyncio.sleep(1.2)  # the post's answer arrives after the erasure
    await stack.settle()

    assert traces(slack_text(stack)) == []
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "erased at the person's request" in post.all_text and post.buttons() == []


async def test_a_post_whose_answer_was_lost_when_the_person_is_forgotten_is_found_and_emptied(
    stack: LocalStack, clock: TravelClock
) -> None:
    stack.sim.inject_connection_drop("chat.postMessage", times=1, after=True)  # posted, no answer
    stack.sim.inject("conversations.history", status=500, seconds=1.5)  # not reconciled yet
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.sim.wait_for(lambda: stack.sim.calls_to("chat.postMessage"), what="the post")
    await asyncio.sleep(0.05)
    assert traces(slack_text(stack))
    await forget(stack.services.store, stack.handoff.outbox, LEAD["email"], "test", clock())
    await asyncio.sleep(1.6)
    await stack.settle()

    assert traces(slack_text(stack)) == []
    (post,) = stack.sim.messages(ENTERPRISE)
    assert post.all_text.startswith("🗑️") and post.metadata in (None, {})


async def test_the_post_of_an_earlier_cycle_is_emptied_too(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.driver.press("U0REP1", "Bad timing", channel=ENTERPRISE)  # nurtured
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    if view is not None:  # a reason to give
        await stack.driver.submit_view("U0REP1", {}, view_id=view.id)
        await stack.settle()
    clock.advance(days=95)  # scored again after `nurture_after`, and posted again
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    assert (await stack.services.lead(1)).cycle == 2
    first, second = stack.sim.messages(ENTERPRISE)
    assert traces(first.all_text) and traces(second.all_text)

    await forgotten(stack)

    assert traces(slack_text(stack)) == []
    # Nor in the database: the earlier post as it was retired (its outbox row) is emptied too.
    assert traces(await database_text(stack)) == []
    first, second = stack.sim.messages(ENTERPRISE)
    assert first.all_text.startswith("🗑️")
    assert "erased at the person's request" in second.all_text and second.buttons() == []


async def test_an_erased_lead_takes_no_more_work_and_leaves_app_home(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.driver.app_home_opened("U0REP1")
    await stack.settle()
    modal = stack.sim.latest_view("U0REP1")  # the rep is writing the note for marketing
    assert modal is not None
    assert "Log call" in json.dumps(stack.sim.home("U0REP1"))

    await forgotten(stack)
    home = json.dumps(stack.sim.home("U0REP1"))
    assert traces(home) == [] and "Log call" not in home  # not in their queue any more

    values = {"reason": "No budget", "note": NOTE}
    answer = await stack.driver.submit_view("U0REP1", values, view_id=modal.id)
    await stack.settle()
    assert "erased at the person's request; nothing was changed" in answer.body
    lead = await stack.services.lead(1)
    assert (lead.stage.value, lead.disposition_code, lead.disposition_note) == ("sal", None, None)
    assert traces(await database_text(stack)) == []
    assert stack.sim.messages(FEEDBACK) == []  # marketing heard nothing


async def test_an_answer_for_an_erased_lead_is_refused_and_kept_nowhere(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    await stack.driver.press("U0REP1", "Need more info", channel=ENTERPRISE)
    await stack.settle()
    question = stack.sim.latest_view("U0REP1")
    assert question is not None
    asked = {"question": "Which region is the rollout for?"}
    assert (await stack.driver.submit_view("U0REP1", asked, view_id=question.id)).status == 200
    await stack.settle()
    await stack.driver.press("U0OUTSIDER", "Answer", channel=FEEDBACK)  # marketing starts typing
    await stack.settle()
    modal = stack.sim.latest_view("U0OUTSIDER")
    assert modal is not None

    await forgotten(stack)
    answer = {"answer": "Priya Raman signs off the budget herself"}
    done = await stack.driver.submit_view("U0OUTSIDER", answer, view_id=modal.id)
    await stack.settle()

    assert "nothing was changed" in done.body
    assert traces(await database_text(stack)) == [] and traces(slack_text(stack)) == []


async def test_a_managers_overdue_list_forgets_the_person_too(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    clock.advance(hours=3)  # nobody claimed it: overdue on the managers' App Home
    await stack.driver.app_home_opened("U0MGR1")
    await stack.settle()
    assert traces(json.dumps(stack.sim.home("U0MGR1")))

    await forgotten(stack)

    assert traces(json.dumps(stack.sim.home("U0MGR1"))) == []


async def test_a_message_in_an_archived_channel_is_deleted_since_slack_refuses_to_edit_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    await worked(stack, clock)
    stack.sim.archive_channel(FEEDBACK)  # chat.update there answers is_inactive

    await forgotten(stack)

    assert traces(slack_text(stack)) == []
    assert stack.sim.all_messages(FEEDBACK) == []  # deleted, as it could not be emptied


async def test_forget_names_the_messages_slack_refused_to_empty_and_fails(
    stack: LocalStack, clock: TravelClock
) -> None:
    await worked(stack, clock)
    stack.sim.archive_channel(FEEDBACK)
    stack.sim.inject("chat.delete", error="cant_delete_message", channel=FEEDBACK)

    status, output = await forget_cli(stack, LEAD["email"])

    assert status == 1, output
    assert "lead 1: personal data erased, but Slack refused to empty:" in output
    assert f"  - a message in {FEEDBACK}: cant_delete_message." in output
    assert "1 Slack message(s) may still show the person's data" in output
    assert "emptied" not in output


async def test_forget_with_slack_down_says_the_messages_wait_not_that_they_were_emptied(
    stack: LocalStack, clock: TravelClock
) -> None:
    """An erasure whose Slack changes could not go within `--wait` is done in the database,
    and says its messages wait to be emptied (by `handoff serve`), not that they were: an
    operator answering an erasure request must not be told Slack is clean when it is not."""
    await worked(stack, clock)
    stack.sim.inject("chat.*", status=500, seconds=30)

    status, output = await forget_cli(stack, LEAD["email"], "--wait", "1")

    assert status == 0, output
    assert "about it emptied" not in output, output
    assert "lead 1: personal data erased; its Slack messages wait to be emptied" in output
    assert "`handoff serve` delivers them" in output


async def test_forget_by_external_id_erases_the_persons_other_leads_too(
    stack: LocalStack, clock: TravelClock
) -> None:
    for external_id in ("hs-1", "hs-2"):  # one person, sent twice by marketing
        payload = lead_payload(external_id, email=LEAD["email"])
        assert (await stack.post_lead(payload))[0] in (200, 201)
    someone_else = lead_payload(
        "hs-9",
        email="jordan@contoso.example",
        name="Jordan Lee",
        title="CFO",
        phone=None,
        company={"name": "Contoso", "domain": "contoso.example", "employees": 3000},
        engagement=[],
    )
    assert (await stack.post_lead(someone_else))[0] == 201
    await stack.settle()

    status, output = await forget_cli(stack, "hs-1")
    assert status == 0, output
    await stack.settle()

    assert traces(await database_text(stack)) == [] and traces(slack_text(stack)) == []
    assert "lead 1: personal data erased" in output and "lead 2: personal data erased" in output
    assert (await stack.services.lead(3)).name == "Jordan Lee"  # someone else's lead stays


async def test_a_stale_claim_on_an_erased_lead_claims_nothing(stack: LocalStack) -> None:
    """A rep whose Slack still shows the post from before the erasure presses its Claim: the
    claim's one conditional update leaves an erased lead alone, and the rep is told why."""
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    shown = copy.deepcopy(stack.sim.messages(ENTERPRISE)[0].blocks)
    await forgotten(stack)
    post = stack.sim.messages(ENTERPRISE)[0]
    post.blocks = shown  # the rep's client has not redrawn the post yet
    answer = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    told = answer.body + json.dumps([e.text for e in stack.sim.ephemerals()])
    assert "erased at the person's request; nothing was changed" in told
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.stage.value) == (None, "mql")
    assert traces(await database_text(stack)) == []


async def test_the_same_lead_sent_again_after_forget_stays_forgotten(stack: LocalStack) -> None:
    """Marketing's system sends the forgotten person again under the same external id: the
    answer names the erased lead (200, status `erased`), nothing is stored or posted, and the
    database holds only the digest of the id, never the id."""
    status, _ = await stack.post_lead(LEAD)
    assert status == 201
    await stack.settle()
    await forgotten(stack)
    posts = len(stack.sim.messages(ENTERPRISE))

    status, body = await stack.post_lead(LEAD)
    await stack.settle()
    assert (status, body["id"], body["status"]) == (200, 1, "erased")
    assert "erased at their request" in body["message"]
    assert len(stack.sim.messages(ENTERPRISE)) == posts  # no second post
    found = await database_text(stack)
    assert traces(found) == [] and LEAD["external_id"] not in found
    # Nor a plain SHA-256 of it: with a list of guessed ids, anyone with the database alone
    # would find whose it was. The digest is keyed (HANDOFF_ERASURE_KEY, not in the database).
    assert hashlib.sha256(LEAD["external_id"].encode()).hexdigest()[:16] not in found
    assert "erased:hmac:" in found
    assert traces(slack_text(stack)) == []
    # Forgetting them again by that id says they are gone already.
    status, output = await forget_cli(stack, LEAD["external_id"])
    assert status == 1 and "was erased already: nothing was changed" in output, output


async def test_crm_activity_for_a_forgotten_person_is_answered_and_recorded_nowhere(
    stack: LocalStack,
) -> None:
    """The CRM goes on sending a forgotten person's calls under their old external id: each is
    answered 200 with why, not the 404 ("send it to POST /leads first") a CRM retries for
    days, and nothing of it is stored."""
    await claimed(stack)
    await forgotten(stack)
    call = {"type": "attempt", "kind": "call", "actor": "U0REP1", "id": "crm-call-9"}

    status, body = await activity(stack, LEAD["external_id"], call)
    await stack.settle()

    assert (status, body["lead_id"], body["recorded"]) == (200, 1, None), body
    assert "erased at their request: nothing was recorded" in body["message"]
    events = await stack.handoff.database.run(
        lambda db: [row[0] for row in db.execute(text("SELECT type FROM events"))]
    )
    assert "attempt" not in events
    assert LEAD["external_id"] not in await database_text(stack)


async def test_forget_with_another_erasure_key_refuses_and_changes_nothing(
    stack: LocalStack,
) -> None:
    """An operator whose HANDOFF_ERASURE_KEY is not the server's (lost, mistyped, another
    installation's): `handoff forget` stops with one line naming it, and erases nothing, for
    with that key a person erased before would be taken in again."""
    await claimed(stack)
    await forgotten(stack)  # the database now holds a digest made with the server's key
    someone = lead_payload("hs-2", email="jordan@contoso.example", name="Jordan Lee")
    assert (await stack.post_lead(someone))[0] == 201
    await stack.settle()

    status, output = await forget_cli(stack, "hs-2", HANDOFF_ERASURE_KEY="k" * 40)

    assert status == 2, output
    assert "HANDOFF_ERASURE_KEY is not the key this database's erased leads were made" in output
    assert "Traceback" not in output and "k" * 40 not in output
    lead = await stack.services.lead(2)
    assert lead.erased_at is None and lead.name == "Jordan Lee"


async def test_an_edit_answered_by_a_proxys_page_is_made_again_not_taken_for_a_refusal(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The erasure's chat.update of a message is answered twice by a captive portal's HTML
    page (a 200, not Slack's JSON): Slack refused nothing, so the edit is made again, and the
    message is emptied, not deleted (before: the page read as Slack's refusal for good, "HTTP
    200", and the message deleted as one in an archived channel is)."""
    await worked(stack, clock)
    page = "<html><body>Please sign in to the network</body></html>"
    stack.sim.inject(
        "chat.update", status=200, text=page, content_type="text/html", channel=FEEDBACK, times=2
    )

    await forgotten(stack)

    assert traces(slack_text(stack)) == []
    assert stack.sim.all_messages(FEEDBACK) != []  # emptied in place
    assert stack.sim.calls_to("chat.delete") == []

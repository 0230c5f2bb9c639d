"""Who may do what, through the real server: refusals are private and change nothing."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from bot.cli.stack import LocalStack
from bot.domain.lead import LeadView
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
OWNER = "U0REP1"  # an enterprise rep; claims the lead in most tests
OTHER_REP = "U0REP2"  # the same pool, not the owner
SMB_REP = "U0REP5"  # another segment's pool
MANAGER = "U0MGR1"
OUTSIDER = "U0OUTSIDER"  # in no pool, not a manager
REPORTER = "U0MKT1"  # marketing ops: may read /sla-report, nothing else

OUTSIDER_CLAIM = (
    "Sorry, only the sales reps of a segment and the sales managers can claim leads. "
    "Ask a manager if one should be yours."
)
POOL_CLAIM = (
    "Sorry, only the enterprise reps and the sales managers can claim this lead. "
    "Ask a manager if it should be yours."
)
REPORT_REFUSAL = (
    "Sorry, only the sales managers and the SLA's reporters can run `/sla-report`. "
    "Ask a manager to add you to `reporters` in sla.yaml."
)
AWAY_REFUSAL = (
    "Sorry, only the sales managers can set someone else away. "
    "`/handoff away` on its own sets you away."
)


@pytest.fixture
def policy(policy: Policy) -> Policy:
    """The example SLA with a reporter added."""
    return parse_policy({**snapshot(policy), "reporters": [REPORTER]})


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave as it was."""

    lead: LeadView | None
    events: int
    updates: int


async def snapshot_of(stack: LocalStack, message: Message) -> Snapshot:
    await stack.settle()
    store = stack.services.store
    updates = [
        call for call in stack.sim.calls_to("chat.update") if call.args.get("ts") == message.ts
    ]
    return Snapshot(await store.get(1), len(await store.events(1)), len(updates))


async def posted(stack: LocalStack) -> Message:
    status, answer = await stack.post_lead(lead_payload())
    assert status == 201, answer
    await stack.settle()
    (message,) = stack.sim.messages(ENTERPRISE)
    return message


async def claimed(stack: LocalStack) -> Message:
    message = await posted(stack)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    lead = await stack.services.store.get(1)
    assert lead is not None and lead.owner == OWNER
    return message


async def refused_privately(stack: LocalStack, user: str) -> str:
    await stack.settle()
    (note,) = stack.sim.ephemerals(user=user)
    return note.text


# --- claim -------------------------------------------------------------------------------------


async def test_refusals_name_a_segment_as_its_post_does(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(
        lead_payload("hs-mid", company={"name": "Acme", "employees": 500})
    )
    assert status == 201
    await stack.settle()
    (post,) = stack.sim.messages("C0MID")
    assert "*Segment*\nmid market" in post.all_text
    await stack.driver.press(OWNER, "Claim", channel="C0MID", message_ts=post.ts)
    assert await refused_privately(stack, OWNER) == (
        "Sorry, only the mid market reps and the sales managers can claim this lead. "
        "Ask a manager if it should be yours."
    )
    await stack.driver.choose(
        MANAGER,
        "liam",
        channel="C0MID",
        action_id="lead_reassign",
        message_ts=post.ts,
        override_value="1:U0REP1",
    )
    assert await refused_privately(stack, MANAGER) == (
        "<@U0REP1> is not in the mid market pool (<@U0REP3>, <@U0REP4>); nothing was changed."
    )


async def test_claim_by_someone_in_no_pool_is_refused_before_the_claim(stack: LocalStack) -> None:
    message = await posted(stack)
    before = await snapshot_of(stack, message)
    response = await stack.driver.press(OUTSIDER, "Claim", channel=ENTERPRISE)
    assert response.status == 200
    assert await refused_privately(stack, OUTSIDER) == OUTSIDER_CLAIM
    assert await snapshot_of(stack, message) == before
    assert before.lead is not None and before.lead.owner is None


async def test_claim_by_a_rep_of_another_segment_is_refused(stack: LocalStack) -> None:
    message = await posted(stack)
    before = await snapshot_of(stack, message)
    await stack.driver.press(SMB_REP, "Claim", channel=ENTERPRISE)
    assert await refused_privately(stack, SMB_REP) == POOL_CLAIM
    assert await snapshot_of(stack, message) == before


async def test_claim_by_a_manager_is_allowed(stack: LocalStack) -> None:
    await posted(stack)
    await stack.driver.press(MANAGER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert stack.sim.ephemerals(user=MANAGER) == []
    lead = await stack.services.store.get(1)
    assert lead is not None and lead.owner == MANAGER


# --- attempts and dispositions -----------------------------------------------------------------


@pytest.mark.parametrize("user", [OTHER_REP, SMB_REP, OUTSIDER])
@pytest.mark.parametrize(
    ("label", "doing"),
    [("Log call", "log an attempt"), ("Qualified", "disposition it"), ("Not a fit", None)],
)
async def test_work_by_anyone_but_the_owner_or_a_manager_is_refused(
    stack: LocalStack, user: str, label: str, doing: str | None
) -> None:
    message = await claimed(stack)
    before = await snapshot_of(stack, message)
    response = await stack.driver.press(user, label, channel=ENTERPRISE, message_ts=message.ts)
    assert response.status == 200
    text = await refused_privately(stack, user)
    assert text.startswith(f"Only <@{OWNER}>, who owns this lead, or a manager can ")
    if doing:
        assert text.endswith(f"{doing}.")
    assert await snapshot_of(stack, message) == before
    assert stack.sim.open_views(user) == []  # no reason modal for someone who may not use it


@pytest.mark.parametrize("label", ["Log call", "Qualified"])
async def test_a_manager_may_work_someone_elses_lead(stack: LocalStack, label: str) -> None:
    message = await claimed(stack)
    before = await snapshot_of(stack, message)
    await stack.driver.press(MANAGER, label, channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    assert stack.sim.ephemerals(user=MANAGER) == []
    after = await snapshot_of(stack, message)
    assert after.events > before.events and after.updates > before.updates


async def test_a_managers_disposition_is_never_credited_to_the_owner(stack: LocalStack) -> None:
    message = await claimed(stack)
    await stack.driver.press(MANAGER, "Bad timing", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    events = await stack.services.store.events(1)
    assert [event.actor for event in events if event.type == "dispositioned"] == [MANAGER]

    # The post names who did it (from the audit trail), and the owner apart.
    post = stack.sim.message(ENTERPRISE, message.ts)
    assert post is not None
    (outcome,) = [line for line in post.all_text.splitlines() if "Bad timing" in line]
    assert outcome.startswith(
        f"🌱 *Bad timing* → Back to marketing (nurture) by <@{MANAGER}> on <!date^"
    )
    assert outcome.endswith(f"; owner <@{OWNER}>") and f"by <@{OWNER}>" not in outcome
    # `/lead` reads the trail: it names the manager who did it.
    card = await stack.driver.command(MANAGER, "/lead", "hs-1")
    assert card.json is not None
    texts = [block.get("text", {}).get("text", "") for block in card.json["blocks"]]
    (said,) = [text for text in texts if text.startswith("🌱 *Bad timing*")]
    assert said.startswith(f"🌱 *Bad timing* → Back to marketing (nurture) by <@{MANAGER}> on ")
    assert said.endswith(f"; owner <@{OWNER}>")


async def test_the_reason_modal_submitted_by_someone_else_is_refused(stack: LocalStack) -> None:
    message = await claimed(stack)
    await stack.driver.press(OWNER, "Not a fit", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    view = stack.sim.latest_view(OWNER)
    assert view is not None
    before = await snapshot_of(stack, message)
    values = {"reason": "No budget", "note": "Someone else's call"}
    forged = await stack.driver.submit_view(OTHER_REP, values, view_id=view.id)
    assert forged.json == {
        "response_action": "errors",
        "errors": {
            # A modal's errors are plain text: the owner by name, not a raw <@U0REP1>.
            "reason": "Only @maya, who owns this lead, or a manager can disposition it."
        },
    }
    assert await snapshot_of(stack, message) == before
    assert stack.sim.messages("C0MKTFEED") == []
    # The owner can still submit the same form.
    done = await stack.driver.submit_view(OWNER, values, view_id=view.id)
    assert done.status == 200 and done.json is None
    lead = await stack.services.store.get(1)
    assert lead is not None and lead.disposition_code == "not_a_fit"


# --- commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [OWNER, OUTSIDER])
async def test_sla_report_is_refused_to_reps_and_outsiders(stack: LocalStack, user: str) -> None:
    answer = await stack.driver.command(user, "/sla-report", "last-week")
    assert answer.json == {"text": REPORT_REFUSAL, "response_type": "ephemeral"}


@pytest.mark.parametrize("user", [MANAGER, REPORTER])
async def test_sla_report_is_for_managers_and_reporters(stack: LocalStack, user: str) -> None:
    answer = await stack.driver.command(user, "/sla-report", "")
    assert answer.status == 200
    await stack.settle()
    (report,) = stack.sim.ephemerals(user=user)
    assert "SLA report ·" in report.all_text


@pytest.mark.parametrize("mention", ["<@U0REP2|tom>", "@tom"])
async def test_setting_someone_else_away_is_for_managers(stack: LocalStack, mention: str) -> None:
    refused = await stack.driver.command(OWNER, "/handoff", f"away {mention} 3d")
    assert refused.json == {"text": AWAY_REFUSAL, "response_type": "ephemeral"}
    allowed = await stack.driver.command(MANAGER, "/handoff", f"away {mention} 3d")
    assert allowed.json is not None and allowed.json["text"].startswith("<@U0REP2> is away until")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("away 3d", "You're away until"),
        ("away <@U0REP1|maya> 3d", "You're away until"),
        ("away @maya 3d", "You're away until"),
        ("back", "You weren't away"),
    ],
)
async def test_anyone_may_set_themselves_away(stack: LocalStack, text: str, said: str) -> None:
    answer = await stack.driver.command(OWNER, "/handoff", text)
    assert answer.json is not None and answer.json["text"].startswith(said)


async def test_a_signed_command_that_names_nobody_is_refused(stack: LocalStack) -> None:
    """Slack always says who runs a command; a request without `user_id` is nobody's, and
    nobody may see the week's report."""
    form = {
        "team_id": stack.driver.team_id,
        "channel_id": "C0ENT",
        "command": "/sla-report",
        "text": "",
        "api_app_id": stack.driver.api_app_id,
        "response_url": stack.sim.new_response_url("C0ENT", "U0MGR1"),
    }
    answer = await stack.driver.send(
        urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert answer.json is not None and answer.json["response_type"] == "ephemeral"
    assert answer.json["text"] == "Sorry, this request names nobody, so nobody may make it."
    assert stack.sim.calls_to("files.getUploadURLExternal") == []

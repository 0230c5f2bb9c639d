"""Block Kit rendering: valid for Slack in every state, and lead data can never become markup."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.domain.lead import NOTE_MAX, EventView, LeadView, Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.scoring import OWN_SCORE
from bot.simulator.blockkit import validate_blocks
from bot.slack.blocks import Message
from bot.slack.home import HomeState, Queue, home_view, owned_card
from bot.slack.lead_views import (
    clock_line,
    disposition_modal,
    ended_cycle_post,
    feedback_message,
    lead_card,
    lead_message,
    nurture_notice,
    score_text,
)
from bot.slack.sla_view import manager_blocks, sla_summary
from bot.slack.text import (
    as_mrkdwn,
    clip,
    escape,
    plain,
    safe,
    slack_date,
    team_time,
    whole_parts,
)

ZONE = "Australia/Sydney"
POSTED = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 11:00 AEDT
DUE = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Mon 13:00 AEDT
BEFORE_DUE = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Mon 12:00 AEDT
AFTER_DUE = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)  # Mon 15:30 AEDT
OWNER = "U0REP2"  # the hostile text below mentions U0REP1, never the owner
HOSTILE_ID = "U0REP1"
DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|<>]*\|[^<>]*>")
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
OUR_CHANNEL = re.compile(r"<#C0(?:ENT|MID|SMB)>")  # the example SLA's segment channels
HOSTILE = (
    "<!channel> <!here> <@U0REP1> <#C123> <https://evil.example|Your bank> "
    "Smith & Sons \x00\x07\x1b\x7f \u202eevil\u202c \u2066isolate\u2069 🚀👩‍💼 *bold* _it_ `code`"
)
HUGE = HOSTILE + "x" * 10_000


def view(stage: Stage = Stage.MQL, **fields: Any) -> LeadView:
    """A hot enterprise lead in `stage`, with what that stage has stored."""
    base = LeadView(
        id=7,
        external_id="hs-7",
        email="priya@northwind.example",
        stage=stage,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version="v1",
        received_at=POSTED,
        name="Priya Raman",
        title="VP Revenue Operations",
        phone="+61 2 5550 1234",
        company={
            "name": "Northwind Logistics",
            "employees": 2400,
            "industry": "Logistics",
            "country": "AU",
            "domain": "northwind.example",
        },
        source="webinar",
        campaign="Q4 Pipeline Webinar",
        engagement=[
            {"type": "webinar", "title": "Fixing lead leakage", "at": "2026-11-18T23:00:00Z"},
            {"type": "page", "title": "Pricing", "url": "https://example.com/pricing"},
        ],
        score_reasons=["senior title (+30)", "2,400 employees (+20)"],
        suggested_owner=OWNER,
        posted_at=POSTED,
        first_touch_due_at=DUE,
    )
    by_stage: dict[Stage, dict[str, Any]] = {
        Stage.MQL: {},
        Stage.SAL: {"owner": OWNER, "claimed_at": POSTED + timedelta(minutes=20), "attempts": 2},
        Stage.SQL: {"disposition_code": "qualified"},
        Stage.REJECT: {
            "disposition_code": "not_a_fit",
            "disposition_reason": "No budget",
            "disposition_note": "Budget frozen until July & the CFO left.",
        },
        Stage.NURTURE: {"disposition_code": "bad_timing"},
        Stage.RECYCLE: {"disposition_code": "no_response", "attempts": 6},
    }
    closed: dict[str, Any] = {}
    if not stage.is_open:
        closed = {
            "owner": OWNER,
            "claimed_at": POSTED + timedelta(minutes=20),
            "first_touch_at": POSTED + timedelta(minutes=50),
            "dispositioned_at": POSTED + timedelta(days=2),
            "attempts": 3,
        }
    return replace(base, **{**closed, **by_stage[stage], **fields})


def hostile_view(stage: Stage, text: str = HUGE) -> LeadView:
    return view(
        stage,
        external_id=text[:255],
        email="<!channel>@evil.example",
        name=text,
        title=text,
        phone=text,
        company={
            "name": text,
            "industry": text,
            "country": text,
            "domain": text,
            "employees": 5000,
        },
        source=text,
        campaign=text,
        engagement=[{"type": text, "title": text, "url": text, "at": "2026-11-20T09:30:00Z"}] * 5,
        score_reasons=[f"source {text} (+30)", text],
        stage_reason=text,
        disposition_reason=text if not stage.is_open else None,
        disposition_note=text if not stage.is_open else None,
    )


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a Block Kit payload."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_valid_blocks(blocks: list[dict[str, Any]], max_blocks: int = 50) -> None:
    """What Slack would accept: slack_sdk's recursive validation plus the limits it skips."""
    assert 0 < len(blocks) <= max_blocks
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        assert parsed.type == block["type"]
        parsed.to_dict()  # raises SlackObjectFormationError on any broken limit
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(0 < len(field["text"]) <= 2000 for field in fields)
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(element["text"]) <= 3000 for element in block["elements"])
        if block["type"] == "actions":
            assert 0 < len(block["elements"]) <= 25
            assert all(len(element.get("value", "")) <= 2000 for element in block["elements"])


def assert_valid_message(message: Message) -> None:
    assert_valid_blocks(message.blocks)
    assert message.text.strip()
    assert len(message.text) <= 3000
    block_ids = [block["block_id"] for block in message.blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids))


def assert_valid_view(payload: dict[str, Any]) -> None:
    View(**payload).to_dict()
    assert_valid_blocks(payload["blocks"], max_blocks=100)


def leftover_markup(text: str, mentions: tuple[str, ...] = ()) -> str:
    """`text` without what we put there on purpose (date tokens, chosen mentions)."""
    text = DATE_TOKEN.sub("", text)
    text = OUR_CHANNEL.sub("", text)  # App Home names each lead's segment channel
    for user in mentions:
        text = text.replace(f"<@{user}>", "")
    return text


def assert_no_live_markup(payload: Any, mentions: tuple[str, ...] = (OWNER,)) -> None:
    for text in strings(payload):
        rest = leftover_markup(text, mentions)
        assert "<" not in rest and ">" not in rest, rest[:300]
        assert not BARE_AMPERSAND.search(rest), rest[:300]
        for danger in ("<!channel", "<!here", f"<@{HOSTILE_ID}>", "<#C123", "<http"):
            assert danger not in text
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text)


def all_text(message: Message) -> str:
    return message.text + "\n" + "\n".join(strings(message.blocks))


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"] == "button"
    ]


def labels(blocks: list[dict[str, Any]]) -> list[str]:
    return [button["text"]["text"] for button in buttons(blocks)]


def events() -> list[EventView]:
    def event(event_type: str, actor: str, minutes: int, **data: Any) -> EventView:
        return EventView(7, event_type, actor, POSTED + timedelta(minutes=minutes), data)

    return [
        event("received", "intake", 0),
        event("mql", "intake", 0, score=88),
        event("posted", "handoff", 1),
        event("claimed", OWNER, 20),
        event("attempt", OWNER, 50, kind="call", number=1),
        event("first_touch", OWNER, 50),
        event("dispositioned", OWNER, 2880, code="not_a_fit", reason="No budget"),
        event("note_added", "crm", 2900, note=HOSTILE),
        event("nurture", "intake", 2901, reason=HOSTILE),
        event("attempt", OWNER, 2902, kind=HOSTILE, number=2),
        event("dispositioned", OWNER, 2903, code=HOSTILE, reason=HOSTILE),
    ]


# --- the lead message in every stage -----------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
def test_lead_message_is_valid_in_every_stage(policy: Policy, stage: Stage) -> None:
    message = lead_message(view(stage), policy, BEFORE_DUE)
    assert_valid_message(message)
    assert "Priya Raman" in message.text
    assert_no_live_markup(message.blocks)


def test_mql_has_exactly_one_claim_button(policy: Policy) -> None:
    message = lead_message(view(Stage.MQL), policy, BEFORE_DUE)
    [claim] = buttons(message.blocks)
    assert claim["text"]["text"] == "Claim"
    assert claim["value"] == "7"
    assert claim["action_id"] == "lead_claim"
    assert f"<@{OWNER}>" in all_text(message)  # the suggested owner is mentioned on purpose


def test_sal_has_attempt_buttons_and_one_button_per_disposition(policy: Policy) -> None:
    message = lead_message(view(Stage.SAL), policy, BEFORE_DUE)
    expected = ["Log email", "Log call", "Log LinkedIn"]
    expected += [item.label for item in policy.dispositions]
    assert labels(message.blocks) == expected
    assert "Claim" not in labels(message.blocks)
    action_ids = [button["action_id"] for button in buttons(message.blocks)]
    assert len(action_ids) == len(set(action_ids))
    assert {button["value"] for button in buttons(message.blocks)} == {"7"}


def test_final_dispositions_confirm_first_and_reasoned_ones_open_a_modal(policy: Policy) -> None:
    blocks = lead_message(view(Stage.SAL), policy, POSTED).blocks
    by_label = {button["text"]["text"]: button for button in buttons(blocks)}
    for item in policy.dispositions:
        button = by_label[item.label]
        assert button["action_id"] == f"lead_dispose_{item.code}"
        opens_modal = item.reason_required or item.outcome == "more_info"  # the modal confirms
        assert ("confirm" in button) is not opens_modal
    assert by_label["Qualified"].get("style") == "primary"
    assert by_label["Qualified"]["confirm"]["confirm"]["text"] == "Qualified"
    assert by_label["Log call"]["action_id"] == "lead_attempt_call"


def test_sal_shows_attempts_against_the_standard(policy: Policy) -> None:
    message = lead_message(view(Stage.SAL), policy, BEFORE_DUE)
    text = all_text(message)
    assert "Attempts 2/6" in text
    assert "(standard: within 2 weeks)" in text
    assert f"Claimed by <@{OWNER}> after 20m of business time" in text


@pytest.mark.parametrize(
    ("reason", "claimed_by_owner"),
    [
        ({"rule": "round_robin", "rep": OWNER}, True),
        ({"rule": "manager", "rep": OWNER, "by": "U0MGR1"}, True),  # before anyone had it
        ({"rule": "manager", "rep": OWNER, "by": "U0MGR1", "from": "U0REP9"}, False),
        ({"rule": "crm", "rep": OWNER, "by": "crm", "from": "U0REP9"}, False),
        (
            {"rule": "round_robin", "rep": OWNER, "reassigned": "first_touch", "from": "U0REP9"},
            False,
        ),
    ],
)
def test_a_lead_that_changed_hands_names_its_owner_not_a_claimer(
    policy: Policy, reason: dict[str, Any], claimed_by_owner: bool
) -> None:
    """The claim's time is the first claim's: after a reassignment the owner need not have
    made it, so the post names the owner and whom the lead was taken from."""
    text = all_text(lead_message(view(Stage.SAL, route_reason=reason), policy, BEFORE_DUE))
    claimed = f"Claimed by <@{OWNER}> after 20m of business time"
    handed = f"Owner <@{OWNER}> · claimed after 20m of business time; reassigned from <@U0REP9>"
    assert (claimed in text, handed in text) == (claimed_by_owner, not claimed_by_owner)


def test_spans_count_from_arrival_as_the_deadlines_do(policy: Policy) -> None:
    """Posted 20 minutes late (Slack was down): the first touch 2h 10m after arrival is late
    against its 2-hour deadline, and says 2h 10m, not the 1h 50m since the post."""
    late = view(
        Stage.SAL,
        posted_at=POSTED + timedelta(minutes=20),
        claim_due_at=POSTED + timedelta(hours=1),
        claimed_at=POSTED + timedelta(hours=1, minutes=5),
        first_touch_at=DUE + timedelta(minutes=10),
        first_touch_due_at=DUE,
    )
    text = all_text(lead_message(late, policy, AFTER_DUE))
    assert f"Claimed by <@{OWNER}> after 1h 5m of business time (late)" in text
    assert "first touch after 2h 10m of business time (late)" in text


def test_reasons_past_the_top_three_are_counted_with_their_points(policy: Policy) -> None:
    reasons = ["Demo request 1 day ago +40 (qualifies)", "1,450 employees +20"]
    reasons += ["Pricing page 2 days ago +20", "VP title +10", "Webinar 3 days ago +10"]
    text = all_text(lead_message(view(score=100, score_reasons=reasons), policy, BEFORE_DUE))
    assert "Pricing page 2 days ago +20 · +2 more (+20)" in text  # 40 + 20 + 20 + 20 = 100


def test_a_recycled_lead_reads_recycled_as_a_rejected_one_reads_rejected(policy: Policy) -> None:
    """Its outcome line names the stage it is in, as "→ Rejected" and "→ Qualified (SQL)" do:
    "Unable to contact → Recycled by …", not "→ Recycle by …"."""
    recycled = view(Stage.RECYCLE, disposition_code="no_response", dispositioned_at=POSTED)
    text = all_text(lead_message(recycled, policy, AFTER_DUE))
    assert "*Unable to contact* → Recycled on " in text and "→ Recycle " not in text
    assert "· *Recycled*" in all_text(lead_card(recycled, [], policy, AFTER_DUE))


def test_feedback_without_a_reason_shows_no_empty_reason(policy: Policy) -> None:
    recycled = view(Stage.RECYCLE, disposition_code="no_response")
    text = all_text(feedback_message(recycled, policy))
    assert "*Reason*" not in text and "—" not in text.split("*Rep*")[0]
    assert "external id hs-7 · code `no_response`" in text


def test_a_post_says_whom_a_lead_claimed_by_someone_else_was_suggested_to(
    policy: Policy,
) -> None:
    """A claim keeps the lead's suggested owner (storage `_claimed`): the post, seen by the
    whole segment, names them beside the claimer as `/lead`'s timeline does, so the rep it was
    taken from (who answers for its first touch: docs/reports.md "By rep") can see it."""
    taken = lead_message(view(Stage.SAL, suggested_owner="U0REP3"), policy, BEFORE_DUE)
    assert_valid_message(taken)
    claimed = f"Claimed by <@{OWNER}> (suggested to <@U0REP3>) after 20m of business time"
    assert claimed in all_text(taken)
    assert taken.text.endswith(f", claimed by <@{OWNER}> (suggested to <@U0REP3>)")
    # By the rep it was suggested to, or from the pool when it was suggested to nobody: as before.
    for suggested in (OWNER, None):
        own = lead_message(view(Stage.SAL, suggested_owner=suggested), policy, BEFORE_DUE)
        text = all_text(own)
        assert f"Claimed by <@{OWNER}> after 20m of business time" in text
        assert "suggested to" not in text
        assert own.text.endswith(f", claimed by <@{OWNER}>")


def test_a_post_names_a_suggested_rep_that_is_no_user_id_as_text(policy: Policy) -> None:
    message = lead_message(view(Stage.SAL, suggested_owner=HOSTILE), policy, BEFORE_DUE)
    assert_valid_message(message)
    text = all_text(message)
    assert f"Claimed by <@{OWNER}> (suggested to &lt;!channel&gt; " in text
    assert "<!channel>" not in text and f"<@{HOSTILE_ID}>" not in text
    assert_no_live_markup(message.blocks)


def test_a_lead_claimed_by_someone_else_after_a_reassignment_names_both(policy: Policy) -> None:
    """Reassigned from U0REP9 to U0REP3 while unclaimed, then claimed by the owner: the post
    says whom it was suggested to when claimed, and whom the reassignment took it from."""
    reason = {"rule": "manager", "rep": "U0REP3", "by": "U0MGR1", "from": "U0REP9"}
    lead = view(Stage.SAL, suggested_owner="U0REP3", route_reason=reason)
    message = lead_message(lead, policy, BEFORE_DUE)
    assert (
        f"Owner <@{OWNER}> (suggested to <@U0REP3>) · claimed after 20m of business time; "
        "reassigned from <@U0REP9>"
    ) in all_text(message)
    assert message.text.endswith(
        f", owner <@{OWNER}> (suggested to <@U0REP3>), reassigned from <@U0REP9>"
    )


def test_the_fallback_of_a_long_lead_with_every_name_stays_in_its_budget(
    policy: Policy,
) -> None:
    """A 5000-character name, and names that are no user ids (40 characters each, escaped):
    the post's text stays within 3000 with the owner, whom it was suggested to and whom it
    was reassigned from."""
    reason = {"rule": "manager", "rep": "U0REP3", "by": "U0MGR1", "from": "&" * 60}
    lead = view(Stage.SAL, name="A" * 5000, suggested_owner="<" * 60, route_reason=reason)
    message = lead_message(lead, policy, BEFORE_DUE)
    assert_valid_message(message)  # the text at most 3000
    assert ", reassigned from &amp;" in message.text and "(suggested to &lt;" in message.text


def test_the_owners_app_home_card_says_whom_the_lead_was_suggested_to(policy: Policy) -> None:
    card = owned_card(view(Stage.SAL, suggested_owner="U0REP3"), policy, BEFORE_DUE)
    assert f"Claimed by <@{OWNER}> (suggested to <@U0REP3>) after 20m" in json.dumps(card)
    own = owned_card(view(Stage.SAL), policy, BEFORE_DUE)
    assert "suggested to" not in json.dumps(own)


@pytest.mark.parametrize("stage", [Stage.SQL, Stage.REJECT, Stage.NURTURE, Stage.RECYCLE])
def test_an_ended_cycles_post_has_no_controls_and_says_it_came_back(
    policy: Policy, stage: Stage
) -> None:
    ended = replace(view(stage), fit_rating=4)
    message = ended_cycle_post(ended, policy, BEFORE_DUE, "C0SMB")
    assert [b for b in message.blocks if b["type"] == "actions"] == []
    text = all_text(message)
    assert "Came back as cycle 2" in text and "<#C0SMB>" in text
    assert f"Rated by <@{OWNER}>: fit 4" in text and "how good was" not in text
    assert message.text.endswith(", came back as cycle 2")
    assert validate_blocks(message.blocks) == []
    unrated = all_text(ended_cycle_post(view(stage), policy, BEFORE_DUE, "C0ENT"))
    assert "Rated by" not in unrated and "how good was" not in unrated


def test_sal_fallback_mentions_the_owner(policy: Policy) -> None:
    message = lead_message(view(Stage.SAL), policy, BEFORE_DUE)
    assert message.text == f"Hot MQL: Priya Raman at Northwind Logistics, claimed by <@{OWNER}>"


@pytest.mark.parametrize("stage", [Stage.SQL, Stage.REJECT, Stage.NURTURE, Stage.RECYCLE])
def test_closed_stages_have_no_buttons(policy: Policy, stage: Stage) -> None:
    message = lead_message(view(stage), policy, BEFORE_DUE)
    # Only the owner's optional rating menus (fit, timing) remain on a closed lead.
    (menus,) = [block for block in message.blocks if block["type"] == "actions"]
    assert [e["action_id"] for e in menus["elements"]] == ["lead_rate_fit", "lead_rate_timing"]
    assert all(e["type"] == "static_select" for e in menus["elements"])
    assert "initial_option" not in menus["elements"][0]
    rated = replace(view(stage), fit_rating=4)
    menus = next(
        b for b in lead_message(rated, policy, BEFORE_DUE).blocks if b["type"] == "actions"
    )
    assert menus["elements"][0]["initial_option"]["value"] == "7:4:1"  # lead:rating:cycle
    assert "initial_option" not in menus["elements"][1]
    label = policy.disposition(view(stage).disposition_code or "")
    assert label is not None
    assert f"*{label.label}" in all_text(message)  # "*Qualified (SQL)*" for a qualified lead
    assert f"<@{OWNER}>: how good was this lead? (optional)" in all_text(message)
    assert f"Rated by <@{OWNER}>: fit 4" in all_text(lead_message(rated, policy, BEFORE_DUE))
    assert f"; owner <@{OWNER}>" in all_text(message)  # the owner, not who closed it


@pytest.mark.parametrize(
    ("by", "said"),
    [
        (None, "❌ *Not a fit* → Rejected on {date}; owner <@{owner}>"),  # the post: not known
        (OWNER, "❌ *Not a fit* → Rejected by <@{owner}> on {date}"),
        ("U0MGR1", "❌ *Not a fit* → Rejected by <@U0MGR1> on {date}; owner <@{owner}>"),
    ],
)
def test_the_outcome_names_who_made_it_only_when_known(
    policy: Policy, by: str | None, said: str
) -> None:
    lead = view(Stage.REJECT)
    assert lead.dispositioned_at is not None
    date = slack_date(lead.dispositioned_at, policy.timezone)
    message = lead_message(lead, policy, AFTER_DUE, dispositioned_by=by)
    (outcome,) = [line for line in all_text(message).splitlines() if "*Not a fit*" in line]
    assert outcome == said.format(date=date, owner=OWNER)


def test_the_lead_card_names_who_made_the_disposition_from_the_trail(policy: Policy) -> None:
    by_manager = [*events()[:6], EventView(7, "dispositioned", "U0MGR1", AFTER_DUE, {})]
    text = all_text(lead_card(view(Stage.REJECT), by_manager, policy, AFTER_DUE))
    assert "→ Rejected by <@U0MGR1> on " in text and f"; owner <@{OWNER}>" in text


def test_reject_shows_reason_and_escaped_note(policy: Policy) -> None:
    message = lead_message(view(Stage.REJECT), policy, BEFORE_DUE)
    text = all_text(message)
    assert "Reason: No budget" in text
    assert "Note: Budget frozen until July &amp; the CFO left." in text
    assert "Rejected" in message.text


def test_a_note_of_the_longest_the_modal_takes_shows_whole_on_the_lead_post(
    policy: Policy,
) -> None:
    """The disposition modal takes a note of NOTE_MAX (2,000) characters; the lead's post
    shows it whole, not cut at 1,500 with "…" (its outcome section has room: a section's
    text is at most 3,000 characters, block-kit/blocks/section-block)."""
    note = ("Budget frozen until July, the CFO left and procurement restarts. " * 40)[:NOTE_MAX]
    lead = replace(view(Stage.REJECT), disposition_note=note)
    message = lead_message(lead, policy, BEFORE_DUE)
    assert validate_blocks(message.blocks) == []
    assert f"Note: {note.strip()}" in all_text(message)


def test_clock_says_when_first_touch_is_due_with_a_date_token(policy: Policy) -> None:
    message = lead_message(view(Stage.MQL), policy, BEFORE_DUE)
    text = all_text(message)
    token = f"<!date^{int(DUE.timestamp())}^{{date_short_pretty}} {{time}}|Mon 23 Nov 13:00 AEDT>"
    # The post says the deadline alone: a span baked into it would stop counting down.
    assert f"🟢 First touch due by {token} · 2 business hours\n" in text + "\n"
    assert "left)" not in text
    assert "first touch due by Mon 13:00 AEDT" in message.text
    # `/lead` and App Home are rendered as they are read: they say the time left.
    live = clock_line(view(Stage.MQL), policy, BEFORE_DUE)
    assert live == f"🟢 First touch due by {token} · 2 business hours (1h of business time left)"


def test_an_overdue_claim_is_the_red_of_the_clock_line(policy: Policy) -> None:
    """Nobody claimed the lead by its claim deadline (12:00) while its first touch still has an
    hour: the line is red, and says first that the claim is overdue, so the colour and the
    words agree ("🔴 First touch due … (1h left)" read as a contradiction)."""
    claim_due = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Mon 11:30 AEDT
    lead = view(Stage.MQL, owner=None, claim_due_at=claim_due)
    text = all_text(lead_message(lead, policy, BEFORE_DUE))
    assert "🔴 Claim was due <!date^" in text
    assert "· first touch due by <!date^" in text
    assert "· 2 business hours" in text and "left)" not in text  # the post: no countdown
    live = clock_line(lead, policy, BEFORE_DUE)
    assert live.endswith("2 business hours (1h of business time left)")
    before = all_text(lead_message(lead, policy, claim_due - timedelta(minutes=5)))
    assert "Claim was due" not in before and "claim by <!date^" in before


def test_clock_says_overdue_by_working_time(policy: Policy) -> None:
    message = lead_message(view(Stage.MQL), policy, AFTER_DUE)
    text = all_text(message)
    assert "🔴 First touch was due <!date^" in text
    assert "· 2 business hours: overdue\n" in text + "\n"  # the post: no span to freeze
    assert "First touch due by" not in text and "overdue by" not in text
    live = clock_line(view(Stage.MQL), policy, AFTER_DUE)
    assert live.endswith("· 2 business hours: overdue by 2h 30m of business time")


def test_the_posts_text_tells_the_state_its_clock_line_tells(policy: Policy) -> None:
    """The `text` (what notifications, screen readers and search show) says what the blocks
    say: the first touch overdue since its deadline (an instant, which stays true however
    late it is read, as the post's "overdue" does), the claim overdue, the pool open, never
    "first touch due by" a deadline that has passed."""
    on_time = lead_message(view(Stage.MQL), policy, BEFORE_DUE).text
    assert on_time.endswith(", first touch due by Mon 13:00 AEDT · 2 business hours")
    late = lead_message(view(Stage.MQL), policy, AFTER_DUE)
    assert "🔴 First touch was due" in all_text(late)
    assert late.text.endswith(", first touch overdue since Mon 13:00 AEDT · 2 business hours")
    assert "due by" not in late.text
    claim_due = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Mon 11:30 AEDT
    unclaimed = view(Stage.MQL, claim_due_at=claim_due)
    assert lead_message(unclaimed, policy, BEFORE_DUE).text.endswith(
        ", claim overdue since Mon 11:30 AEDT, first touch due by Mon 13:00 AEDT · 2 business hours"
    )
    opened = replace(unclaimed, claim_opens_at=claim_due)  # `claim: assigned`: the window ended
    message = lead_message(opened, policy, BEFORE_DUE)
    assert "🔓 Open to the pool since" in all_text(message)
    assert message.text.endswith(", open to the pool since Mon 11:30 AEDT")
    held = lead_message(opened, policy, claim_due - timedelta(minutes=5)).text
    assert held.endswith(f", reserved for <@{OWNER}> until Mon 11:30 AEDT")
    longest = replace(hostile_view(Stage.MQL), claim_due_at=claim_due, claim_opens_at=claim_due)
    assert_valid_message(lead_message(longest, policy, BEFORE_DUE))  # within 3000


def test_overdue_clock_counts_only_working_time(policy: Policy) -> None:
    tuesday_morning = datetime(2026, 11, 23, 22, 15, tzinfo=UTC)  # Tue 09:15 AEDT
    text = clock_line(view(Stage.MQL), policy, tuesday_morning)
    assert text.endswith("overdue by 4h 15m of business time")


def test_engagement_shows_the_latest_three(policy: Policy) -> None:
    many = [
        {"type": "page_view", "title": f"Page {n}", "at": f"2026-11-{10 + n:02d}T01:00:00Z"}
        for n in range(6)
    ]
    text = all_text(lead_message(view(engagement=many), policy, BEFORE_DUE))
    assert "Page view: Page 5" in text and "Page 3" in text and "Page 2" not in text
    assert "…and 3 more" in text


def test_talk_track_follows_the_source_only_while_open(policy: Policy) -> None:
    assert "webinar they attended" in all_text(lead_message(view(), policy, BEFORE_DUE))
    closed = lead_message(view(Stage.SQL), policy, BEFORE_DUE)
    assert "Talk track" not in all_text(closed)


def test_many_dispositions_still_fit(policy: Policy) -> None:
    extra = [
        policy.dispositions[0].model_copy(update={"code": f"code_{n}", "label": f"Label {n}"})
        for n in range(20 - len(policy.dispositions))
    ]
    crowded = policy.model_copy(update={"dispositions": [*policy.dispositions, *extra]})
    message = lead_message(view(Stage.SAL), crowded, BEFORE_DUE)
    assert_valid_message(message)
    assert len(labels(message.blocks)) == 3 + 20


# --- hostile lead data -------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
def test_hostile_lead_data_stays_inert(policy: Policy, stage: Stage) -> None:
    message = lead_message(hostile_view(stage), policy, AFTER_DUE)
    assert_valid_message(message)
    assert_no_live_markup(message.blocks)
    assert_no_live_markup(message.text)
    assert "Smith &amp; Sons" in all_text(message)
    assert "&lt;!channel&gt;" in all_text(message)
    assert "🚀" in all_text(message)


def test_hostile_lead_data_in_every_other_message(policy: Policy) -> None:
    rejected = hostile_view(Stage.REJECT)
    for message in (
        feedback_message(rejected, policy),
        nurture_notice(hostile_view(Stage.NURTURE)),
        lead_card(rejected, events(), policy, AFTER_DUE),
    ):
        assert_valid_message(message)
        assert_no_live_markup(message.blocks)
        assert_no_live_markup(message.text)
    home = rep_home([hostile_view(Stage.SAL)], [hostile_view(Stage.MQL)], policy, AFTER_DUE)
    assert_valid_view(home)
    assert_no_live_markup(home)
    disposition = policy.disposition("not_a_fit")
    assert disposition is not None
    modal = disposition_modal(hostile_view(Stage.SAL), disposition)
    assert_valid_view(modal)
    assert_no_live_markup(modal["blocks"])


FRAGMENTS = st.sampled_from(
    ["<", ">", "&", "&amp;", "&lt;", "<!channel>", "<@U0REP1>", "<#C1|x>", "<http://x|y>", "\u202e"]
)
LEAD_TEXT = st.lists(st.one_of(st.text(max_size=40), FRAGMENTS), max_size=12).map("".join)
BIG_TEXT = st.one_of(LEAD_TEXT, LEAD_TEXT.map(lambda text: text * 200))


@settings(max_examples=150, deadline=None)
@given(
    stage=st.sampled_from([Stage.MQL, Stage.SAL, Stage.REJECT]),
    name=BIG_TEXT,
    title=LEAD_TEXT,
    company=BIG_TEXT,
    source=LEAD_TEXT,
    campaign=LEAD_TEXT,
    engagement_titles=st.lists(LEAD_TEXT, max_size=4),
)
def test_any_lead_text_renders_valid_and_inert(
    policy: Policy,
    stage: Stage,
    name: str,
    title: str,
    company: str,
    source: str,
    campaign: str,
    engagement_titles: list[str],
) -> None:
    lead = view(
        stage,
        name=name or None,
        title=title or None,
        company={"name": company, "industry": source},
        source=source or None,
        campaign=campaign or None,
        engagement=[{"type": "page", "title": item} for item in engagement_titles],
    )
    message = lead_message(lead, policy, BEFORE_DUE)
    assert_valid_message(message)
    assert_no_live_markup(message.blocks)
    assert_no_live_markup(message.text)


# --- escape, clip and friends ------------------------------------------------------------------


def test_escape_does_the_ampersand_first() -> None:
    assert escape("&lt;") == "&amp;lt;"
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("a\x00b\x1b\x7fc\u202ed\u2066e") == "abcde"
    assert escape("line\nnext\tcol") == "line\nnext\tcol"
    assert escape(42) == "42"


def test_clip_keeps_short_text_and_marks_a_cut() -> None:
    assert clip("short", 10) == "short"
    assert clip("exactly10!", 10) == "exactly10!"
    assert clip("abcdefghijk", 5) == "abcd…"


@pytest.mark.parametrize("limit", range(2, 12))
def test_clip_never_cuts_inside_an_entity(limit: int) -> None:
    escaped = escape("a&b<c>d&&e")  # a&amp;b&lt;c&gt;d&amp;&amp;e
    cut = clip(escaped, limit)
    assert len(cut) <= limit
    assert not BARE_AMPERSAND.search(cut), cut
    assert escaped.startswith(cut.removesuffix("…"))


def test_clip_never_cuts_a_mention_or_a_date_token_in_half() -> None:
    token = slack_date(DUE, ZONE)
    for limit in range(2, 60):
        for text in (f"by <@{OWNER}> now", f"due {token} sharp"):
            cut = clip(text, limit)
            assert len(cut) <= limit
            assert cut.count("<") == cut.count(">"), cut


def test_whole_parts_never_cuts_a_part() -> None:
    parts = [f"<@{OWNER}> &amp; {number}" for number in range(5)]  # 17 characters each
    assert whole_parts(parts, "; ", 93) == "; ".join(parts)
    assert whole_parts(parts, "; ", 92) == "; ".join([*parts[:4], "…"])  # 77 characters
    assert whole_parts(parts, "; ", 58) == "; ".join([*parts[:3], "…"])
    assert whole_parts(parts, "; ", 57) == "; ".join([*parts[:2], "…"])
    assert whole_parts(parts, "; ", 38) == "; ".join([parts[0], "…"])
    assert whole_parts(parts[:1], "; ", 17) == parts[0]
    for limit in range(2, 30):  # a first part too long alone is clipped, whole entities too
        cut = whole_parts(parts, "; ", limit)
        assert len(cut) <= limit and cut.endswith("…")
        assert cut.count("<") == cut.count(">") and not BARE_AMPERSAND.search(cut), cut


def test_refusal_words_show_as_written_with_only_strict_mentions_live() -> None:
    assert as_mrkdwn("Usage: /lead <email or external id>, e.g. /lead jane@acme.com") == (
        "Usage: /lead &lt;email or external id&gt;, e.g. /lead jane@acme.com"
    )
    assert as_mrkdwn(f"Too late: claimed by <@{OWNER}> & <@W0ABC>.") == (
        f"Too late: claimed by <@{OWNER}> &amp; <@W0ABC>."
    )
    for hostile in ("<!channel>", "<!here>", "<@U1|x>", "<@u0rep1>", "<#C1>", "<http://x|y>"):
        assert as_mrkdwn(f"'{hostile}' is not a period") == f"'{escape(hostile)}' is not a period"
    assert as_mrkdwn("a\x00b") == "ab"


@settings(max_examples=150, deadline=None)
@given(text=LEAD_TEXT, limit=st.integers(min_value=2, max_value=120))
def test_safe_is_escaped_clipped_and_entity_whole(text: str, limit: int) -> None:
    result = safe(text, limit)
    assert len(result) <= limit
    assert "<" not in result and ">" not in result
    assert not BARE_AMPERSAND.search(result)
    assert escape(text).startswith(result.removesuffix("…"))


def test_safe_on_a_huge_field_is_quick_and_short() -> None:
    assert len(safe("&" * 1_000_000, 100)) <= 100


def test_plain_is_single_line_clipped_and_never_empty() -> None:
    assert plain("Log\ncall", 75) == "Log call"
    assert plain("\x00 ", 75) == "-"
    assert plain("x" * 100, 24) == "x" * 23 + "…"
    assert plain("Smith & Sons <b>", 75) == "Smith & Sons <b>"  # plain_text shows it literally


def test_slack_date_token_and_team_time() -> None:
    assert slack_date(DUE, ZONE) == (
        f"<!date^{int(DUE.timestamp())}^{{date_short_pretty}} {{time}}|Mon 23 Nov 13:00 AEDT>"
    )
    winter = datetime(2026, 7, 6, 3, 0, tzinfo=UTC)
    assert slack_date(winter, ZONE, "{date_short_pretty}").endswith("|Mon 06 Jul>")
    assert slack_date(winter, ZONE).endswith("|Mon 06 Jul 13:00 AEST>")
    assert team_time(DUE, ZONE) == "Mon 13:00 AEDT"
    assert team_time(DUE, "America/Los_Angeles") == "Sun 18:00 PST"


# --- the other messages and views --------------------------------------------------------------


def test_feedback_message_tells_marketing_what_and_why(policy: Policy) -> None:
    message = feedback_message(view(Stage.REJECT), policy)
    assert_valid_message(message)
    text = all_text(message)
    assert "*Not a fit* (reject)" in text
    assert "No budget" in text and f"<@{OWNER}>" in text
    assert "Budget frozen until July &amp; the CFO left." in text
    assert message.text.startswith("Not a fit (reject): Priya Raman")
    assert "reason: No budget" in message.text


def test_feedback_notification_names_the_source_as_its_blocks_do(policy: Policy) -> None:
    """Marketing's notification (the message's `text`) says "demo request", as the message
    does, not the key its system sent (`demo_request`)."""
    message = feedback_message(replace(view(Stage.REJECT), source="demo_request"), policy)
    assert "*Source*\ndemo request" in all_text(message)
    assert ", source demo request, " in message.text and "demo_request" not in message.text


@pytest.mark.parametrize("stage", [Stage.NURTURE, Stage.RECYCLE])
def test_feedback_message_for_nurture_and_recycle(policy: Policy, stage: Stage) -> None:
    assert_valid_message(feedback_message(view(stage), policy))


def test_nurture_notice_gives_the_reason(policy: Policy) -> None:
    lead = view(Stage.NURTURE, stage_reason="missing title; score 40 is below the MQL threshold 60")
    message = nurture_notice(lead)
    assert_valid_message(message)
    assert "score 40 is below the MQL threshold 60" in all_text(message)
    assert message.text.startswith("Not an MQL: Priya Raman")


def test_nurture_notice_without_a_stored_reason(policy: Policy) -> None:
    message = nurture_notice(view(Stage.NURTURE, stage_reason=None))
    assert_valid_message(message)
    assert "None" not in message.text
    assert "below the MQL definition" in all_text(message)


def test_lead_card_shows_the_timeline(policy: Policy) -> None:
    message = lead_card(view(Stage.REJECT), events(), policy, AFTER_DUE)
    assert_valid_message(message)
    text = all_text(message)
    assert "*Timeline*" in text
    assert f"claimed · <@{OWNER}>" in text
    assert "contact attempt (call #1)" in text
    assert "dispositioned as Not a fit (No budget)" in text  # its label, not its code
    assert "note added" in text and "· crm" in text
    assert "Lead 7 · external id hs-7" in text


def test_a_claim_from_someone_else_says_whom_the_lead_was_suggested_to(policy: Policy) -> None:
    """A claim's `from` (storage `_claimed`) moves the first touch's miss to the rep it was
    suggested to (docs/reports.md "By rep"): a manager reading the timeline must see it."""

    def claimed(minutes: int, actor: str, **data: Any) -> EventView:
        return EventView(7, "claimed", actor, POSTED + timedelta(minutes=minutes), data)

    history = [
        claimed(20, OWNER, **{"from": "U0REP3"}),  # suggested to U0REP3, claimed by the owner
        claimed(30, "U0REP4", **{"from": None}),  # suggested to nobody
        claimed(40, "U0REP5"),  # by the suggested rep, or written before claims said so
        claimed(50, "U0REP6", **{"from": HOSTILE}),  # not a user id: text, never a mention
    ]
    message = lead_card(view(Stage.SAL), history, policy, AFTER_DUE)
    assert_valid_message(message)
    text = all_text(message)
    assert f"claimed by <@{OWNER}> (suggested to <@U0REP3>)" in text
    assert "claimed by <@U0REP4> (suggested to nobody)" in text
    assert "claimed · <@U0REP5>" in text  # as before
    assert "<!channel>" not in text and "<@U0REP1>" not in text
    assert_no_live_markup(message.blocks, (OWNER, "U0REP3", "U0REP4", "U0REP5", "U0REP6"))


def test_look_ups_are_one_line_and_never_push_the_history_out(policy: Policy) -> None:
    looked = [
        EventView(7, "viewed", "U0MGR1", AFTER_DUE + timedelta(minutes=n), {}) for n in range(60)
    ]
    text = all_text(lead_card(view(Stage.REJECT), events() + looked, policy, AFTER_DUE))
    assert "received" in text and "contact attempt (call #1)" in text  # still there
    assert text.count("looked up") == 1 and "looked up 60 times, last <!date^" in text
    assert "earlier events not shown" not in text


def test_lead_card_tells_the_escalations(policy: Policy) -> None:
    def event(event_type: str, minutes: int, **data: Any) -> EventView:
        return EventView(7, event_type, "handoff", POSTED + timedelta(minutes=minutes), data)

    until = (POSTED + timedelta(hours=2)).isoformat()
    history = [
        event("escalated", 30, ladder="unclaimed", step=50, action="remind_channel"),
        event("escalated", 90, ladder="unclaimed", step=150, action="reassign"),
        event("escalated", 91, ladder="no_touch", step="200%", action="reassign"),  # as stored
        event("reassigned", 90, **{"from": OWNER, "to": "U0REP2", "why": "unclaimed"}),
        event("snoozed", 95, by="U0MGR1", until=until),
        event("snoozed", 96, by="U0MGR1", until=HOSTILE),
        event("recycled_back", 99, cycle=1),
        event("escalated", 100, ladder=HOSTILE, step=HOSTILE, action=HOSTILE),
    ]
    message = lead_card(view(Stage.MQL), history, policy, AFTER_DUE)
    assert_valid_message(message)
    text = all_text(message)
    # Each clock named as `/sla` names it, not by the SLA file's key (`unclaimed`, `no_touch`).
    assert "escalated (claim overdue at 50%: reminder in the channel)" in text
    assert "escalated (claim overdue at 150%: reassigned)" in text
    assert "escalated (first touch overdue at 200%: reassigned)" in text and "%%" not in text
    assert "unclaimed at" not in text and "no touch" not in text
    assert f"reassigned from <@{OWNER}> to <@U0REP2>" in text
    assert "escalations snoozed until <!date^" in text
    assert "back from recycling: a new cycle" in text
    assert "<!channel>" not in text and "<@U0HOSTILE" not in text


def test_lead_card_fallback_is_escaped_once(policy: Policy) -> None:
    lead = view(Stage.SQL, company={"name": "Smith & Sons"})
    message = lead_card(lead, [], policy, AFTER_DUE)
    assert_valid_message(message)
    assert "No events yet." in all_text(message)
    assert "Smith &amp; Sons" in message.text
    assert "&amp;amp;" not in message.text


def test_lead_card_with_a_long_history_stays_valid(policy: Policy) -> None:
    history = [
        EventView(7, "attempt", OWNER, POSTED + timedelta(hours=n), {"kind": "email", "number": n})
        for n in range(200)
    ]
    assert_valid_message(lead_card(view(Stage.SAL), history, policy, AFTER_DUE))


def test_sla_summary_is_the_agreement_on_one_page(policy: Policy) -> None:
    message = sla_summary(policy)
    assert_valid_message(message)
    text = all_text(message)
    assert f"version `{policy.version}`" in text
    assert "<#C0ENT>" in text and "<@U0REP1> <@U0REP2>" in text
    assert "first touch within 2 business hours" in text
    assert "*first feedback* within 72 hours of the claim" in text
    assert "*final disposition* within 2 weeks of the claim (the cadence's end)" in text
    assert (
        "claim overdue: at 50% reminder in the channel → at 100% managers alerted → at 150% "
        "reassigned"
    ) in text  # in words, not the file's keys
    assert "→ Qualified (SQL)" in text and "→ sql" not in text
    assert "*Business time*: Mon, Tue, Wed, Thu, Fri 09:00–17:00" in text
    assert "with these fields filled in: email, company name, title" in text
    assert "a touch every 56 hours after the latest attempt (every attempt counts)" in text
    assert "recycled leads return after 30 days" in text
    for item in policy.dispositions:
        assert f"*{item.label}*" in text
    assert "Not ICP" in text
    assert "First-touch compliance*: MQLs first touched by their deadline" in text
    assert "target 90%" in text and "no target (`targets.win_rate`)" in text
    assert "<@U0MGR1> <@U0MGR2>" in text
    # The MQL definition, the workshop's output, signal by signal.
    assert "• fit: 51+ employees +20" in text
    assert "• intent: Pricing page: page view, url has /pricing, in the last 7 days +20" in text
    assert "• intent: Demo request: demo request, in the last 30 days +40 (qualifies alone)" in text


def test_sla_summary_shows_every_segment_and_rep_of_a_large_pool(policy: Policy) -> None:
    """A pool of 400 reps passes one section's 3,000 characters: the segments after it and
    the reps past the limit were cut off behind an ellipsis. Every rep and segment is shown,
    each mention whole (Block Kit's section text: at most 3,000 characters)."""
    content = snapshot(policy)
    reps = [f"U0R{number:04d}" for number in range(400)]
    content["segments"][0]["reps"] = reps
    big = parse_policy(content)
    message = sla_summary(big)
    assert_valid_message(message)
    texts = [block["text"]["text"] for block in message.blocks if block["type"] == "section"]
    shown = "\n".join(texts)
    for rep in reps:
        assert shown.count(f"<@{rep}>") == 1, rep
    for segment in big.segments:
        assert f"<#{segment.channel}>" in shown, segment.name
    assert not any(text.endswith("…") for text in texts)
    assert "*Speed to lead*" in shown and "*Dispositions*" in shown


def crowded_sla(policy: Policy, reasons: int, width: int, managers: int, fill: str = "x") -> Policy:
    """The example SLA with 20 dispositions (Handoff's most) of `reasons` reasons `width`
    characters long (`fill` after a `&` to escape), and `managers` managers."""
    content = snapshot(policy)
    extra = [
        {
            "code": f"reject_{number:02d}",
            "label": f"Reject {number:02d}",
            "outcome": "reject",
            "reasons": [
                f"R{number:02d}-{item:03d} & " + fill * (width - 10) for item in range(reasons)
            ],
        }
        for number in range(20 - len(content["dispositions"]))
    ]
    content["dispositions"] = [*content["dispositions"], *extra]
    content["managers"] = [f"U0M{number:04d}" for number in range(managers)]
    return parse_policy(content)


def section_texts(message: Message) -> list[str]:
    return [block["text"]["text"] for block in message.blocks if block["type"] == "section"]


def context_texts(message: Message) -> list[str]:
    return [
        element["text"]
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
    ]


def test_sla_summary_shows_every_disposition_reason_and_manager(policy: Policy) -> None:
    """12 rejections of 40 long reasons each pass a section's 3,000 characters, and 200
    managers a context element's 2,000 (Block Kit: docs.slack.dev/reference/block-kit/blocks/
    section-block, context-block): both were clipped behind an ellipsis, the dispositions after
    the cut and the managers past it gone. Whole lines in as many blocks as they take."""
    crowded = crowded_sla(policy, reasons=40, width=45, managers=200)
    message = sla_summary(crowded)
    assert_valid_message(message)
    sections = section_texts(message)
    shown = "\n".join(sections)
    assert not any(text.endswith("…") for text in sections)
    for item in crowded.dispositions:
        assert f"• *{escape(item.label)}* → " in shown, item.label
        for reason in item.reasons:
            assert shown.count(escape(reason)) == 1, reason
    assert "→ rejected: marketing hears the reason (reason: Not ICP, No budget, " in shown
    contexts = context_texts(message)
    assert contexts[0].startswith("Managers: <@U0M0000> <@U0M0001> ")
    for manager in crowded.managers:
        assert sum(text.count(f"<@{manager}>") for text in contexts) == 1, manager
    assert not any(text.endswith("…") for text in contexts)
    assert "*KPIs and targets*" in shown and "not shown" not in str(message.blocks)


def test_sla_summary_past_50_blocks_counts_the_dispositions_not_shown_in_full(
    policy: Policy,
) -> None:
    """20 dispositions of 100 reasons of 75 `&` (the most a file may have; 375 characters each
    escaped) are more than 50 sections hold: every part of the page is still there, and what
    is left out is counted."""
    crowded = crowded_sla(policy, reasons=100, width=75, managers=2000, fill="&")
    message = sla_summary(crowded)
    assert_valid_message(message)
    shown = "\n".join(section_texts(message))
    contexts = context_texts(message)
    unshown = [text for text in contexts if "dispositions not shown in full" in text]
    assert len(unshown) == 1 and unshown[0].endswith(
        "(Slack shows 50 blocks in a message at most): `handoff check` lists them all."
    )
    count = int(unshown[0].split(" ")[0])
    assert 0 < count <= 20
    labels = [item.label for item in crowded.dispositions]
    assert all(f"• *{escape(label)}* → " in shown for label in labels[: 20 - count])
    for manager in crowded.managers:  # every manager still named
        assert sum(text.count(f"<@{manager}>") for text in contexts) == 1, manager
    for part in ("*Speed to lead*", "*Escalation*", "*KPIs and targets*", "<#C0SMB>"):
        assert part in shown, part


def test_managers_past_the_room_are_counted() -> None:
    many = [f"U0M{number:04d}" for number in range(2000)]
    blocks = manager_blocks(many, 1)
    assert_valid_blocks(blocks)
    (block,) = blocks
    *named, last = [element["text"] for element in block["elements"]]
    listed = " ".join(named).removeprefix("Managers: ").split(" ")
    assert listed == [f"<@{manager}>" for manager in many[: len(listed)]]
    assert last == (
        f"{2000 - len(listed)} more managers not shown (Slack shows 50 blocks in a message at "
        "most): `handoff check` lists them all."
    )


def test_the_score_block_shows_a_crm_score_beside_ours_and_the_top_reasons() -> None:
    reasons = [OWN_SCORE, "Pricing page 2 days ago +20", "240 employees +20", "<!here> +5", "x +1"]
    crm = replace(view(Stage.MQL), score=72, handoff_score=65, score_reasons=reasons)
    assert score_text(crm) == (
        "CRM score 72 (hot) · Handoff 65\n"
        "Pricing page 2 days ago +20 · 240 employees +20 · &lt;!here&gt; +5 · +1 more (+1)"
    )
    # Stored before Handoff kept its own beside it: the one score it has.
    older = replace(crm, handoff_score=None, score_reasons=[OWN_SCORE])
    assert score_text(older) == "72 (hot)"
    assert score_text(replace(crm, score_reasons=["240 employees +20"])) == (
        "72 (hot)\n240 employees +20"
    )


def test_disposition_modal_requires_reason_and_note(policy: Policy) -> None:
    disposition = policy.disposition("not_a_fit")
    assert disposition is not None
    lead = view(Stage.SAL)
    modal = disposition_modal(lead, disposition, lead.owner)
    assert_valid_view(modal)
    inputs = {block["block_id"]: block for block in modal["blocks"] if block["type"] == "input"}
    assert set(inputs) == {"reason", "note", "fit", "timing"}
    # A manager who dispositions for the owner is not asked to rate: the rating is the owner's.
    for_manager = disposition_modal(lead, disposition, "U0MGR1")
    assert {b["block_id"] for b in for_manager["blocks"] if b["type"] == "input"} == {
        "reason",
        "note",
    }
    for name in ("reason", "note"):
        assert not inputs[name].get("optional", False)
    for name in ("fit", "timing"):  # the owner's rating: optional, one click each
        assert inputs[name]["optional"] is True
        assert inputs[name]["element"]["type"] == "static_select"
        assert [o["value"] for o in inputs[name]["element"]["options"]] == list("12345")
    options = inputs["reason"]["element"]["options"]
    assert [option["value"] for option in options] == disposition.reasons
    assert [option["text"]["text"] for option in options] == disposition.reasons
    assert inputs["note"]["element"]["type"] == "plain_text_input"
    assert json.loads(modal["private_metadata"]) == {"lead_id": 7, "code": "not_a_fit"}
    assert modal["title"]["text"] == "Not a fit"


def rep_home(
    owned: list[LeadView], suggested: list[LeadView], policy: Policy, now: datetime
) -> dict[str, Any]:
    """A rep's App Home (bot/slack/home.py) showing these leads."""
    queue = Queue(owned, suggested, len(owned), len(suggested), rep=True)
    versions = {lead.sla_version: policy for lead in [*owned, *suggested]}
    return home_view(HomeState(policy, versions, queue, None), now)


def mrkdwn_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn":
            yield value
        for item in value.values():
            yield from mrkdwn_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from mrkdwn_objects(item)


@pytest.mark.parametrize("stage", list(Stage))
def test_slack_never_parses_lead_text_for_mentions_or_links(policy: Policy, stage: Stage) -> None:
    # A lead named "@here" or "#general" must stay text: mrkdwn is verbatim everywhere.
    lead = view(stage, name="@here #general https://evil.example")
    surfaces: list[Any] = [
        lead_message(lead, policy, BEFORE_DUE).blocks,
        feedback_message(lead, policy).blocks,
        nurture_notice(lead).blocks,
        lead_card(lead, events(), policy, BEFORE_DUE).blocks,
        rep_home([lead], [], policy, BEFORE_DUE),
    ]
    found = [obj for surface in surfaces for obj in mrkdwn_objects(surface)]
    assert found and all(obj.get("verbatim") is True for obj in found)


def test_progressing_is_feedback_asked_once_and_the_lead_shows_both_deadlines(
    policy: Policy,
) -> None:
    claimed_at = POSTED + timedelta(minutes=20)
    working = view(
        Stage.SAL,
        disposition_due_at=claimed_at + timedelta(hours=72),
        final_due_at=claimed_at + timedelta(weeks=2),
    )
    message = lead_message(working, policy, BEFORE_DUE)
    buttons = {
        button["text"]["text"]: button
        for block in message.blocks
        if block["type"] == "actions"
        for button in block["elements"]
        if button["type"] == "button"  # not the managers' Reassign menu
    }
    progressing = buttons["Contacted – progressing"]
    assert progressing["confirm"]["title"]["text"] == "Record feedback?"
    assert "the lead stays open" in progressing["confirm"]["text"]["text"]
    text = all_text(message)
    assert "feedback due by" in text and "· 72 hours" in text
    assert "final disposition due by" in text and "· 2 weeks" in text
    # Past both deadlines: each says it was due, and (rendered as read) by how much.
    later = working.final_due_at + timedelta(days=3)
    text = clock_line(working, policy, later)
    assert "🔴 feedback was due <!date^" in text and "· 72 hours: overdue by" in text
    assert "🔴 final disposition was due <!date^" in text and "· 2 weeks: overdue by 3d" in text
    assert " due by <" not in text  # no deadline left to come
    post = all_text(lead_message(working, policy, later))
    assert "· 72 hours: overdue" in post and "· 2 weeks: overdue" in post
    assert "overdue by" not in post

    given = replace(working, feedback_at=claimed_at + timedelta(hours=3))
    text = all_text(lead_message(given, policy, BEFORE_DUE))
    assert "Contacted – progressing" not in text  # asked once: only the final outcomes remain
    assert "feedback given" in text and "Qualified" in text


def test_a_lead_that_never_qualified_is_not_called_an_mql(policy: Policy) -> None:
    kept = replace(view(Stage.NURTURE), posted_at=None, owner=None, disposition_code=None, score=20)
    text = all_text(lead_card(kept, [], policy, AFTER_DUE))
    assert "🌱 Not an MQL: Priya Raman at Northwind Logistics · *Kept in nurture*" in text
    assert "MQL:" not in text.replace("Not an MQL:", "") and "Back to marketing" not in text
    assert "*Score*\n20\n" in text  # no tier: a tier is a promise to sales


def test_a_dispositions_confirmation_dialog_is_plain_text_slack_accepts(policy: Policy) -> None:
    """Slack's confirmation dialog takes plain_text only (its title, text and buttons): the
    claimed lead's message, with its dialogs, is one Slack accepts, and a label reads as typed."""
    labelled = [
        item.model_copy(update={"label": "R&D <later>"}) if item.code == "bad_timing" else item
        for item in policy.dispositions
    ]
    message = lead_message(
        view(Stage.SAL), policy.model_copy(update={"dispositions": labelled}), POSTED
    )
    assert validate_blocks(message.blocks) == []
    dialogs = [button["confirm"] for button in buttons(message.blocks) if "confirm" in button]
    assert dialogs and all(dialog["text"]["type"] == "plain_text" for dialog in dialogs)
    assert any("Mark it “R&D <later>” (nurture)." == dialog["text"]["text"] for dialog in dialogs)


def test_a_lead_back_in_the_pool_after_its_first_touch_does_not_say_it_is_overdue(
    policy: Policy,
) -> None:
    """A lead released to the pool (its owner away) after its owner had touched it: its post
    said "🔴 First touch was due …: overdue", and its text "first touch overdue since", though
    the first touch was made in time; it says when the first touch came, as a claimed one does."""
    touched = view(Stage.MQL, owner=None, first_touch_at=POSTED + timedelta(minutes=30))
    message = lead_message(touched, policy, AFTER_DUE)
    assert "overdue" not in all_text(message) and "overdue" not in message.text, message.text
    assert "first touch after 30m of business time ✅" in clock_line(touched, policy, AFTER_DUE)


def test_the_qualified_confirmation_says_sql_as_the_seeds_write_it(policy: Policy) -> None:
    """The dialog before "Qualified" names the stage as everything else does (SQL: seed 001's
    lifecycle stages), not by the SLA file's lower-case outcome key (`sql`)."""
    message = lead_message(view(Stage.SAL), policy, POSTED)
    dialogs = {
        button["text"]["text"]: button["confirm"]["text"]["text"]
        for button in buttons(message.blocks)
        if "confirm" in button
    }
    assert dialogs["Qualified"] == "Mark it “Qualified” (SQL)."
    assert dialogs["Bad timing"] == "Mark it “Bad timing” (nurture)."

"""Hostile lead payloads: nothing a marketing system sends can ping, link or break Block Kit.

Hypothesis builds `POST /leads` bodies whose every text field mixes Slack control sequences,
mrkdwn, control and bidi characters, emoji, right-to-left scripts and very long strings. Each
valid one is routed the way the intake service routes it, taken through the lead's stages, and
rendered on every Slack surface that shows lead data; every message and view must pass the
simulator's Block Kit validation and carry no live mention, link or control character that came
from the lead.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain import escalation
from bot.domain.access import Action, refusal
from bot.domain.intake import parse_lead
from bot.domain.lead import EventView, LeadView, Stage
from bot.domain.plan import Goal, History, build_plan
from bot.domain.report import Counts, Facts, Group, Times, build_report, week_of
from bot.domain.rotation import take_turn
from bot.services.leads import Services
from bot.services.policies import PolicyBook, load_policy
from bot.simulator.blockkit import validate_blocks, validate_view
from bot.slack.alert_views import (
    channel_reminder,
    claimed_alert,
    closed_alert,
    delivery_alert,
    manager_alert,
    owner_reminder,
    publish_failed,
    reassign_note,
    reassigned_alert,
    reassigned_dm,
    settled_alert,
    snooze_note,
    snoozed_alert,
)
from bot.slack.blocks import Message
from bot.slack.home import Dashboard, HomeState, Queue, home_view
from bot.slack.lead_views import (
    disposition_modal,
    feedback_message,
    lead_card,
    lead_message,
    nurture_notice,
)
from bot.slack.plan_view import revenue_plan
from bot.slack.report_views import compliance_alert, rejection_summary, sla_report
from bot.slack.sla_view import sla_summary
from bot.slack.text import as_mrkdwn, clip, escape, one_line, plain, safe, typed
from handlers.context import CONTEXT_KEY, Asked
from handlers.slack_listeners import HELP, Listeners
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 11:00 in Sydney
POLICY = load_policy(str(ROOT / "sla.yaml"))
SEGMENT_CHANNELS = [segment.channel for segment in POLICY.segments]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- what a hostile marketing system can send ----------------------------------------------------

SLACK_MARKUP = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<!subteam^S0123|@sales>",
    "<!date^1795392000^{date_short_pretty}|Mon>",
    "<@U123ABC>",
    "<@U0REP1>",  # a real rep of the SLA: lead data must not mention them either
    "<@W0REP1|maya>",
    "<#C123|general>",
    "<#C0ENT>",
    "<http://evil.example|click>",
    "<https://bank.example.evil/login|Your bank>",
    "<mailto:x@y|z>",
    "<tel:+61255501234|call me>",
    "&lt;!channel&gt;",
    "&amp;",
    "&lt;",
    "&gt;",
    "&#60;!here&#62;",
    "&",
    "<",
    ">",
    "<<!channel>>",
    "<!channel",
    "https://evil.example/?a=1&b=<2>",
]
MARKDOWN = ["*", "_", "~", "`", "```", "> ", "\n> quoted", "\n• item", "*bold*", ":rocket:", "|"]
CONTROL = [chr(code) for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))]
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u200f",
    "\u061c",  # Arabic letter mark
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u2028",  # line separator
    "\u2029",
    "\ufeff",
    "\u00ad",
]
EMOJI = ["🚀", "👩‍💼", "👨‍👩‍👧‍👦", "👍🏽", "🧑🏿‍🚀", "🏳️‍🌈", "🇦🇺", "❤️", "🫠", "1️⃣"]
RTL = ["مرحبا بالعالم", "שלום עולם", "شركة الأمل", "ܫܠܡܐ", "אבג 123 <!here>"]

FRAGMENT = st.one_of(
    st.sampled_from(SLACK_MARKUP),
    st.sampled_from(MARKDOWN),
    st.sampled_from(CONTROL),
    st.sampled_from(INVISIBLE),
    st.sampled_from(EMOJI),
    st.sampled_from(RTL),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
    st.text(max_size=12),  # anything else (hypothesis never yields lone surrogates)
    st.sampled_from(["", " ", "\t", "\n", "  \n\t "]),
)
MIXED = st.lists(FRAGMENT, max_size=14).map("".join)


def hostile_text(max_len: int) -> st.SearchStrategy[str]:
    """Mixed hostile text that fits `max_len`, sometimes filled right up to it."""
    filled = st.tuples(MIXED.filter(bool), st.integers(max(1, max_len - 40), max_len)).map(
        lambda pair: (pair[0] * (pair[1] // len(pair[0]) + 1))[: pair[1]]
    )
    return st.one_of(MIXED.map(lambda text: text[:max_len]), filled)


def huge_text(size: int = 10_000) -> st.SearchStrategy[str]:
    """Up to `size` characters of hostile text (for fields past intake's limits)."""
    return st.tuples(MIXED.filter(bool), st.integers(1, size)).map(
        lambda pair: (pair[0] * (pair[1] // len(pair[0]) + 1))[: pair[1]]
    )


def named(text: str) -> str:
    """Text that survives intake's whitespace strip, so required fields are mostly present."""
    return text if text.strip() else f"Acme{text}"[:500]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


EMAIL_LOCAL = MIXED.map(lambda text: re.sub(r'[@\s,;<>"]', "", text)[:60] or "eve")
EMAIL = st.builds(
    lambda local, domain: f"{local}@{domain}.example",
    EMAIL_LOCAL,
    st.sampled_from(["evil", "ok", "ex&mple", "!here", "шрифт", "🚀"]),
)
SENSIBLE_INSTANT = st.one_of(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.isoformat()),
    st.sampled_from(["2026-11-18T23:00:00Z", "2026-11-19T09:30:00+11:00"]),
)
ODD_INSTANT = st.sampled_from(
    [
        "9999-12-31T23:59:59Z",  # no time zone east of UTC can show it
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-05:00",
        "1969-07-20T20:17:00Z",
        "2026-11-20T09:30:00",  # no time zone: refused, not guessed
        "<!channel>",
    ]
)
# Mostly sensible, so most payloads get through intake; the odd ones must be refused cleanly.
INSTANT = st.integers(0, 9).flatmap(lambda n: ODD_INSTANT if n == 0 else SENSIBLE_INSTANT)
KNOWN_SOURCES = ["webinar", "demo_request", "content_download", "event", "pricing", "referral"]
ENGAGEMENT = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(KNOWN_SOURCES), hostile_text(100))},
    optional={
        "title": optional(hostile_text(2000)),
        "url": optional(hostile_text(3000)),
        "at": optional(INSTANT),
    },
)
COMPANY = st.fixed_dictionaries(
    {"name": st.one_of(hostile_text(500).map(named), st.none())},
    optional={
        "domain": optional(hostile_text(255)),
        "employees": optional(st.sampled_from([0, 10, 250, 999, 1000, 5000, 10_000_000])),
        "industry": optional(hostile_text(200)),
        "country": optional(hostile_text(100)),
    },
)
LEAD_PAYLOAD = st.fixed_dictionaries(
    {
        "external_id": hostile_text(255).map(lambda text: text if text.strip() else "x" + text),
        "email": EMAIL,
        "name": optional(hostile_text(500)),
        "title": hostile_text(500).map(named),
        "company": COMPANY,
        # Mostly MQLs (the message with the most lead data), some below the bar or unscored.
        "score": st.one_of(*[st.integers(60, 100)] * 3, st.none(), st.integers(0, 100)),
    },
    optional={
        "phone": optional(hostile_text(100)),
        "source": optional(st.one_of(st.sampled_from(KNOWN_SOURCES), hostile_text(200))),
        "campaign": optional(hostile_text(500)),
        "segment": optional(st.sampled_from(["enterprise", "smb", "<!here>", "mid_market"])),
        "engagement": st.lists(ENGAGEMENT, max_size=6),
        "received_at": optional(INSTANT),
        "<!channel>": MIXED,  # unknown keys are kept in the raw payload only
    },
)

# --- building the lead as the product does -------------------------------------------------------


def routed(payload: dict[str, Any]) -> LeadView | None:
    """The lead `POST /leads` would store for `payload` (None: intake refuses it)."""
    lead_in, errors = parse_lead(payload)
    if lead_in is None:
        assert errors
        for error in errors:
            assert error.field and error.message
        return None
    # The intake service's own routing, so this test follows the product when it changes.
    services = Services(cast(Any, None), PolicyBook(cast(Any, None), POLICY), cast(Any, None))
    new = services.route(lead_in, payload, NOW, "api")
    columns = new.columns()
    values = json.loads(json.dumps(columns, default=str))  # the JSON columns round-trip
    for key in (
        "received_at",
        "first_touch_due_at",
        "cycle_started_at",
        "claim_due_at",
        "next_action_at",
    ):
        values[key] = columns.get(key)
    given = set(LeadView.__dataclass_fields__) - {"suggested_owner", "posted_at"}
    fields = {name: values[name] for name in given if name in values}
    fields["stage"] = Stage(values["stage"])
    rotation = new.rotation
    turn = take_turn(rotation.rules, {}) if rotation else None
    suggested = turn.rep if turn else new.lead.suggested_owner
    if rotation and turn:
        fields["route_reason"] = rotation.reason | {"rep": turn.rep, "week": 1, "week_total": 1}
    return LeadView(id=41, suggested_owner=suggested, posted_at=NOW, **fields)


def claimed(lead: LeadView, owner: str, attempts: int) -> LeadView:
    touched = NOW + timedelta(hours=1) if attempts else None
    return replace(
        lead,
        stage=Stage.SAL,
        owner=owner,
        claimed_at=NOW + timedelta(minutes=20),
        first_touch_at=touched,
        attempts=attempts,
        disposition_due_at=NOW + timedelta(days=3),
    )


def closed(lead: LeadView, code: str, reason: str | None, note: str | None) -> LeadView:
    disposition = POLICY.disposition(code)
    assert disposition is not None
    stage = {"sql": Stage.SQL, "reject": Stage.REJECT, "nurture": Stage.NURTURE}
    return replace(
        lead,
        stage=stage.get(disposition.outcome, Stage.RECYCLE),
        disposition_code=code,
        disposition_reason=reason,
        disposition_note=note,
        dispositioned_at=NOW + timedelta(days=2),
    )


def history(lead: LeadView, owner: str, attempts: int, hostile: str) -> list[EventView]:
    """The lead's events as the services record them, plus a hostile one from an integration."""

    def event(event_type: str, actor: str, minutes: int, /, **data: Any) -> EventView:
        return EventView(lead.id, event_type, actor, NOW + timedelta(minutes=minutes), data)

    events = [
        event("received", "api", 0, source="api", score=lead.score, segment=lead.segment),
        event("mql", "handoff", 0, tier=lead.tier, reasons=lead.score_reasons),
        event("posted", "handoff", 1),
        event("claimed", owner, 20),
    ]
    events += [
        event("attempt", owner, 60 + n, kind=("email", "call", "linkedin")[n % 3], number=n + 1)
        for n in range(attempts)
    ]
    events.append(event("dispositioned", owner, 3000, code="not_a_fit", reason="No budget"))
    # Not something Handoff records today: CRM activity may bring its own words and actors.
    events.append(event(hostile[:40] or "crm_note", hostile[:40] or "crm", 3001, note=hostile))
    events.append(event("nurture", "handoff", 3002, reason=hostile))
    return events


def surfaces(
    lead: LeadView, note: str, attempts: int
) -> Iterator[tuple[str, Message | dict[str, Any], LeadView]]:
    """Every Slack surface that shows this lead's data, at each stage of its life."""
    reps = POLICY.segments[0].reps
    owner = reps[attempts % len(reps)]  # any rep of the pool
    working = claimed(lead, owner, attempts)
    rejected = closed(working, "not_a_fit", "No budget", note)
    yield "lead_message/new", lead_message(lead, POLICY, NOW), lead
    yield "lead_message/overdue", lead_message(lead, POLICY, NOW + timedelta(days=9)), lead
    yield "lead_message/claimed", lead_message(working, POLICY, NOW + timedelta(hours=2)), working
    yield "lead_message/rejected", lead_message(rejected, POLICY, NOW), rejected
    yield "feedback/rejected", feedback_message(rejected, POLICY), rejected
    for code in ("bad_timing", "no_response", "qualified"):
        done = closed(working, code, None, note if code != "qualified" else None)
        yield f"lead_message/{code}", lead_message(done, POLICY, NOW), done
        if code != "qualified":
            yield f"feedback/{code}", feedback_message(done, POLICY), done
    yield "nurture_notice", nurture_notice(lead), lead
    events = history(lead, owner, attempts, note)
    yield "lead_card/open", lead_card(working, events, POLICY, NOW), working
    yield "lead_card/rejected", lead_card(rejected, events, POLICY, NOW), rejected
    yield "home", app_home([working, working], [lead], overdue=[lead, working]), working
    for disposition in POLICY.dispositions:
        if disposition.reason_required:
            yield (
                f"modal/{disposition.code}",
                disposition_modal(working, disposition, working.owner),
                working,
            )
    alert = delivery_alert("post_lead", lead.channel, "invalid_blocks", None, lead)
    yield "delivery_alert", Message(text=alert, blocks=[]), lead


# --- what every rendering must satisfy -----------------------------------------------------------

DATE_TOKEN = re.compile(r"<!date\^-?\d+\^\{date_short_pretty\}(?: \{time\})?\|[A-Za-z0-9 :+\-]+>")
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
# Control characters, bidi embeddings/overrides/isolates and line separators: never shown.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
CONTEXT_LIMIT = 2000  # per element; the simulator allows Slack's 3000, Handoff keeps to less


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a Block Kit payload, in a stable order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from strings(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def text_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            yield value
        for item in value.values():
            yield from text_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from text_objects(item)


def app_home(
    owned: list[LeadView], suggested: list[LeadView], overdue: list[LeadView]
) -> dict[str, Any]:
    """A rep-and-manager's App Home showing these leads (its queue and the overdue list)."""
    # Distinct rows, as the database gives them (the same lead twice in one list cannot be).
    owned = [replace(lead, id=1000 + i) for i, lead in enumerate(owned)]
    suggested = [replace(lead, id=2000 + i) for i, lead in enumerate(suggested)]
    overdue = [replace(lead, id=3000 + i) for i, lead in enumerate(overdue)]
    empty = Facts({}, {}, {}, [])
    week = build_report(week_of(NOW.date(), POLICY.timezone), empty, empty, POLICY, NOW)
    queue = Queue(owned, suggested, len(owned), len(suggested), rep=True)
    versions = {lead.sla_version: POLICY for lead in [*owned, *suggested, *overdue]}
    state = HomeState(POLICY, versions, queue, Dashboard(week, overdue, False))
    return home_view(state, NOW)


def known_people(lead: LeadView) -> set[str]:
    """Slack users Handoff itself mentions on a lead's surfaces: its owner and suggested owner.

    Everyone else (managers, the other reps, the ids in SLACK_MARKUP) must never be mentioned.
    """
    return {user for user in (lead.owner, lead.suggested_owner) if user}


def leftover(text: str, people: set[str], channels: Collection[str]) -> str:
    """`text` without the markup Handoff puts there on purpose: dates, people and channels."""
    text = DATE_TOKEN.sub("", text)
    for user in people:
        text = text.replace(f"<@{user}>", "")
    for channel in channels:
        text = text.replace(f"<#{channel}>", "")
    return text


def assert_inert(
    payload: Any, people: set[str], where: str, channels: Collection[str] = ()
) -> None:
    """No live mention, link or broken entity from lead data; no control character at all."""
    for text in strings(payload):
        rest = leftover(text, people, channels)
        assert "<" not in rest and ">" not in rest, (where, rest[:400])
        assert not BARE_AMPERSAND.search(rest), (where, rest[:400])
        assert not FORBIDDEN.search(text), (where, text[:400])
        text.encode("utf-8")  # nothing Slack's JSON could not carry


def assert_context_fits(blocks: list[dict[str, Any]], where: str) -> None:
    """What the validator leaves out: the fallback and context limits Handoff keeps to."""
    for block in blocks:
        if block["type"] == "context":
            assert all(len(item["text"]) <= CONTEXT_LIMIT for item in block["elements"]), where


def assert_message_ok(
    message: Message, people: set[str], where: str, channels: Collection[str] = ()
) -> None:
    errors = validate_blocks(message.blocks)
    assert errors == [], (where, errors)
    assert message.text.strip(), where
    assert len(message.text) <= 3000, where
    assert_inert(message.blocks, people, where, channels)
    assert_inert(message.text, people, where, channels)
    for obj in text_objects(message.blocks):
        assert obj["text"].strip(), where
    assert_context_fits(message.blocks, where)
    json.dumps({"text": message.text, "blocks": message.blocks})


def assert_view_ok(view: dict[str, Any], people: set[str], where: str) -> None:
    errors = validate_view(view)
    assert errors == [], (where, errors)
    assert_context_fits(view["blocks"], where)
    # App Home names each lead's segment channel ("… in <#C0ENT>"): Handoff's own markup.
    channels = SEGMENT_CHANNELS if view.get("type") == "home" else ()
    assert_inert(view, people, where, channels)
    json.dumps(view)


def line_breaks(payload: Any) -> list[tuple[int, int]]:
    return [(text.count("\n"), text.count("\t")) for text in strings(payload)]


def plain_twin(lead: LeadView) -> LeadView:
    """The same lead with every single-line field from the sender replaced by a plain word."""

    def word(value: Any) -> Any:
        return "x" if isinstance(value, str) and value else value

    tracks = {key.lower() for key in POLICY.talk_tracks}
    return replace(
        lead,
        external_id="x",
        email="x@x.example",
        name=word(lead.name),
        title=word(lead.title),
        phone=word(lead.phone),
        company={key: word(value) for key, value in lead.company.items()},
        source=lead.source if (lead.source or "").lower() in tracks else word(lead.source),
        campaign=word(lead.campaign),
        engagement=[
            {key: word(v) if key != "at" else v for key, v in item.items()}
            for item in lead.engagement
        ],
    )


def visible_prefix(value: str, size: int = 20) -> str:
    """How the first characters of a lead's name must appear: escaped, on one line."""
    shown = escape(value.replace("\n", " ").replace("\t", " "))[:size]
    # clip() drops a cut entity and the zero-width joiners left dangling before its "…"
    return re.sub(r"(&[a-z]*|\u200d+)$", "", re.sub(r"&[a-z]*$", "", shown))


# --- the properties ------------------------------------------------------------------------------

NASTY = {
    "external_id": "<!channel>",
    "email": "*!here*&amp@evil.example",  # what an address may hold: no < > , ; "
    "name": "<!channel> Eve\n> *URGENT* <http://evil.example|reset your password>",
    "title": "<@U0REP1> <#C0ENT|sales> \u202eevil\u202c",
    "company": {"name": "مرحبا 👩‍💼 & <!everyone>", "employees": 5000, "domain": "\x00\x1b\x9b"},
    "score": 95,
    "source": "webinar",
    "engagement": [{"type": "web\tinar", "title": "a&lt;b" * 300, "at": "2026-11-18T23:00:00Z"}],
}


@SETTINGS
@given(
    payload=LEAD_PAYLOAD,
    note=st.one_of(hostile_text(2000), huge_text()),
    attempts=st.integers(0, 60),
)
@example(payload=NASTY, note="<!channel>\n" * 300, attempts=45)  # a long timeline
@example(
    payload={**NASTY, "engagement": [{"type": "x", "at": "9999-12-31T23:00:00Z"}]},
    note="ok",
    attempts=0,
)
def test_every_surface_of_a_hostile_lead_is_valid_and_inert(
    payload: dict[str, Any], note: str, attempts: int
) -> None:
    lead = routed(payload)
    if lead is None:
        return
    assert lead.stage in (Stage.MQL, Stage.NURTURE)
    twin = plain_twin(lead)
    note = note.strip() or "n"  # the service stores a stripped note, and none when empty
    plain_surfaces = {name: rendered for name, rendered, _ in surfaces(twin, note, attempts)}
    for name, rendered, shown in surfaces(lead, note, attempts):
        people = known_people(shown)
        if isinstance(rendered, Message):
            # Only the alert names a channel: the one Slack refused.
            channels = {lead.channel} if name == "delivery_alert" else set()
            assert_message_ok(rendered, people, name, channels)
        else:
            assert_view_ok(rendered, people, name)
        # Line breaks and tabs only where the renderer puts them: lead text cannot add lines.
        assert line_breaks(rendered) == line_breaks(plain_surfaces[name]), name
    message = lead_message(lead, POLICY, NOW)
    prefix = visible_prefix(lead.display_name)
    assert prefix in message.blocks[0]["text"]["text"]
    assert prefix in message.text


@SETTINGS
@example(stage=Stage.MQL, text="\u200d" * 2890, short="", engagement=0)  # only joiners
@given(
    stage=st.sampled_from(list(Stage)),
    text=huge_text(),
    short=hostile_text(80),
    engagement=st.integers(0, 8),
)
def test_fields_past_intake_limits_still_render_valid(
    stage: Stage, text: str, short: str, engagement: int
) -> None:
    """Stored leads from imports or older versions may hold 10k-character fields."""
    lead = LeadView(
        id=3,
        external_id=text,
        email=text,
        stage=stage,
        segment=text,
        channel="C0ENT",
        tier="hot",
        score=100,
        sla_version="v1",
        received_at=NOW,
        name=text,
        title=short,
        phone=text,
        company={"name": text, "industry": short, "country": text, "domain": text, "employees": 7},
        source=text,
        campaign=text,
        engagement=[{"type": short, "title": text, "url": text, "at": "2026-11-18T23:00:00Z"}]
        * engagement,
        score_reasons=[text, short, text],
        stage_reason=text,
        suggested_owner="U0REP1",
        owner="U0REP2" if stage is not Stage.MQL else None,
        posted_at=NOW,
        claimed_at=NOW + timedelta(minutes=5) if stage is not Stage.MQL else None,
        first_touch_due_at=NOW + timedelta(hours=2),
        attempts=3,
        disposition_code=None if stage.is_open else text,
        disposition_reason=None if stage.is_open else text,
        disposition_note=None if stage.is_open else text,
    )
    people = known_people(lead) | {"U0REP2"}  # who acted in the history below
    for name, message in (
        ("lead_message", lead_message(lead, POLICY, NOW)),
        ("feedback", feedback_message(lead, POLICY)),
        ("nurture_notice", nurture_notice(lead)),
        ("lead_card", lead_card(lead, history(lead, "U0REP2", 3, text), POLICY, NOW)),
    ):
        assert_message_ok(message, people, name)
        assert visible_prefix(text, 10) in message.text, name
    assert_view_ok(app_home([lead] * 25, [lead] * 25, overdue=[lead] * 10), people, "home")
    for disposition in POLICY.dispositions:
        if disposition.reason_required:  # the only ones that open the modal
            assert_view_ok(
                disposition_modal(lead, disposition, lead.owner), people, disposition.code
            )


@settings(max_examples=150, deadline=None)
@given(payload=LEAD_PAYLOAD, field=st.sampled_from(["name", "title", "campaign", "external_id"]))
def test_oversized_fields_are_refused_by_name(payload: dict[str, Any], field: str) -> None:
    payload = {**payload, field: "<!channel>" * 1000}  # 10,000 characters
    lead_in, errors = parse_lead(payload)
    assert lead_in is None
    assert field in {error.field for error in errors}


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00Z"],
)
def test_instants_no_zone_can_show_are_refused_not_crashed(moment: str) -> None:
    for payload in (
        {"external_id": "a", "email": "a@b.example", "received_at": moment},
        {"external_id": "a", "email": "a@b.example", "engagement": [{"type": "x", "at": moment}]},
    ):
        lead_in, errors = parse_lead(payload)
        assert lead_in is None
        assert [error.field for error in errors] in (["received_at"], ["engagement[0].at"])
        assert "date-time" in errors[0].message


def test_nul_characters_are_dropped_at_intake() -> None:
    """PostgreSQL refuses NUL in text columns: the lead would fail to store (a 500)."""
    lead_in, errors = parse_lead(
        {"external_id": "a\x00", "email": "a@b.example", "name": "Eve\x00 <!here>"}
    )
    assert lead_in is not None, errors
    assert (lead_in.external_id, lead_in.name) == ("a", "Eve <!here>")
    lead_in, errors = parse_lead({"external_id": "\x00", "email": "a@b.example"})
    assert lead_in is None and [error.field for error in errors] == ["external_id"]


def test_a_stored_engagement_instant_out_of_range_does_not_break_the_message() -> None:
    lead = routed({**NASTY})
    assert lead is not None
    odd = replace(
        lead, engagement=[{"type": "webinar", "title": "t", "at": "9999-12-31T23:00:00Z"}]
    )
    message = lead_message(odd, POLICY, NOW)
    assert_message_ok(message, known_people(odd), "odd instant")


def test_event_actors_and_types_are_only_mentioned_when_they_are_slack_ids() -> None:
    lead = routed({**NASTY})
    assert lead is not None
    events = [
        EventView(lead.id, "<!channel>", "U1> <!here", NOW, {}),
        EventView(lead.id, "claimed", "W0REP1", NOW, {}),
        EventView(lead.id, "note_added", "Uh oh <@U0MGR1|boss>", NOW, {}),
    ]
    card = lead_card(lead, events, POLICY, NOW)
    assert_message_ok(card, known_people(lead) | {"W0REP1"}, "card")
    text = "\n".join(strings(card.blocks))
    assert "<@W0REP1>" in text
    assert "&lt;!channel&gt;" in text and "U1&gt; &lt;!here" in text


def test_a_long_timeline_keeps_whole_lines_and_the_latest_events() -> None:
    lead = routed({**NASTY})
    assert lead is not None
    events = [
        EventView(
            lead.id, "attempt", "U0REP1", NOW + timedelta(hours=n), {"kind": "call", "number": n}
        )
        for n in range(60)
    ]
    card = lead_card(lead, events, POLICY, NOW)
    assert_message_ok(card, known_people(lead), "card")
    timeline = next(
        block["text"]["text"]
        for block in card.blocks
        if "*Timeline*" in block.get("text", {}).get("text", "")
    )
    assert "(call #59)" in timeline
    assert timeline.splitlines()[-1].endswith("<@U0REP1>")


# --- escape, clip, safe, plain --------------------------------------------------------------------


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(MIXED, huge_text(2000)))
def test_escape_leaves_nothing_slack_would_parse(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert not BARE_AMPERSAND.search(escaped)
    assert not FORBIDDEN.search(escaped)
    # Only &, < and > change: the reader sees exactly what was sent, minus invisible controls.
    assert unescape(escaped) == FORBIDDEN.sub("", text)
    # Escaping twice is still safe, and shows already-escaped text literally, as it was sent.
    twice = escape(escaped)
    assert "<" not in twice and not BARE_AMPERSAND.search(twice)
    assert unescape(twice) == escaped


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(MIXED, huge_text(2000)))
def test_a_commands_text_reads_as_typed(text: str) -> None:
    # Slack sends what a person typed with `&`, `<` and `>` escaped, as `escape` does.
    assert typed(escape(text)) == FORBIDDEN.sub("", text)


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("<mailto:ada@example.com|ada@example.com>", "ada@example.com"),
        ("<mailto:r&amp;d@example.com|r&amp;d@example.com>", "r&d@example.com"),
        ("<mailto:ada@example.com>", "ada@example.com"),
        ("<https://acme.example/x?a=1&amp;b=2|acme.example/x>", "acme.example/x"),
        ("away <@U0REP2|tom> fri &lt;3 &amp; co", "away <@U0REP2|tom> fri <3 & co"),
        ("&amp;lt;", "&lt;"),  # typed literally
    ],
)
def test_slacks_links_read_as_typed_and_mentions_stay(sent: str, meant: str) -> None:
    assert typed(sent) == meant


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(MIXED, huge_text(3000)), limit=st.integers(1, 400))
@example(text="a&b", limit=3)
@example(text="&" * 50, limit=7)
@example(text="👩‍💼👩‍💼", limit=3)
@example(text="\u200d" * 4, limit=3)
def test_clip_respects_the_limit_and_never_breaks_an_entity(text: str, limit: int) -> None:
    escaped = escape(text)
    cut = clip(escaped, limit)
    assert len(cut) <= limit
    if len(escaped) <= limit:
        assert cut == escaped
        return
    assert cut.endswith("…")
    kept = cut.removesuffix("…")
    assert escaped.startswith(kept)
    assert not BARE_AMPERSAND.search(kept)
    assert not re.search(r"&[a-z]*$", kept)
    assert not kept.endswith("\u200d")  # no joiner left dangling before the ellipsis


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(MIXED, huge_text()), limit=st.integers(2, 3000))
@example(text="\x01" * 9000 + "Eve", limit=3000)  # dropped controls must not use up the room
def test_safe_and_one_line_are_escaped_and_within_the_limit(text: str, limit: int) -> None:
    for result in (safe(text, limit), one_line(text, limit)):
        assert len(result) <= limit
        assert "<" not in result and ">" not in result
        assert not BARE_AMPERSAND.search(result)
        assert not FORBIDDEN.search(result)
    # `safe` keeps the sender's lines (a rep's note); `one_line` keeps the words, on one line.
    assert escape(text).startswith(safe(text, limit).removesuffix("…"))
    flat = one_line(text, limit)
    assert "\n" not in flat and "\t" not in flat
    assert escape(re.sub(r"[\n\t]", " ", text)).startswith(flat.removesuffix("…"))
    if len(FORBIDDEN.sub("", text)) <= limit // 5:  # short enough to survive escaping whole
        assert unescape(safe(text, limit)) == FORBIDDEN.sub("", text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(MIXED, huge_text(500)), limit=st.integers(2, 150))
def test_plain_is_never_empty_one_line_and_within_the_limit(text: str, limit: int) -> None:
    result = plain(text, limit)
    assert 0 < len(result) <= limit
    assert result.strip()
    assert "\n" not in result
    assert not FORBIDDEN.search(result)


# --- every message and view the bot can send -----------------------------------------------------

MANAGER = POLICY.managers[0]
SCANNED = ("bot/domain", "bot/services", "handlers")  # where a Refusal's words are written


def _words(node: ast.expr, constants: dict[str, ast.expr], hostile: str) -> str | None:
    """The text a Refusal's message expression makes, each value in it hostile (a user id
    where Handoff writes a mention); None for words made elsewhere (a call, a variable)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return _words(constants[node.id], constants, hostile)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = (_words(side, constants, hostile) for side in (node.left, node.right))
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                value = "U0REP2" if text.endswith("<@") else hostile
                text += repr(value) if part.conversion == ord("r") else value
            else:
                text += str(cast(ast.Constant, part).value)
        return text
    return None


def refusal_words(hostile: str) -> Iterator[tuple[str, str]]:
    """Every Refusal message written in the domain, the services and the handlers, with
    hostile text in each of its values, and what the access table says to each action."""
    for folder in SCANNED:
        for path in sorted((ROOT / folder).glob("*.py")):
            module = ast.parse(path.read_text())
            constants = {
                node.targets[0].id: node.value
                for node in module.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            }
            for node in ast.walk(module):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Refusal":
                    words = _words(node.args[0], constants, hostile) if node.args else None
                    if words is not None:
                        yield f"{folder}/{path.name}:{node.lineno}", words
    owned = replace(routed(NASTY) or _never(), owner="U0REP2")
    for action in Action:
        for lead in (None, owned):
            yield f"access/{action}", refusal(action, "U0NOBODY", POLICY, lead)
            yield f"access/{action}/doing", refusal(action, "U0NOBODY", POLICY, lead, hostile)


def _never() -> LeadView:
    raise AssertionError("NASTY is a lead intake accepts")


def a_week(lead: LeadView, hostile: str) -> Facts:
    """A week of counts whose segment, source and rep names and reasons are hostile."""
    group = Group(lead.segment, hostile, lead.owner)
    other = Group(hostile, lead.source or hostile, hostile)
    done = Counts(
        received=3, mql=3, posted=3, accept_due=3, claimed=2, accepted=2, sql=1, attempts_closed=2
    )
    reasons = {("not_a_fit", hostile): 2, (hostile, None): 1}
    times = [Times.of(group, NOW, NOW, NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2))]
    return Facts({group: done, other: done}, reasons, {("first_touch", hostile): 1}, times)


def sent_messages(
    lead: LeadView, hostile: str
) -> Iterator[tuple[str, Message | dict[str, Any] | str, set[str]]]:
    """Everything Handoff sends beyond the lead's own surfaces, with the people it may mention."""
    owner, rep = "U0REP2", "W0REP7"  # never U0REP1, whom the hostile text mentions
    lead = replace(lead, suggested_owner=owner if lead.suggested_owner else None)
    working = claimed(lead, owner, 2)
    people = {owner, rep, *POLICY.managers}
    for window in escalation.windows(working, POLICY) + escalation.windows(lead, POLICY):
        later = window.due + timedelta(hours=1)
        yield "channel_reminder", channel_reminder(lead, window, POLICY, later), people
        yield "owner_reminder", owner_reminder(working, window, POLICY, later), people
        yield "manager_alert", manager_alert(working, window, POLICY, later), people
    why = f"a manager's call (<@{MANAGER}>)"
    until = NOW + timedelta(hours=1)
    yield "reassign_note", reassign_note(working, owner, rep, why, POLICY, NOW), people
    yield "reassigned_dm", reassigned_dm(replace(working, owner=rep), MANAGER, POLICY, NOW), people
    reassigned = reassigned_alert(working, rep, MANAGER, POLICY, NOW)
    yield "reassigned_alert", reassigned, people
    yield "snooze_note", snooze_note(MANAGER, until, POLICY), people
    snoozed = snoozed_alert(working, MANAGER, until, POLICY)
    yield "settled_alert/reassigned", settled_alert(reassigned), people
    claimed_words = claimed_alert(working, owner, POLICY, NOW)
    yield "settled_alert/claimed", settled_alert(claimed_words), people
    closed = closed_alert(working, owner, POLICY.dispositions[0], POLICY, NOW)
    yield "settled_alert/closed", settled_alert(closed), people
    yield "settled_alert/snoozed", settled_alert(snoozed), people
    yield "publish_failed", publish_failed(owner, "invalid_blocks", "Check the view."), people
    period = week_of(NOW.date(), POLICY.timezone)
    week = build_report(period, a_week(lead, hostile), a_week(lead, hostile), POLICY, NOW)
    yield "sla_report", sla_report(week, POLICY), people
    yield "sla_report/shared", sla_report(week, POLICY, shared_by=MANAGER), people
    yield "digest", sla_report(week, POLICY, digest=True), people
    rows = [
        (hostile, hostile, "not_a_fit", hostile, 4),
        (lead.source or "x", hostile, "x", None, 1),
    ]
    rows += [(f"R&D {n}", "R&D" * 30, "not_a_fit", "R&D " * 20, 1) for n in range(60)]
    yield "rejection_summary", rejection_summary(period, rows, POLICY), people
    worst = [(hostile, 0.4), (lead.segment, 0.5)]
    trend = [(period, 0.5), (period, None)]
    yield "compliance_alert", compliance_alert(trend, worst, 0.8, POLICY), people
    everyone = {*POLICY.managers, *(rep for segment in POLICY.segments for rep in segment.reps)}
    yield "sla", sla_summary(POLICY), everyone  # the SLA names its people: no lead data
    plan = build_plan(Goal(2_000_000, "quarter"), History(26), POLICY)
    yield "sla_plan", revenue_plan(plan, POLICY, NOW), people
    yield "help", HELP, people
    yield "handoff/unknown", handoff_answer(hostile), people
    # Slack escapes `&`, `<` and `>` in what a person types (a command's text), so the values
    # a refusal quotes arrive escaped: a live mention in one is one Handoff wrote.
    for where, words in refusal_words(escape(hostile)):
        yield f"refusal {where}", as_mrkdwn(words), people
        notice = HomeState(POLICY, {}, Queue([], [], 0, 0, rep=True), None, as_mrkdwn(words))
        yield f"home notice {where}", home_view(notice, NOW), people


def handoff_answer(text: str) -> str:
    """What the `/handoff` listener answers to `text` (a word it does not know)."""
    said: dict[str, Any] = {}

    async def ack(**answer: Any) -> None:
        said.update(answer)

    listeners = Listeners(*cast(Any, [None] * 8))
    context = {CONTEXT_KEY: Asked(command="/handoff", text=f"x{text}")}  # as typed
    asyncio.run(listeners.handoff_command(cast(Any, ack), {}, cast(Any, context)))
    return str(said["text"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=LEAD_PAYLOAD, hostile=st.one_of(hostile_text(300), huge_text(5_000)))
@example(payload=NASTY, hostile="<!channel> R&D <@U0REP1> <http://evil.example|bank> &amp")
def test_every_message_and_view_the_bot_sends_is_valid_and_inert(
    payload: dict[str, Any], hostile: str
) -> None:
    """Reminders, alerts, notes, DMs, reports, the digest, the rejection summary, the
    compliance alert, /sla, /sla-plan, App Home, HELP and every refusal: hostile text never
    becomes a mention, a link or a broken entity; only Handoff's own markup stays live."""
    lead = routed(payload)
    if lead is None:
        return
    seen = set()
    for name, rendered, people in sent_messages(lead, hostile):
        seen.add(name.split(" ")[0].split("/")[0])
        # Reminders and alerts name the lead's segment channel: Handoff's own markup.
        if isinstance(rendered, Message):
            assert_message_ok(rendered, people, name, SEGMENT_CHANNELS)
        elif isinstance(rendered, dict):
            assert_view_ok(rendered, people, name)
        else:
            assert_inert(rendered, people, name, SEGMENT_CHANNELS)
    assert {"refusal", "home", "manager_alert", "rejection_summary", "sla_plan"} <= seen


@pytest.mark.parametrize("pad", range(8))
def test_the_rejection_summary_is_cut_between_entities(pad: int) -> None:
    """A pair's line longer than a section: cut by `clip`, never inside `&amp;` (a slice could
    end in `R&a`)."""
    rows = [("R&D", "R&D" * 30, "not_a_fit", f"R&D {n}{'x' * pad} " * 8, 1) for n in range(60)]
    summary = rejection_summary(week_of(NOW.date(), POLICY.timezone), rows, POLICY)
    assert_message_ok(summary, set(), "rejection_summary")
    assert summary.blocks[1]["text"]["text"].endswith("…")

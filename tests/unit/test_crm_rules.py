"""What the CRM must learn (bot/domain/crm.py): which writes an event causes, the record a
lead shows in each CRM, and the note a disposition or attempt leaves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.crm import (
    OwnerChanged,
    Write,
    late_owner_change,
    next_midnight,
    note_of,
    record_of,
    status_of,
    writes_for,
)
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Crm
from bot.settings import ConfigError, Settings, require_crm

AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
LEAD = LeadView(
    id=7,
    external_id="hs-7",
    email="priya@northwind.example",
    stage=Stage.SAL,
    segment="enterprise",
    channel="C0ENT",
    tier="hot",
    score=88,
    sla_version="v1",
    received_at=AT,
    owner="U0REP1",
    claimed_at=AT,
    handoff_score=91,
)
LABELS = {"qualified": "Qualified", "not_a_fit": "Not a fit"}


def event(type_: str, actor: str = "U0REP1", **data: Any) -> dict[str, Any]:
    return {"lead_id": 7, "type": type_, "actor": actor, "at": AT, "data": data}


def test_a_claim_syncs_the_record_and_a_disposition_adds_a_note() -> None:
    hubspot = Crm(kind="hubspot")
    assert writes_for(hubspot, event("claimed")) == [(Write.SYNC, {})]
    writes = writes_for(hubspot, event("dispositioned", code="not_a_fit", reason="No budget"))
    assert [write for write, _ in writes] == [Write.SYNC, Write.NOTE]
    assert writes[1][1] == {
        "kind": "disposition",
        "rep": "U0REP1",
        "code": "not_a_fit",
        "stage": None,
        "reason": "No budget",
        "note": None,
    }
    # Events that change nothing the CRM shows write nothing.
    assert writes_for(hubspot, event("viewed")) == []


def test_attempt_notes_are_optional_and_the_crms_own_changes_never_echo() -> None:
    plain, noting = Crm(kind="salesforce"), Crm(kind="salesforce", attempt_notes=True)
    assert [w for w, _ in writes_for(plain, event("attempt", kind="call"))] == [Write.SYNC]
    assert [w for w, _ in writes_for(noting, event("attempt", kind="call"))] == [
        Write.SYNC,
        Write.NOTE,
    ]
    assert writes_for(noting, event("reassigned", actor="crm")) == []
    # An attempt the CRM told us of is in the CRM already: no Task for it again.
    told = event("attempt", kind="call", source="crm", activity_id="00T1")
    assert writes_for(noting, told) == [(Write.SYNC, {})]


def test_the_webhook_sends_every_event_or_the_chosen_ones() -> None:
    every, chosen = Crm(kind="webhook"), Crm(kind="webhook", events=["dispositioned"])
    assert writes_for(every, event("viewed")) == [
        (Write.EVENT, {"type": "viewed", "actor": "U0REP1", "data": {}})
    ]
    assert writes_for(every, event("stage", actor="crm")) != []  # a receiver is not the CRM
    assert writes_for(chosen, event("claimed")) == []
    assert writes_for(chosen, event("dispositioned", code="qualified"))[0][0] is Write.EVENT


def test_status_follows_the_lead_with_defaults_per_crm_and_overrides() -> None:
    hubspot, salesforce = Crm(kind="hubspot"), Crm(kind="salesforce")
    assert status_of(hubspot, LEAD) == ("OPEN", None)
    assert status_of(hubspot, replace(LEAD, attempts=2)) == ("ATTEMPTED_TO_CONTACT", None)
    assert status_of(hubspot, replace(LEAD, stage=Stage.MQL, owner=None)) == (
        "NEW",
        "marketingqualifiedlead",
    )
    won = replace(LEAD, stage=Stage.SQL, disposition_code="qualified")
    assert status_of(hubspot, won) == ("CONNECTED", "salesqualifiedlead")
    assert status_of(salesforce, won) == ("Closed - Converted", None)
    # A disposition code's own entry wins over its outcome's.
    mapped = Crm(kind="hubspot", status={"qualified": "IN_PROGRESS", "sql": "X"})
    assert status_of(mapped, won)[0] == "IN_PROGRESS"
    assert status_of(Crm(kind="webhook"), won) == (None, None)


def test_the_record_carries_the_owner_and_the_mapped_fields() -> None:
    crm = Crm(
        kind="hubspot",
        owners={"U0REP1": "512"},
        fields={"disposition_label": "handoff_outcome", "handoff_score": "handoff_score"},
    )
    closed = replace(LEAD, stage=Stage.REJECT, disposition_code="not_a_fit")
    record = record_of(crm, closed, "901", LABELS)
    assert (record.crm_id, record.owner, record.owner_crm_id) == ("901", "U0REP1", "512")
    assert record.status == "UNQUALIFIED" and record.email == "priya@northwind.example"
    assert record.fields == {"handoff_outcome": "Not a fit", "handoff_score": "91"}
    # Times as both CRMs document a date-and-time value: UTC, milliseconds, Z.
    timed = Crm(kind="hubspot", fields={"claimed_at": "claimed", "first_touch_at": "touched"})
    sydney = datetime(2026, 11, 23, 12, 0, 5, 123456, tzinfo=ZoneInfo("Australia/Sydney"))
    assert record_of(timed, replace(LEAD, claimed_at=sydney), "901", LABELS).fields == {
        "claimed": "2026-11-23T01:00:05.123Z",
        "touched": "",
    }
    # A member not in the map is found by email (no CRM id); an empty field is sent empty.
    other = record_of(crm, replace(LEAD, owner="U0REP2", handoff_score=None), None, LABELS)
    assert other.owner_crm_id is None and other.fields["handoff_score"] == ""


def test_route_reason_is_the_why_line_in_plain_words_for_revops() -> None:
    """`route_reason` is what the Slack post's why line says, as plain text a CRM shows: a rep
    by their member id (a CRM cannot resolve `<@U…>`), lead text not escaped, one line, at
    most 255 characters (Salesforce's Text field)."""
    crm = Crm(kind="salesforce", fields={"route_reason": "Handoff_Route__c"})
    robin = {
        "rule": "round_robin",
        "rep": "U0REP1",
        "week": 3,
        "week_total": 12,
        "territory": "ANZ & <Pacific>",
        "counted_on": "2026-12-07",
    }
    routed = replace(LEAD, route_reason=robin, suggested_owner="U0REP1")
    assert record_of(crm, routed, None, LABELS).fields == {
        "Handoff_Route__c": "Round robin in territory ANZ & <Pacific>: U0REP1, 3 of 12 this week"
    }
    taken = {
        "rule": "named_account",
        "rep": "U0REP2",
        "domain": "northwind.example",
        "reassigned": "unclaimed",
        "from": "U0REP1",
    }
    assert record_of(crm, replace(LEAD, route_reason=taken), None, LABELS).fields == {
        "Handoff_Route__c": "Reassigned by the SLA from U0REP1 (claim overdue) · "
        "Named account (northwind.example) of U0REP2"
    }
    # A long reason (rules passed while their reps were away, then a fallback's own words)
    # is cut to 255 characters with an ellipsis, on one line.
    passed = [{"rule": "named_account", "rep": "U0REP3"}, {"rule": "partner", "rep": "U0MGR2"}]
    fallback = {
        "rule": "fallback",
        "rep": "U0MGR1",
        "why": "nobody\navailable " + "x" * 400,
        "passed": passed,
    }
    text = record_of(crm, replace(LEAD, route_reason=fallback), None, LABELS).fields
    line = text["Handoff_Route__c"]
    assert len(line) == 255 and line.endswith("…") and "\n" not in line
    assert line.startswith(
        "Named account of U0REP3: away · Partner manager U0MGR2: away → Fallback: nobody "
        "available xxx"
    )
    # Stored before routing said why: the round robin's pick; never routed: empty (cleared).
    old = replace(LEAD, route_reason=None, suggested_owner="U0REP2")
    assert record_of(crm, old, None, LABELS).fields == {"Handoff_Route__c": "Round robin: U0REP2"}
    never = replace(LEAD, route_reason=None, suggested_owner=None)
    assert record_of(crm, never, None, LABELS).fields == {"Handoff_Route__c": ""}


def test_a_disposition_note_tells_code_reason_note_and_rep_with_its_key() -> None:
    crm = Crm(kind="hubspot", owners={"U0REP1": "512"})
    payload = {"kind": "disposition", "rep": "U0REP1", "code": "not_a_fit", "reason": "No budget"}
    note = note_of(
        crm, LEAD, "901", "k1", payload | {"note": "Frozen"}, AT, LABELS, {"U0REP1": "Ana"}
    )
    assert note.subject == "Handoff disposition: Not a fit"
    assert note.body.splitlines() == [
        "Disposition: Not a fit (not_a_fit)",
        "Rep: Ana",
        "Reason: No budget",
        "Note: Frozen",
        "[handoff:k1]",
    ]
    assert (note.key, note.rep_crm_id, note.kind, note.crm_id) == (
        "k1",
        "512",
        "disposition",
        "901",
    )
    attempt = note_of(
        crm, LEAD, None, "k2", {"kind": "attempt", "rep": "U0REP9", "via": "call"}, AT, LABELS, {}
    )
    assert attempt.kind == "attempt" and attempt.attempt_kind == "call"
    assert attempt.subject == "Handoff: call attempt by U0REP9" and attempt.rep_crm_id is None


def test_a_missing_crm_secret_is_one_clear_line_each() -> None:
    settings = Settings.from_env({"HANDOFF_WEBHOOK_URL": "https://example.com/hook"})
    with pytest.raises(ConfigError) as error:
        require_crm(settings, "webhook")
    assert str(error.value).splitlines() == [
        "HANDOFF_WEBHOOK_SECRET is not set: the signing secret, whsec_ followed by base64 "
        "(docs/crm.md) (crm: webhook)."
    ]
    with pytest.raises(ConfigError) as error:
        require_crm(settings, "salesforce")
    assert len(str(error.value).splitlines()) == 2
    require_crm(Settings.from_env({"HUBSPOT_ACCESS_TOKEN": "pat-1"}), "hubspot")
    assert Settings.from_env({}).hubspot_api_url == "https://api.hubapi.com"
    assert "pat-1" not in repr(Settings.from_env({"HUBSPOT_ACCESS_TOKEN": "pat-1"}))


def test_a_daily_limit_resets_at_the_next_midnight_of_its_zone() -> None:
    """HubSpot's daily limits reset at midnight in the account's zone: the next one, also on a
    day that daylight saving makes 23 or 25 hours long, and never `now` itself."""
    sydney_monday_11am = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert next_midnight(sydney_monday_11am, "Australia/Sydney") == datetime(
        2026, 11, 23, 13, 0, tzinfo=UTC
    )
    midnight = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert next_midnight(midnight, "Australia/Sydney") == midnight + timedelta(days=1)
    # New York leaves daylight saving on Sunday 1 November 2026: that day has 25 hours.
    saturday_noon = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert next_midnight(saturday_noon, "America/New_York") == datetime(
        2026, 11, 1, 4, 0, tzinfo=UTC
    )
    assert next_midnight(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), "America/New_York") == (
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    )


MINUTE = timedelta(minutes=1)
# The last change of owner: the CRM's, applied at AT, told as made 3 minutes later (its clock
# ahead of ours, kept as told: docs/crm-inbound.md, "Late").
AHEAD = OwnerChanged(at=AT, made=AT + 3 * MINUTE)


@pytest.mark.parametrize(
    ("last", "told", "arrived", "now", "late"),
    [
        # The CRM's time against the CRM's time, as told.
        (AHEAD, AT + 2 * MINUTE, AT + MINUTE, AT + MINUTE, True),
        (AHEAD, AT + 4 * MINUTE, AT + MINUTE, AT + MINUTE, False),
        # No time of its own, first delivery: never late, whatever the last was told.
        (AHEAD, None, AT + MINUTE, AT + MINUTE, False),
        (OwnerChanged(at=AT + MINUTE, made=AT + MINUTE), None, AT, AT, False),  # another clock
        # Taken again after a kill: late only if a change was applied after it first arrived.
        (AHEAD, None, AT + MINUTE, AT + 4 * MINUTE, False),
        (
            OwnerChanged(at=AT + 2 * MINUTE, made=AT + 2 * MINUTE),
            None,
            AT + MINUTE,
            AT + 4 * MINUTE,
            True,
        ),
        # ... or was made before it and applied after (the CRM's own late delivery): not late.
        (OwnerChanged(at=AT + 2 * MINUTE, made=AT), None, AT + MINUTE, AT + 4 * MINUTE, False),
    ],
)
def test_an_owner_change_is_late_only_against_a_time_our_clock_had_reached(
    last: OwnerChanged, told: datetime | None, arrived: datetime, now: datetime, late: bool
) -> None:
    """A change with the CRM's time is ordered by it; one without, by when it first arrived
    against when the last change was applied: a first delivery is never late (an owner
    change made after the CRM's last, whose time is ahead of our clock, is not lost)."""
    assert late_owner_change(last, told, arrived, now) is late

"""Every KPI of the SLA report on a hand-computed fixture (bot/domain/report.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.durations import Duration
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.refusal import Refusal
from bot.domain.report import (
    Counts,
    Facts,
    Funnel,
    Group,
    Kpi,
    Period,
    Report,
    Times,
    attempt_standard,
    build_report,
    clock_minutes,
    parse_period,
    parse_request,
    percentile,
    rag,
    rag_within,
)
from bot.slack.report_views import (
    compliance_alert,
    conversion,
    funnel_counts,
    kpi_change,
    kpi_value,
    sla_report,
)
from tests.unit.test_render import assert_valid_message

ZONE = "Australia/Sydney"
WEEK = Period(2026, 48, ZONE)  # Mon 23 – Sun 29 Nov 2026 (AEDT, UTC+11)
AS_OF = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Mon 30 Nov 12:00 in Sydney: the week is over
ENT_WEB = Group("enterprise", "webinar", "U0REP1")
ENT_EVENT = Group("enterprise", "event", None)
SMB_WEB = Group("smb", "webinar", "U0REP5")


def sydney(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def counts(**values: int) -> Counts:
    return Counts(**values)


FACTS = Facts(
    counts={
        ENT_WEB: counts(
            received=10,
            mql=9,
            complete=9,
            complete_known=10,
            icp=8,
            icp_known=10,
            posted=9,
            accept_due=9,
            claimed=7,
            accepted=6,  # one of the 7 claimed was rejected
            sql=3,
            touch_due=8,
            touched_on_time=7,
            attempts_closed=5,
            attempts_covered=4,
            feedback_due=6,
            feedback_on_time=5,
        ),
        ENT_EVENT: counts(
            received=2,
            mql=2,
            complete=2,
            complete_known=2,
            icp=1,
            icp_known=2,
            posted=2,
            accept_due=2,
            touch_due=2,
        ),
        SMB_WEB: counts(
            received=4,
            mql=3,
            complete=3,
            complete_known=4,
            icp=2,
            icp_known=4,
            posted=3,
            accept_due=3,
            claimed=3,
            accepted=2,  # one of the 3 claimed was rejected
            sql=1,
            touch_due=3,
            touched_on_time=3,
            attempts_closed=3,
            attempts_covered=1,
            feedback_due=3,
            feedback_on_time=3,
        ),
    },
    dispositions={
        ("qualified", None): 4,
        ("not_a_fit", "Not ICP"): 2,
        ("not_a_fit", "Wrong territory or segment"): 1,
        ("bad_data", "Wrong contact"): 1,
        ("bad_timing", None): 1,
    },
    escalations={("unclaimed", "remind_channel"): 3, ("unclaimed", "reassign"): 1},
    times=[
        # posted Mon 10:00, claimed 10:10, touched 10:30: 10 and 30 working minutes
        Times.of(
            ENT_WEB,
            sydney(23, 10),
            sydney(23, 10),
            sydney(23, 10, 10),
            sydney(23, 10, 30),
            sydney(23, 12),
        ),
        # posted Mon 16:30, claimed 16:45, touched Tue 09:45: 15 and 75 (overnight is closed)
        Times.of(
            ENT_WEB,
            sydney(23, 16, 30),
            sydney(23, 16, 30),
            sydney(23, 16, 45),
            sydney(24, 9, 45),
            sydney(24, 10, 30),
        ),
        # posted Tue 11:00, claimed 12:00, touched 14:00: 60 and 180, after its 13:00 deadline
        Times.of(
            SMB_WEB, sydney(24, 11), sydney(24, 11), sydney(24, 12), sydney(24, 14), sydney(24, 13)
        ),
        # posted Wed 09:00, never claimed nor touched; its 11:00 deadline has passed
        Times.of(ENT_EVENT, sydney(25, 9), sydney(25, 9), None, None, sydney(25, 11)),
    ],
)
BEFORE = Facts(
    counts={
        ENT_WEB: counts(
            received=5,
            mql=5,
            complete=5,
            complete_known=5,
            posted=5,
            accept_due=5,
            claimed=5,
            accepted=5,
            touch_due=5,
            touched_on_time=5,
        )
    },
    dispositions={},
    escalations={},
    times=[
        Times.of(
            ENT_WEB,
            sydney(16, 10),
            sydney(16, 10),
            sydney(16, 10, 5),
            sydney(16, 10, 50),
            sydney(16, 12),
        )
    ],
)


@pytest.fixture
def report(policy: Policy) -> Report:
    return build_report(WEEK, FACTS, BEFORE, policy, AS_OF)


def kpi(report: Report, key: str) -> tuple[float | None, str | None, str]:
    found = next(k for k in report.headline if k.key == key)
    return found.value, found.rag, found.detail


def test_the_shares_and_their_colours(report: Report) -> None:
    # Targets of the example: first touch 90%, acceptance 70%, SAL → SQL 15%, feedback 90%,
    # coverage 80%, data 95%, ICP 70%; yellow within 5 points under.
    assert kpi(report, "first_touch") == (10 / 13, "red", "10 of 13")
    assert kpi(report, "acceptance") == (8 / 14, "red", "8 of 14")
    assert kpi(report, "sal_to_sql") == (4 / 8, "green", "4 of 8")
    assert kpi(report, "mql_to_sql") == (4 / 14, None, "4 of 14")
    assert kpi(report, "feedback") == (8 / 9, "yellow", "8 of 9")
    assert kpi(report, "attempts") == (5 / 8, "red", "5 of 8")
    assert kpi(report, "completeness") == (14 / 16, "red", "14 of 16")
    assert kpi(report, "icp") == (11 / 16, "yellow", "11 of 16")
    assert kpi(report, "mql") == (14.0, None, "of 16 leads received")


def test_durations_are_working_time_with_nearest_rank_percentiles(report: Report) -> None:
    # 30, 75 and 180, and the event lead never touched, past its Wednesday 11:00 deadline, at
    # its time so far: Wed 09:00 → Mon 12:00 is 1,620 working minutes (left out, it made the
    # week's speed look better for being ignored).
    assert kpi(report, "speed_median") == (75, None, "4 leads, 1 not touched yet")
    assert kpi(report, "speed_p90")[0] == 1620
    assert kpi(report, "claim_median")[0] == 15
    assert report.speed_minutes == [30, 75, 180, 1620]
    assert report.speed_on_time == [True, True, False, False]  # the third touched after 13:00
    assert report.window_minutes == {"hot": 120, "warm": 480}  # each tier's, on the chart
    assert report.first_touch == (10, 13)  # first-touch compliance's counts, for the chart


def test_changes_against_the_previous_week(report: Report) -> None:
    first_touch = next(k for k in report.headline if k.key == "first_touch")
    assert first_touch.previous == 1.0 and kpi_change(first_touch) == "▼ 23 pts"
    speed = next(k for k in report.headline if k.key == "speed_median")
    assert speed.previous == 50 and kpi_change(speed) == "▲ 25m"
    mqls = next(k for k in report.headline if k.key == "mql")
    assert kpi_change(mqls) == "▲ 9"
    feedback = next(k for k in report.headline if k.key == "feedback")
    assert feedback.previous is None and kpi_change(feedback) == ""  # nothing was due before


def test_volume_against_the_weekly_targets(report: Report) -> None:
    assert [(k.key, k.value, k.target, k.rag) for k in report.volume] == [
        ("enterprise", 11.0, 10.0, "green"),
        ("mid_market", 0.0, 25.0, "red"),
        ("smb", 3.0, 40.0, "red"),
    ]


def test_dispositions_reasons_and_their_problems(report: Report) -> None:
    assert report.dispositions[0] == ("qualified", "Qualified", 4)
    assert ("not_a_fit", "Not a fit", 3) in report.dispositions
    assert [(r.reason, r.problem, r.leads) for r in report.reasons] == [
        ("Not ICP", "definition", 2),
        ("Wrong contact", "data", 1),
        ("Wrong territory or segment", "routing", 1),
    ]
    assert report.problems == {"definition": 2, "data": 1, "routing": 1}


def test_conversion_escalations_and_daily_compliance(report: Report) -> None:
    assert report.conversion == Funnel(14, 14, 8, 4)
    assert report.escalations == [
        ("unclaimed", "reassign", 1),
        ("unclaimed", "remind_channel", 3),
    ]
    assert report.daily_compliance == [
        (date(2026, 11, 23), 1.0),
        (date(2026, 11, 24), 0.0),
        (date(2026, 11, 25), 0.0),
        (date(2026, 11, 26), None),
        (date(2026, 11, 27), None),
        (date(2026, 11, 28), None),
        (date(2026, 11, 29), None),
    ]
    assert not report.in_progress


def test_slices_by_segment_source_and_rep(report: Report) -> None:
    assert [(s.name, s.received) for s in report.by_segment] == [("enterprise", 12), ("smb", 4)]
    assert [(s.name, s.received) for s in report.by_source] == [("event", 2), ("webinar", 14)]
    assert [s.name for s in report.by_rep] == ["(unclaimed)", "U0REP1", "U0REP5"]
    enterprise = {k.key: k for k in report.by_segment[0].kpis}
    assert enterprise["first_touch"].value == 7 / 10
    assert enterprise["speed_median"].value == 75  # of 30, 75 and 1,620 so far: nearest rank
    # Of the durations a slice shows speed to lead's median alone, with the team's target.
    for slices in (report.by_segment, report.by_source, report.by_rep):
        for piece in slices:
            assert [k.key for k in piece.kpis if k.unit == "minutes"] == ["speed_median"]
    team = next(k for k in report.headline if k.key == "speed_median")
    assert (enterprise["speed_median"].label, enterprise["speed_median"].target) == (
        team.label,
        team.target,
    )


def test_equal_counts_in_the_disposition_mix_read_in_one_order(policy: Policy) -> None:
    """However the database returned the groups (PostgreSQL hashes them or sorts them by its
    plan), dispositions with the same count are listed by name, as rejection reasons are."""
    mix = {("qualified", None): 75, ("bad_timing", None): 75, ("not_a_fit", "Not ICP"): 211}
    listed = []
    for order in (list(mix), list(reversed(mix))):
        facts = Facts({}, {key: mix[key] for key in order}, {}, [])
        listed.append(build_report(WEEK, facts, Facts({}, {}, {}, []), policy, AS_OF).dispositions)
    assert listed[0] == listed[1]
    assert [label for _, label, _ in listed[0]] == ["Not a fit", "Bad timing", "Qualified"]


def test_an_empty_week_is_zeros_not_errors(policy: Policy) -> None:
    nothing = Facts({}, {}, {}, [])
    report = build_report(WEEK, nothing, nothing, policy, AS_OF)
    assert report.empty and report.conversion == Funnel(0, 0, 0, 0)
    assert all(k.value is None for k in report.headline if k.unit not in ("count", "amount"))
    message = sla_report(report, policy)
    assert_valid_message(message)
    text = " ".join(str(block) for block in message.blocks)
    assert "No leads this week" in text and "–" in text
    # The SLA has targets: no rate or time is coloured because nothing was measured, not for
    # want of them; the week's MQL volume is (0/10 🔴), so the line does not say nothing is.
    only = "Only MQL volume is coloured yet: no other figure against the SLA's targets"
    assert only in text and "Nothing to colour yet" not in text
    assert "enterprise 0/10 🔴" in text
    assert "No targets in the SLA file" not in text
    assert message.text.endswith(f": {only} in this period.")
    # No volume target either: nothing at all is coloured, and the line says why.
    bare_volume = [replace(kpi, target=None, rag=None) for kpi in report.volume]
    uncoloured = sla_report(replace(report, volume=bare_volume), policy)
    assert uncoloured.text.endswith(
        ": Nothing to colour yet: no figures against the SLA's targets in this period."
    )
    # An SLA without targets: the notification says so as the blocks do.
    bare = [replace(kpi, target=None, rag=None) for kpi in report.headline]
    untargeted = sla_report(replace(report, headline=bare, volume=bare_volume), policy)
    assert untargeted.text.endswith(": No targets in the SLA file to colour against.")


def test_the_rendered_report_reads_in_ten_seconds(report: Report, policy: Policy) -> None:
    message = sla_report(report, policy)
    assert_valid_message(message)
    text = " ".join(str(block) for block in message.blocks)
    assert "🔴 First touch, MQL→SAL, Coverage, Data" in text  # named once, by colour
    assert "🟢 SAL→SQL" in text
    assert "14 MQLs posted → 8 SAL → 4 SQL" in text
    assert "MQL definition 2" in text and "routing 1" in text
    assert message.text.startswith("SLA report 2026-W48: First touch 77%")


def test_leads_inside_their_claim_window_are_said_apart(report: Report) -> None:
    waiting = replace(report, conversion=replace(report.conversion, waiting=4))
    assert "14 MQLs posted → 8 SAL (4 in their claim window) → 4 SQL" in funnel_counts(waiting)
    assert "8 SAL (MQL → SAL 80%; 4 in their claim window)" in conversion(waiting)


def test_the_funnel_counts_the_leads_still_inside_their_claim_window(policy: Policy) -> None:
    """The event leads were posted but are still held for their suggested rep: acceptance is
    judged over the 12 that could be claimed, and the report says 2 are waiting."""
    held = replace(FACTS.counts[ENT_EVENT], accept_due=0)
    facts = replace(FACTS, counts={**FACTS.counts, ENT_EVENT: held})
    built = build_report(WEEK, facts, BEFORE, policy, AS_OF)
    assert built.conversion == Funnel(14, 14, 8, 4, waiting=2)
    assert built.conversion.mql_to_sal == pytest.approx(8 / 12)
    assert "14 MQLs posted → 8 SAL (2 in their claim window) → 4 SQL" in funnel_counts(built)


def test_rejections_whose_reason_says_nothing_of_a_problem_are_untagged(policy: Policy) -> None:
    """A reject disposition with no `problem` (here `duplicate`): its rejections, with a reason
    or without, add up under "untagged" (the export's `rejections_by_problem` key), apart from
    the tagged ones."""
    data = snapshot(policy)
    data["dispositions"].append(
        {"code": "duplicate", "label": "Duplicate", "outcome": "reject", "reasons": ["In CRM"]}
    )
    facts = replace(
        FACTS,
        dispositions={**FACTS.dispositions, ("duplicate", "In CRM"): 2, ("duplicate", None): 1},
    )
    built = build_report(WEEK, facts, BEFORE, parse_policy(data), AS_OF)
    assert built.problems == {"definition": 2, "data": 1, "routing": 1, "untagged": 3}
    text = " ".join(str(block) for block in sla_report(built, policy).blocks)
    assert "(untagged 3 · MQL definition 2 · " in text


def test_progressing_is_said_with_its_own_code_and_label(policy: Policy) -> None:
    """A file that codes "contacted – progressing" its own way: the mix shows its label, still
    open, under its code."""
    data = snapshot(policy)
    for item in data["dispositions"]:
        if item["outcome"] == "progressing":
            item |= {"code": "contacted", "label": "Contacted"}
    progressing = {**FACTS.counts[ENT_WEB].__dict__, "progressing": 2}
    facts = replace(FACTS, counts={**FACTS.counts, ENT_WEB: Counts(**progressing)})
    built = build_report(WEEK, facts, BEFORE, parse_policy(data), AS_OF)
    assert ("contacted", "Contacted (still open)", 2) in built.dispositions


def test_periods(policy: Policy) -> None:
    monday_morning = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # Mon 23 Nov 01:00 in Sydney
    assert parse_period(None, monday_morning, ZONE).label == "2026-W48"
    assert parse_period("last-week", monday_morning, ZONE).label == "2026-W47"
    assert parse_period("2026-w01", monday_morning, ZONE).start == datetime(
        2025, 12, 28, 13, 0, tzinfo=UTC
    )  # Mon 29 Dec 2025 00:00 AEDT
    assert WEEK.words() == "2026-W48 (Mon 23 – Sun 29 Nov 2026)"
    assert Period(2026, 49, ZONE).words() == "2026-W49 (Mon 30 Nov – Sun 6 Dec 2026)"
    with pytest.raises(Refusal, match="2027 has no week 53"):
        parse_period("2027-W53", AS_OF, ZONE)
    assert parse_request("enterprise last-week", AS_OF, policy)[1] == "enterprise"
    with pytest.raises(Refusal, match="`emea` is neither a period nor a segment"):
        parse_request("emea", AS_OF, policy)


def test_helpers() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5], 0.9) == 5
    assert percentile([4, 1, 3, 2], 0.5) == 2
    assert rag(0.85, 0.9, 0.05) == "yellow" and rag(0.84, 0.9, 0.05) == "red"
    assert rag(9.6, 10, 0.05, relative=True) == "yellow"
    # Green at the target itself (docs/reports.md: "green at or above target"); a relative
    # margin is a share of the target: 5% off an MQL target of 100 is 95, so 96 is yellow, 94 red.
    assert rag(0.9, 0.9, 0.05) == "green"
    assert rag(96.0, 100, 0.05, relative=True) == "yellow"
    assert rag(94.0, 100, 0.05, relative=True) == "red"
    # A time is green at or under its target (a 60-minute median against 60 minutes).
    assert rag_within(60.0, 60.0, 0.05) == "green"
    assert rag(None, 0.9, 0.05) is None and rag(0.5, None, 0.05) is None
    assert kpi_value(Kpi("x", "x", "share", None)) == "–"
    assert kpi_value(Kpi("x", "x", "minutes", 80.0)) == "1h 20m"
    # Under its target, a share never reads as the target: 179 of 200 against 90% is 89.5%
    # (it read "90%", coloured yellow beside "target 90%").
    assert kpi_value(Kpi("x", "x", "share", 179 / 200, 0.9, "yellow")) == "89.5%"
    assert kpi_value(Kpi("x", "x", "share", 0.8996, 0.9, "yellow")) == "89.96%"
    assert kpi_value(Kpi("x", "x", "share", 0.904, 0.9, "green")) == "90%"
    assert kpi_value(Kpi("x", "x", "share", 0.85, 0.9, "yellow")) == "85%"
    assert kpi_value(Kpi("x", "x", "share", 0.8996, 0.9), share_places=1) == "89.96%"


# --- the seeds' KPIs, on eight leads a person can check with a calculator ---------------------
#
# Week 2026-W48, enterprise webinar leads, all MQLs posted, business hours Mon–Fri 09:00–17:00
# Sydney, follow-up standard 6 attempts within 10 working days. Times are Sydney wall clock.
#
#   lead  received     posted    claimed       attempts  outcome (code)            first touch
#   A     Mon 23 09:00 09:10     09:15         1         sql (qualified)           09:40
#   B     Mon 23 16:00 16:20     16:25         2         reject (not_a_fit)        Tue 10:00
#   C     Tue 24 10:00 10:00     10:05         6         recycle (no_response)     11:00
#   D     Wed 25 13:00 13:30     13:35         1         nurture (bad_timing)      14:20
#   E     Thu 26 09:00 09:00     09:05         3         open                      09:20
#   F     Fri 27 09:00 09:00     Tue 1 Dec 09:00  0      open                      –
#   G     Fri 27 14:00 14:00     –             0         –                         –
#   H     Fri 27 11:00 11:05     11:10         1         reject (bad_data)         11:40
#
# As of Mon 14 Dec 12:00: the attempt window (10 working days after the claim) has closed for
# E (Thu 10 Dec 09:05) but not for F (Tue 15 Dec 09:00).
#
# MQL → SAL: posted 8; claimed 7 (all but G); accepted = claimed − rejected (B, H) = 5
#            (A, C, D, E, F: nurture and recycle were accepted and worked) → 5/8 = 62.5%, red
#            under the 70% target (yellow from 65%).
# SAL → SQL: SQLs 1 (A) / accepted 5 = 20%, green over the 15% target.
# MQL → SQL: 1/8 = 12.5%, no target.
# Coverage:  window closed: A, B, C, D, H (dispositioned) + E (window over) = 6; F's is open, G
#            was never claimed. Covered: C (6 attempts), A, B, D, H (closed by a conversation:
#            sql, reject, nurture) = 5; E (3 attempts, open) is the miss → 5/6 = 83.3%, green.
# Response time from MQL creation (received → first touch, working minutes):
#            A 40; B 60 (16:00–17:00) + 60 (09:00–10:00) = 120; C 60; D 80; E 20; H 40;
#            F and G, never touched and past their deadlines (Fri 11:00, 16:00), at their time
#            so far: F Fri 27 Nov 09:00 → Mon 14 Dec 12:00 = 480 + 2 × 2,400 + 180 = 5,460,
#            G from 14:00 = 180 + 4,800 + 180 = 5,160 (left out, the two leads nobody touched
#            made the figures better: a green mean of 60)
#            mean (360 + 5,460 + 5,160) / 8 = 1,372.5, shown 1,372; sorted 20 40 40 60 80 120
#            5160 5460, median (nearest rank 4 of 8) = 60.
# Speed to lead from the post: A 30; B 40 + 60 = 100; C 60; D 50; E 20; H 35; F 5,460;
#            G 5,160; sorted 20 30 35 50 60 100 5160 5460: median (rank 4) = 50, p90 (rank
#            ceil(7.2) = 8) = 5,460.

HAND_COMPUTED: dict[str, tuple[float | None, str | None, str]] = {
    "acceptance": (5 / 8, "red", "5 of 8"),
    "sal_to_sql": (1 / 5, "green", "1 of 5"),
    "mql_to_sql": (1 / 8, None, "1 of 8"),
    "attempts": (5 / 6, "green", "5 of 6"),
    # targets.response_time is 2 business hours, the mean's: 120 minutes or less is green; the
    # median has no target of its own. targets.speed_to_lead (2 business hours) is the hot
    # tier's; the warm tier has its business day: all the tiers together have no one target.
    "response_mean": (1372.0, "red", "8 leads, 2 not touched yet"),
    "response_median": (60.0, None, "8 leads, 2 not touched yet"),
    "speed_median": (50.0, None, "8 leads, 2 not touched yet"),
    "speed_p90": (5460.0, None, "8 leads, 2 not touched yet"),
}
HAND_AS_OF = datetime(2026, 12, 14, 12, 0, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def hand_times(
    received: tuple[int, int, int],
    posted_minutes: int,
    touched: tuple[int, int, int] | None,
    due: tuple[int, int, int] | None = None,
) -> Times:
    posted = sydney(*received) + timedelta(minutes=posted_minutes)
    reached = sydney(*touched) if touched else None
    return Times.of(ENT_WEB, sydney(*received), posted, posted, reached, due and sydney(*due))


HAND_FACTS = Facts(
    counts={
        ENT_WEB: counts(
            received=8,
            mql=8,
            posted=8,
            accept_due=8,
            claimed=7,
            accepted=5,
            sql=1,
            attempts_closed=6,
            attempts_covered=5,
        )
    },
    dispositions={},
    escalations={},
    times=[
        hand_times((23, 9), 10, (23, 9, 40)),  # A
        hand_times((23, 16), 20, (24, 10)),  # B
        hand_times((24, 10), 0, (24, 11)),  # C
        hand_times((25, 13), 30, (25, 14, 20)),  # D
        hand_times((26, 9), 0, (26, 9, 20)),  # E
        hand_times((27, 9), 0, None, (27, 11)),  # F: due 2 business hours after its post
        hand_times((27, 14), 0, None, (27, 16)),  # G
        hand_times((27, 11), 5, (27, 11, 40)),  # H
    ],
)


def test_the_seeds_kpis_on_a_hand_computed_week(policy: Policy) -> None:
    report = build_report(WEEK, HAND_FACTS, Facts({}, {}, {}, []), policy, HAND_AS_OF)
    assert {key: kpi(report, key) for key in HAND_COMPUTED} == HAND_COMPUTED
    assert report.conversion == Funnel(8, 8, 5, 1)
    text = " ".join(str(block) for block in sla_report(report, policy).blocks)
    assert "8 MQLs posted → 5 SAL → 1 SQL" in text
    assert "mean 22h 52m 🔴 (target ≤ 2h), median 1h" in text and "median 50m, p90 91h" in text


def test_the_attempt_window_closes_on_the_team_calendar(policy: Policy) -> None:
    # 10 working days back from Mon 14 Dec 12:00 is Mon 30 Nov 12:00: E (claimed Thu 26 Nov)
    # is past its window, F (claimed Tue 1 Dec 09:00) is not.
    standard = attempt_standard(policy, HAND_AS_OF)
    assert standard.min_attempts == 6
    assert standard.closed_before == sydney(30, 12)


def test_months_and_quarters_start_at_midnight_in_the_teams_zone() -> None:
    # Sydney moves from AEST (UTC+10) to AEDT (UTC+11) on Sunday 4 October 2026.
    october = Period(2026, 10, ZONE, "month")
    assert october.label == "2026-10" and october.words() == "2026-10 (October 2026)"
    assert october.start == datetime(2026, 9, 30, 14, 0, tzinfo=UTC)  # 1 Oct 00:00 AEST
    assert october.end == datetime(2026, 10, 31, 13, 0, tzinfo=UTC)  # 1 Nov 00:00 AEDT
    assert october.end - october.start == timedelta(days=31, hours=-1)
    assert len(october.days) == 31 and october.days[-1] == date(2026, 10, 31)
    q4 = Period(2026, 4, ZONE, "quarter")
    assert q4.label == "2026-Q4" and q4.words() == "2026-Q4 (Oct – Dec 2026)"
    assert q4.start == october.start
    assert q4.end == datetime(2026, 12, 31, 13, 0, tzinfo=UTC)  # 1 Jan 2027 00:00 AEDT
    assert len(q4.days) == 92
    assert Period(2028, 2, ZONE, "month").length == 29  # a leap year's February


def test_previous_is_the_period_of_the_same_kind_before() -> None:
    assert Period(2026, 10, ZONE, "month").previous() == Period(2026, 9, ZONE, "month")
    assert Period(2026, 1, ZONE, "month").previous() == Period(2025, 12, ZONE, "month")
    assert Period(2026, 4, ZONE, "quarter").previous() == Period(2026, 3, ZONE, "quarter")
    assert Period(2026, 1, ZONE, "quarter").previous().label == "2025-Q4"
    assert Period(2027, 1, ZONE).previous().label == "2026-W53"  # 2026 has 53 ISO weeks
    q3 = Period(2026, 3, ZONE, "quarter")
    assert q3.end == Period(2026, 4, ZONE, "quarter").start  # back to back, no gap


def test_month_and_quarter_words(policy: Policy) -> None:
    december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # Tue 1 Dec 14:00 in Sydney
    assert parse_period("month", december, ZONE) == Period(2026, 12, ZONE, "month")
    assert parse_period("this-month", december, ZONE).label == "2026-12"
    assert parse_period("last-month", december, ZONE).label == "2026-11"
    assert parse_period("quarter", december, ZONE).label == "2026-Q4"
    assert parse_period("this-quarter", december, ZONE).label == "2026-Q4"
    assert parse_period("last-quarter", december, ZONE).label == "2026-Q3"
    assert parse_period("2026-03", december, ZONE) == Period(2026, 3, ZONE, "month")
    assert parse_period("2026-q1", december, ZONE) == Period(2026, 1, ZONE, "quarter")
    # 30 Nov 13:00 UTC is already 1 December in Sydney: the team's month, not UTC's.
    assert parse_period("month", datetime(2026, 11, 30, 13, 0, tzinfo=UTC), ZONE).number == 12
    period, segment = parse_request("enterprise last-quarter", december, policy)
    assert (period.label, period.kind, segment) == ("2026-Q3", "quarter", "enterprise")


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("2027-Q1", "2027-Q1 (Jan – Mar 2027) has not started yet"),
        ("2027-01", "2027-01 (January 2027) has not started yet"),
        ("2026-W50", "2026-W50 (Mon 7 – Sun 13 Dec 2026) has not started yet"),
        ("9999-Q4", "9999 has not started yet"),
        ("2026-Q5", "A year has quarters Q1 to Q4, not Q5"),
        ("2026-13", "A year has months 01 to 12, not 13"),
        ("2026-00", "A year has months 01 to 12, not 00"),
        ("0001-01", "1 is too long ago for a report"),
        ("next-month", "`next-month` is not a period Handoff knows: use `this-week`"),
        ("2026-11-01", "`2026-11-01` is not a period Handoff knows"),
    ],
)
def test_a_future_or_malformed_period_is_refused(text: str, refusal: str) -> None:
    december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(Refusal) as refused:
        parse_period(text, december, ZONE)
    assert refusal in refused.value.message


def test_a_malformed_period_names_the_valid_forms(policy: Policy) -> None:
    with pytest.raises(Refusal) as refused:
        parse_request("2026-Q9 enterprise", AS_OF, policy)
    assert "Q1 to Q4" in refused.value.message
    with pytest.raises(Refusal) as refused:
        parse_request("fortnightly", AS_OF, policy)
    assert "neither a period nor a segment" in refused.value.message  # a word, not a period
    with pytest.raises(Refusal) as refused:
        parse_period("2026-M11", AS_OF, ZONE)
    message = refused.value.message
    assert all(form in message for form in ("`last-month`", "`2026-11`", "`2026-Q4`"))


def test_an_explicit_range_of_days_in_the_teams_zone() -> None:
    december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # Tue 1 Dec 14:00 in Sydney
    period = parse_period("2026-11-02..2026-11-29", december, ZONE)
    assert period.kind == "range" and period.length == 28 and period.noun == "period"
    assert period.label == "2026-11-02..2026-11-29"
    assert period.words() == "2026-11-02..2026-11-29 (Mon 2 Nov – Sun 29 Nov 2026, 28 days)"
    assert period.start == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 2 Nov 00:00 AEDT
    assert period.end == datetime(2026, 11, 29, 13, 0, tzinfo=UTC)  # 30 Nov 00:00 AEDT
    before = period.previous()  # as many days just before
    assert before.label == "2026-10-05..2026-11-01" and before.length == 28
    assert parse_period(period.label, december, ZONE) == period  # the Share button's value
    one_day = parse_period("2026-12-01..2026-12-01", december, ZONE)  # today: in progress
    assert one_day.length == 1
    year = parse_period("2025-12-01..2026-11-30", december, ZONE)
    assert year.length == 365


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("2026-11-29..2026-11-02", "ends before it starts: put the earlier day first"),
        ("2026-11-02..2026-12-02", "ends after today (2026-12-01)"),
        ("9999-12-30..9999-12-31", "starts after today (2026-12-01), so nothing in it has"),
        ("2025-11-01..2026-11-29", "is 394 days long: a range covers at most 366 days"),
        ("2026-11-02..2026-11-31", "`2026-11-31` is not a date"),
        ("2026-11-02..", "`` is not a date"),
    ],
)
def test_a_reversed_future_or_too_long_range_is_refused(text: str, refusal: str) -> None:
    december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(Refusal) as refused:
        parse_period(text, december, ZONE)
    assert refusal in refused.value.message


def test_a_range_takes_a_segment_and_scales_the_volume_target(policy: Policy) -> None:
    december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    period, segment = parse_request("enterprise 2026-11-02..2026-11-29", december, policy)
    assert (period.label, segment) == ("2026-11-02..2026-11-29", "enterprise")
    report = build_report(period, Facts({}, {}, {}, []), Facts({}, {}, {}, []), policy, december)
    enterprise = next(k for k in report.volume if k.key == "enterprise")
    assert enterprise.target == 10 * 28 / 7


def test_the_working_clock_reads_the_same_minutes_as_the_calendar(policy: Policy) -> None:
    """A report's one table of working windows gives `BusinessCalendar.elapsed`'s whole
    minutes, across weekends, Labour Day (Mon 5 Oct 2026 in NSW) and the move to AEDT (Sun 4
    Oct 2026), at odd seconds and milliseconds."""
    import random

    from bot.domain.report import WorkingClock

    calendar = policy.calendar
    clock = WorkingClock(calendar, date(2026, 9, 20), date(2026, 12, 20))
    rng = random.Random(12)
    start = datetime(2026, 9, 21, tzinfo=UTC).timestamp()
    span = 45 * 24 * 3600
    for _ in range(2000):
        a = round(start + rng.random() * span, 3)
        b = round(a + rng.random() * rng.choice([3600, 86400, 10 * 86400]), 3)
        expected = calendar.elapsed(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC))
        assert clock.minutes(a, b) == expected, (a, b)
    assert clock.minutes(start + 100, start) == 0


def test_the_working_clock_grows_both_ways_and_keeps_its_readings(policy: Policy) -> None:
    """A clock built over two days of November is read across September to December, in a
    random order: it grows to each instant, later and earlier, and every span still reads the
    calendar's minutes (an earlier day must not move the readings already taken)."""
    import random
    from itertools import pairwise

    from bot.domain.report import WorkingClock

    calendar = policy.calendar
    clock = WorkingClock(calendar, date(2026, 11, 2), date(2026, 11, 3))
    rng = random.Random(7)
    start = datetime(2026, 9, 1, tzinfo=UTC).timestamp()
    taken = []
    for _ in range(300):
        instant = round(start + rng.random() * 110 * 86400, 3)
        taken.append((instant, clock.at(instant)))
    for (a, at_a), (b, at_b) in pairwise(taken):
        first, second = (a, b) if a <= b else (b, a)
        expected = calendar.elapsed(
            datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(second, UTC)
        )
        assert round(abs(at_b - at_a) * 1000) // 60_000 == expected, (a, b)
    assert clock.first < date(2026, 9, 2) and clock.last > date(2026, 12, 19)


def test_the_working_clocks_readings_are_its_windows_worked_seconds(policy: Policy) -> None:
    """Each reading is the working seconds before its window plus those of the window so far,
    at most the window's (as first written, with `min`), to the bit: a clock grown back and
    forth over 2026 (its AEST/AEDT changes, NSW holidays, the closed 24 and 31 Dec) is read at
    random instants, at each window's opening and closing and a millisecond either side."""
    import random
    from bisect import bisect_right

    from bot.domain.report import WorkingClock

    clock = WorkingClock(policy.calendar, date(2026, 6, 1), date(2026, 6, 2))
    rng = random.Random(5)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    instants = [round(start + rng.random() * 366 * 86400, 3) for _ in range(3000)]
    for instant in instants:  # grows the clock to the whole year, in a random order
        clock.at(instant)
    edges = [edge + shift for edge in clock.opens + clock.closes for shift in (-0.001, 0, 0.001)]
    for instant in instants + edges:
        index = bisect_right(clock.opens, instant) - 1
        if index < 0:
            continue
        opens, closes = clock.opens[index], clock.closes[index]
        expected = clock.before[index] + min(instant - opens, closes - opens)
        assert clock.at(instant) == expected, instant


def test_equal_groups_of_different_rows_measure_as_one(policy: Policy) -> None:
    """Rows read apart carry equal but distinct groups: their durations go to one group (the
    measuring looks a group up by its id first, then by its value)."""
    from bot.domain.report import _measure, response_clock

    rows = [
        Times.of(Group("enterprise", "web", "U1"), sydney(27, 9), sydney(27, 9), None, hour)
        for hour in (sydney(27, 10), sydney(27, 11))
    ]
    measured = _measure(rows, response_clock(policy, rows), AS_OF.timestamp())
    assert list(measured) == [Group("enterprise", "web", "U1")]
    assert measured[Group("enterprise", "web", "U1")].speed == [60, 120]


def test_the_working_clock_reads_before_the_first_window_it_grew_to(policy: Policy) -> None:
    """Grown back to a Monday after a day off, an instant before that Monday's opening reads
    as the working time before it, not 0: Mon 7 Sep 2026 08:00 to 10:00 in Sydney is 60
    working minutes, and a span from it to the end of November is the calendar's."""
    from bot.domain.report import WorkingClock

    clock = WorkingClock(policy.calendar, date(2026, 11, 2), date(2026, 11, 3))
    eight, ten = datetime(2026, 9, 6, 22, tzinfo=UTC), datetime(2026, 9, 7, 0, tzinfo=UTC)
    assert clock.minutes(eight.timestamp(), ten.timestamp()) == 60
    assert clock.minutes(eight.timestamp(), sydney(30, 17).timestamp()) == (
        policy.calendar.elapsed(eight, sydney(30, 17))
    )


def test_response_time_is_measured_in_the_first_touch_clock(policy: Policy) -> None:
    """The shipped SLA's first touch is business time: Fri 16:00 → Mon 10:00 is 2 working
    hours. An SLA whose every tier says calendar time (`2h`, `24h`) reads the same span as the
    66 hours that passed, and the report says which clock it used."""
    from bot.domain.report import responds_in_calendar_time, response_clock

    friday_4pm, monday_10am = sydney(27, 16).timestamp(), sydney(30, 10).timestamp()
    assert not responds_in_calendar_time(policy)
    span = [Times.of(ENT_WEB, sydney(27, 16), sydney(27, 16), None, sydney(30, 10))]
    assert response_clock(policy, span).minutes(friday_4pm, monday_10am) == 2 * 60

    tiers = [
        tier.model_copy(update={"first_touch": Duration.parse(text)})
        for tier, text in zip(policy.tiers, ("2h", "24h"), strict=True)
    ]
    calendar_sla = policy.model_copy(update={"tiers": tiers})
    assert responds_in_calendar_time(calendar_sla)
    assert response_clock(calendar_sla, span).minutes(friday_4pm, monday_10am) == 66 * 60

    report = build_report(WEEK, FACTS, BEFORE, calendar_sla, AS_OF)
    text = str(sla_report(report, calendar_sla).blocks)
    assert "MQL creation → first touch, calendar time" in text
    assert "response times in calendar time" in text


# --- hot and warm leads: each judged against its own tier ------------------------------------
#
# The shipped SLA: hot leads within 2 business hours, warm within 1 business day (480 working
# minutes); targets.speed_to_lead is 2 business hours. All posted on arrival, W48, Sydney.
#
#   lead  tier  received    touched   due          speed  on time
#   H1    hot   Mon 09:00   10:00     Mon 11:00    60     yes
#   H2    hot   Mon 10:00   13:00     Mon 12:00    180    no
#   W1    warm  Tue 09:00   12:00     Tue 17:00    180    yes
#   W2    warm  Tue 10:00   14:10     Wed 10:00    250    yes
#   W3    warm  Wed 09:00   –         Wed 17:00    –      no (past its deadline, untouched)
#
# First-touch compliance: 3 of 5 = 60%. The first tier's 2h line alone counts 1 of the 4
# touched within it (25%): the chart said so before. Speed: hot 60, 180 (p90 180 > 126: red);
# warm 180, 250 against its business day (green), not against the hot tier's 2 hours.


def tiered(tier: str, received: datetime, touched: datetime | None, due: datetime) -> Times:
    return Times.of(ENT_WEB, received, received, received, touched, due, tier=tier)


TIERED = Facts(
    counts={
        ENT_WEB: counts(received=5, mql=5, posted=5, accept_due=5, touch_due=5, touched_on_time=3)
    },
    dispositions={},
    escalations={},
    times=[
        tiered("hot", sydney(23, 9), sydney(23, 10), sydney(23, 11)),
        tiered("hot", sydney(23, 10), sydney(23, 13), sydney(23, 12)),
        tiered("warm", sydney(24, 9), sydney(24, 12), sydney(24, 17)),
        tiered("warm", sydney(24, 10), sydney(24, 14, 10), sydney(25, 10)),
        tiered("warm", sydney(25, 9), None, sydney(25, 17)),
    ],
)


def test_the_chart_and_the_speed_colours_judge_each_lead_by_its_own_tier(
    policy: Policy,
) -> None:
    from bot.slack.charts import first_touch_words

    report = build_report(WEEK, TIERED, Facts({}, {}, {}, []), policy, AS_OF)
    compliance = next(k for k in report.headline if k.key == "first_touch")
    assert (kpi_value(compliance), compliance.detail) == ("60%", "3 of 5")
    # The chart: each lead against its own deadline (W3, never touched, at its time so far:
    # Wed 09:00 → Mon 12:00, 1,620 working minutes), and the report's own counts.
    assert report.speed_minutes == [60, 180, 180, 250, 1620]
    assert report.speed_on_time == [True, False, True, True, False]
    assert report.window_minutes == {"hot": 120, "warm": 480}
    assert first_touch_words(*report.first_touch) == "First-touch compliance: 60% (3 of 5)"
    # Speed to lead by tier, each against the target that applies to it.
    assert kpi(report, "speed_median.hot") == (60.0, "green", "2 leads")
    assert kpi(report, "speed_p90.hot") == (180.0, "red", "2 leads")
    assert kpi(report, "speed_median.warm") == (250.0, "green", "3 leads, 1 not touched yet")
    assert kpi(report, "speed_p90.warm") == (1620.0, "red", "3 leads, 1 not touched yet")
    # the tiers have no one target
    assert kpi(report, "speed_p90") == (1620.0, None, "5 leads, 1 not touched yet")
    text = " ".join(str(block) for block in sla_report(report, policy).blocks)
    assert "hot median 1h 🟢, p90 3h 🔴 (target ≤ 2h, 2 leads)" in text
    assert "warm median 4h 10m 🟢, p90 27h 🔴 (target ≤ 8h, 3 leads, 1 not touched yet)" in text
    # The mean response time against what the SLA allows the four touched: two hot leads at
    # 2 hours and two warm at a business day, (120 + 120 + 480 + 480) / 4 = 300 minutes.
    # Against the hot tier's 2 hours alone, warm leads touched on time turned it red.
    touched = replace(TIERED, times=TIERED.times[:4])
    worked = build_report(WEEK, touched, Facts({}, {}, {}, []), policy, AS_OF)
    response = next(k for k in worked.headline if k.key == "response_mean")
    assert (response.value, response.target, response.rag) == (168.0, 300.0, "green")
    shown = " ".join(str(block) for block in sla_report(worked, policy).blocks)
    assert "mean 2h 48m 🟢 (target ≤ 5h for these tiers)" in shown  # not a bare "≤ 5h"


def test_a_figure_is_coloured_only_against_its_own_target(policy: Policy) -> None:
    report = build_report(WEEK, HAND_FACTS, Facts({}, {}, {}, []), policy, HAND_AS_OF)
    mean, median = (
        next(k for k in report.headline if k.key == key)
        for key in ("response_mean", "response_median")
    )
    assert mean.target == 120 and mean.rag == "red"  # seed 002's target: the average
    assert median.target is None and median.rag is None
    line = str(sla_report(report, policy).blocks[1])  # the line of colours
    assert "Response (median)" not in line and "Response" in line


def test_the_compliance_alert_never_shows_a_week_under_the_bar_as_the_bar(policy: Policy) -> None:
    weeks = [(Period(2026, 47, ZONE), 0.7996), (Period(2026, 48, ZONE), 0.5)]
    message = compliance_alert(weeks, [("enterprise", 0.799)], 0.8, policy)
    text = str(message.blocks[0])
    assert "Trend: 2026-W47 79.96% → 2026-W48 50%" in text
    assert "Worst segments last week: enterprise 79.9%" in text


def test_a_one_week_compliance_alert_says_one_week(policy: Policy) -> None:
    """`compliance_alert: {weeks: 1}` is a valid SLA: its alert reads "for 1 week", not
    "for 1 weeks running", in the message and its notification."""
    message = compliance_alert([(Period(2026, 48, ZONE), 0.5)], [], 0.8, policy)
    text = str(message.blocks[0])
    assert "has been under 80% for 1 week.*" in text and "1 weeks" not in text
    assert message.text.startswith("First-touch compliance under 80% for 1 week:")
    two = compliance_alert(
        [(Period(2026, 47, ZONE), 0.5), (Period(2026, 48, ZONE), 0.5)], [], 0.8, policy
    )
    assert "for 2 weeks running.*" in str(two.blocks[0])


def late_warm_lead(
    warm: str, received: datetime, touched: datetime, due: datetime, policy: Policy
) -> tuple[Policy, Report]:
    """The shipped SLA with its hot tier's first touch `2 business hours` and its warm tier's
    `warm` (a calendar duration), and its report of one warm lead received, touched and due
    as given."""
    tiers = [
        tier.model_copy(update={"first_touch": Duration.parse(text)})
        for tier, text in zip(policy.tiers, ("2 business hours", warm), strict=True)
    ]
    mixed = policy.model_copy(update={"tiers": tiers})
    late = Facts(
        counts={ENT_WEB: counts(received=1, mql=1, posted=1, accept_due=1, touch_due=1)},
        dispositions={},
        escalations={},
        times=[tiered("warm", received, touched, due)],
    )
    return mixed, build_report(WEEK, late, Facts({}, {}, {}, []), mixed, AS_OF)


def test_a_calendar_tier_beside_a_business_one_is_held_to_a_business_day_not_three(
    policy: Policy,
) -> None:
    """Seed 000's "2 hours for high‑intent, 24 hours for mid‑funnel", written `2 business
    hours` and `24h`: one business-time tier makes the report measure working time, and a warm
    lead's 24 hours then hold at most one working day (480 minutes here), not 1,440 working
    minutes (three 8-hour days). A warm lead received Tue 09:00 and touched Thu 12:00 is two
    days past its Wed 09:00 deadline: 1,140 working minutes, red, not green."""
    _, report = late_warm_lead("24h", sydney(24, 9), sydney(26, 12), sydney(25, 9), policy)
    assert report.window_minutes == {"hot": 120, "warm": 480}
    assert kpi(report, "speed_median.warm") == (1140.0, "red", "1 lead")
    response = next(k for k in report.headline if k.key == "response_mean")
    assert (response.value, response.target, response.rag) == (1140.0, 480.0, "red")


def test_a_calendar_week_beside_a_business_tier_holds_a_working_week_not_seven_days(
    policy: Policy,
) -> None:
    """A `1w` tier beside a `2 business hours` one: seven calendar days hold at most five
    working days on Monday to Friday (2,400 minutes here), not seven (3,360). A lead received
    Mon 09:00 and touched the next Monday at 11:30 is past its week: 2,550 working minutes, red
    against 2,400, not green against 3,360."""
    mixed, report = late_warm_lead("1w", sydney(23, 9), sydney(30, 11, 30), sydney(30, 9), policy)
    assert report.window_minutes == {"hot": 120, "warm": 2400}
    assert kpi(report, "speed_median.warm") == (2550.0, "red", "1 lead")
    for text, most in (("6d", 2400), ("2w", 4800), ("36h", 960), ("30m", 30), ("3d", 1440)):
        assert clock_minutes(Duration.parse(text), mixed) == most, text


def test_each_conversion_rate_is_over_the_stage_before_it() -> None:
    """Seed 002's conversion metrics: MQL → SAL is of the marketing leads (those that could be
    claimed by now), SAL → SQL "of accepted leads", MQL → SQL of every posted one. 20 posted, 4
    still inside their claim window, 8 accepted, 2 SQLs: 50%, 25% and 10%."""
    funnel = Funnel(mql=22, posted=20, sal=8, sql=2, waiting=4)
    assert funnel.mql_to_sal == 0.5
    assert funnel.sal_to_sql == 0.25
    assert funnel.mql_to_sql == 0.1
    assert Funnel(mql=3, posted=3, sal=0, sql=0).sal_to_sql is None  # none accepted: no rate


def test_a_week_in_progress_neither_colours_nor_compares_its_running_totals(
    policy: Policy,
) -> None:
    """docs/reports.md: MQL volume and the amounts are not coloured while the period is in
    progress, nor compared with the period before (Monday's few MQLs against last week's
    whole read as a fall). The week ends at Monday 00:00: from that instant it is over."""
    thursday = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # Thu 26 Nov 12:00 in Sydney
    running = build_report(WEEK, FACTS, BEFORE, policy, thursday)
    assert running.in_progress
    assert [k.rag for k in running.volume] == [None, None, None]
    mqls = next(k for k in running.headline if k.key == "mql")
    assert mqls.previous is None and kpi_change(mqls) == ""
    over = build_report(WEEK, FACTS, BEFORE, policy, WEEK.end)
    assert not over.in_progress
    assert [k.rag for k in over.volume] == ["green", "red", "red"]


def test_a_month_s_volume_target_is_the_weekly_one_times_its_days_over_7(policy: Policy) -> None:
    """docs/reports.md: a month scales `mql_per_week` by its days ÷ 7. November has 30 days:
    enterprise's 10 a week is 42.9 for the month (not 40, four whole weeks)."""
    november = Period(2026, 11, ZONE, "month")
    volume = build_report(november, FACTS, BEFORE, policy, AS_OF).volume
    assert volume[0].key == "enterprise" and volume[0].target == pytest.approx(10 * 30 / 7)
    assert "10 a week × 4.3 weeks" in volume[0].detail

"""How `/sla-report` reads (bot/slack/report_views.py): each figure once, marketing's table as
long as Slack allows, and names as people write them."""

from __future__ import annotations

from typing import Any

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.report import Counts, Facts, Group, Report, build_report, week_of
from bot.slack.blocks import MAX_BLOCKS, SECTION_LIMIT
from bot.slack.report_views import marketing_sections, rejection_summary, sla_report
from tests.unit.test_render import assert_valid_message
from tests.unit.test_report_kpis import AS_OF, BEFORE, FACTS, WEEK

NOTHING = Facts({}, {}, {}, [])


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Each block's text (a fields block: its fields)."""
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [item["text"] for item in block.get("fields", [])]
        found += [item["text"] for item in block.get("elements", []) if block["type"] == "context"]
    return found


def campaigns(count: int, source: str = "paid_search") -> Facts:
    """`count` campaigns of one source, one MQL each, with names long enough to fill Slack."""
    groups = {
        Group("enterprise", source, "U0REP1", f"Campaign {n:03d} " + "x" * 40): Counts(
            received=1, mql=1, posted=1, accept_due=1
        )
        for n in range(count)
    }
    return Facts(groups, {}, {}, [])


def test_each_figure_is_shown_once(policy: Policy) -> None:
    text = "\n".join(
        texts(sla_report(build_report(WEEK, FACTS, BEFORE, policy, AS_OF), policy).blocks)
    )
    # MQL → SAL 57% (8 of 14): its field, not again in the line of colours or the funnel.
    assert text.count("57%") == 1
    assert "🔴 First touch, MQL→SAL" in text and "14 MQLs posted → 8 SAL → 4 SQL" in text
    # Each source once: marketing's table by source (no separate "By source" list).
    assert "*By source*" not in text
    assert text.count("• webinar:") == 1 and text.count("• event:") == 1


def test_every_campaign_is_listed_while_slack_has_room(policy: Policy) -> None:
    report = build_report(WEEK, campaigns(40), NOTHING, policy, AS_OF)
    message = sla_report(report, policy)
    assert_valid_message(message)
    text = "\n".join(texts(message.blocks))
    assert text.count("• paid search · Campaign") == 40 and "more" not in text


def test_rows_that_do_not_fit_are_counted(policy: Policy) -> None:
    report = build_report(WEEK, campaigns(80), NOTHING, policy, AS_OF)
    sections = marketing_sections(report, None, room=2)
    assert len(sections) == 2 and all(len(text) <= SECTION_LIMIT for text in sections)
    shown = sum(text.count("• paid search · Campaign") for text in sections)
    assert 30 < shown < 80
    assert sections[-1].endswith(f"…and {80 - shown} more")  # the rest, counted exactly
    message = sla_report(report, policy)
    assert len(message.blocks) <= MAX_BLOCKS


def test_keys_read_as_words_and_sources_by_count_then_name(policy: Policy) -> None:
    facts = Facts(
        {
            Group("mid_market", "paid_search", "U0REP3"): Counts(
                received=1, mql=1, posted=1, accept_due=1
            ),
            Group("mid_market", "webinar", "U0REP3"): Counts(
                received=5, mql=1, posted=1, accept_due=1
            ),
            Group("mid_market", "event", "U0REP3"): Counts(
                received=3, mql=3, posted=3, accept_due=3
            ),
            Group("mid_market", "demo_request", "U0REP3"): Counts(
                received=3, mql=3, posted=3, accept_due=3
            ),
        },
        {},
        {},
        [],
    )
    report: Report = build_report(WEEK, facts, NOTHING, policy, AS_OF, segment="mid_market")
    text = "\n".join(texts(sla_report(report, policy).blocks))
    assert not any(key in text for key in ("mid_market", "paid_search", "demo_request"))
    assert "*By segment*\n• *mid market*: 8 MQLs" in text and "· mid market" in text
    table = text.split("_Source_\n")[1].split("\n_Campaign_")[0]  # marketing's, by source
    sources = [line.split(":")[0] for line in table.splitlines()]
    assert sources == ["• demo request", "• event", "• paid search", "• webinar"]


def test_marketings_rejection_review_shows_each_pair_whole_and_counts_the_rest(
    policy: Policy,
) -> None:
    """20 campaigns rejected for 4 reasons each pass one section's 3,000 characters: the
    section was clipped mid-line, and the count of the pairs not shown went with it."""
    reasons = [
        ("not_a_fit", "Not ICP"),
        ("not_a_fit", "No budget"),
        ("not_a_fit", "Already using competitor"),
        ("bad_data", "Wrong contact"),
    ]
    rows = [
        ("paid_search", f"FY27 enterprise pipeline campaign {n:02d} (APAC)", code, reason, 40 - n)
        for n in range(20)
        for code, reason in reasons
    ]
    message = rejection_summary(week_of(AS_OF.date(), policy.timezone), rows, policy)
    assert_valid_message(message)
    shown = texts(message.blocks)
    assert not any(text.endswith("…") for text in shown)
    lines = [line for text in shown for line in text.split("\n") if line.startswith("• ")]
    assert len(lines) == 16  # the largest pairs, each with every reason
    assert all(line.endswith("Wrong contact (data) " + str(40 - n)) for n, line in enumerate(lines))
    assert "…and 4 more source and campaign pairs" in "\n".join(shown)


def test_rejection_reasons_past_the_five_shown_are_counted(policy: Policy) -> None:
    """Seven reasons, 16 rejections: the report (and the weekly digest) lists the five most
    frequent, 13 leads, and says the other two reasons and their 3 leads exist. Before, the
    bullets summed to 13 under a heading that counted 16 (definition 10 · data 6), and "Wrong
    contact" and "Student or job seeker" were nowhere (SPEC: the report shows the "rejection
    reasons"; seed 004: leaders "reviewing rejected leads together")."""
    mix = {
        ("not_a_fit", "Not ICP"): 4,
        ("not_a_fit", "No budget"): 3,
        ("bad_data", "Fake or spam"): 2,
        ("not_a_fit", "Already using competitor"): 2,
        ("bad_data", "Wrong contact"): 2,
        ("bad_data", "Wrong company"): 2,
        ("not_a_fit", "Student or job seeker"): 1,
    }
    facts = Facts(FACTS.counts, mix, {}, [])
    report = build_report(WEEK, facts, BEFORE, policy, AS_OF)
    for message in (sla_report(report, policy), sla_report(report, policy, digest=True)):
        text = "\n".join(texts(message.blocks))
        assert "*Why leads were rejected* (MQL definition 10 · data 6):" in text
        assert text.count("(MQL definition): ") + text.count("(data): ") == 5
        assert "…and 2 more reasons (3 leads)" in text
        assert_valid_message(message)


def test_the_notification_escapes_a_segments_name_once(policy: Policy) -> None:
    """The `text` fallback is mrkdwn: `&`, `<` and `>` are escaped once (Slack's formatting
    reference), so the notification reads `R&D`, not the `R&amp;D` of escaping it twice."""
    content = snapshot(policy)
    content["segments"][0]["name"] = "R&D <labs>"
    for key in ("mql_per_week",):
        content["targets"][key]["R&D <labs>"] = content["targets"][key].pop("enterprise")
    content["plan"]["revenue_split"]["R&D <labs>"] = content["plan"]["revenue_split"].pop(
        "enterprise"
    )
    labs = parse_policy(content)
    report = build_report(WEEK, FACTS, NOTHING, labs, AS_OF, segment="R&D <labs>")
    message = sla_report(report, labs)
    assert message.text.startswith("SLA report 2026-W48 · R&amp;D &lt;labs&gt;: ")
    assert "R&amp;D &lt;labs&gt;" in texts(message.blocks)[0]  # the blocks, escaped once too


def test_fired_escalations_are_named_as_the_sla_names_them(policy: Policy) -> None:
    """The report's escalations read as `/sla` and `handoff report` name each clock ("first
    touch overdue"), not by the SLA file's keys ("no touch", "unclaimed")."""
    fired = {
        ("no_touch", "reassign"): 3,
        ("unclaimed", "notify_manager"): 1,
        ("no_feedback", "remind_owner"): 2,
        ("no_outcome", "notify_manager"): 1,
    }
    report = build_report(WEEK, Facts({}, {}, fired, []), NOTHING, policy, AS_OF)
    text = "\n".join(texts(sla_report(report, policy).blocks))
    line = next(line for line in text.splitlines() if line.startswith("*Escalations fired*"))
    assert "first touch overdue: reassigned 3" in line
    assert "claim overdue: managers alerted 1" in line
    assert "first feedback (a disposition) overdue: reminder to the owner 2" in line
    assert "final disposition overdue: managers alerted 1" in line
    assert not any(key in line for key in ("no touch", "unclaimed", "no feedback", "no outcome"))

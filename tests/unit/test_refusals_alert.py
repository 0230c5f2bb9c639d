"""The managers' alert about a channel's refused messages is re-rendered in place with
chat.update, whose `text` "cannot exceed 4,000 characters" (`msg_too_long`, Slack's chat.update
reference: shared/slack/methods/chat.update.json). However many segments sla.yaml moved from
that channel, the alert stays within it, so its counts keep being updated."""

from __future__ import annotations

from bot.domain.effects import WEEKLY_DIGEST, Moved, ReportPart, Resent
from bot.slack.alert_views import refusals_alert
from bot.slack.blocks import EDIT_TEXT_LIMIT
from tests.unit.test_render import view

OLD = "C0EMEA"


def moved(count: int) -> list[Moved]:
    """`count` segments (names of 40 characters, the most the alert shows) moved elsewhere."""
    return [
        Moved(f"emea_country_{index:02d}_".ljust(40, "x"), f"C0NEW{index:04d}", 7)
        for index in range(count)
    ]


def alert(segments: list[Moved], *, mended: bool = True) -> str:
    lead = view(name="N" * 300, external_id="e" * 255)
    resent = Resent(
        rejections=12,
        dispositions=3,
        notices=2,
        reports=tuple((WEEKLY_DIGEST, f"2026-W{week:02d}") for week in range(1, 40)),
        charts=40,
        retired=5,
    )
    return refusals_alert(
        "post_lead",
        OLD,
        "is_archived",
        "Unarchive the channel, or change its segment's channel in sla.yaml.",
        lead,
        refused=1234,
        mended=mended,
        reposted=56,
        resent=resent,
        report=ReportPart(WEEKLY_DIGEST, "2026-W40"),
        moved=segments,
    )


def test_an_alert_with_many_segments_moved_stays_within_what_chat_update_takes() -> None:
    assert EDIT_TEXT_LIMIT == 4000
    for count in (1, 5, 20, 60):
        for mended in (False, True):
            text = alert(moved(count), mended=mended)
            assert len(text) <= EDIT_TEXT_LIMIT, (count, mended, len(text))
            assert text.startswith(":warning: 1234 messages to <#C0EMEA> were refused")
            assert ("takes messages again" in text) is mended


def test_the_segments_that_do_not_fit_are_counted_with_their_leads() -> None:
    few = alert(moved(2))
    assert few.count(":arrow_right:") == 2 and "more segments" not in few
    many = alert(moved(60))
    shown = many.count(":arrow_right: sla.yaml moved the `")
    assert 0 < shown < 60
    rest = 60 - shown
    assert (
        f":arrow_right: sla.yaml moved {rest} more segments to other channels: Handoff "
        f"posts there the {rest * 7} leads it could not post in <#{OLD}>."
    ) in many

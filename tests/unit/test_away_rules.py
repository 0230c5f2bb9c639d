"""Time away as typed (`/handoff away [until] [note]`) and the Slack statuses that mean away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.away import (
    AwayAsk,
    is_away,
    parse_away,
    parse_back,
    parse_until,
    status_counts,
    status_until,
)
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot
from bot.domain.refusal import Refusal
from handlers.context import parse

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 23 Nov, 11:00 in Sydney (AEDT, UTC+11)


def sydney_9am(day: int) -> datetime:
    """09:00 in Sydney on `day` November 2026, in UTC (22:00 the day before)."""
    return datetime(2026, 11, day, 9, 0, tzinfo=UTC) - timedelta(hours=11)


@pytest.mark.parametrize(
    ("word", "back"),
    [
        ("2026-11-25", sydney_9am(26)),  # through Wed: back Thu when work starts
        ("2026-11-23", sydney_9am(24)),  # today's date: through today, as `today` is
        ("tomorrow", sydney_9am(25)),
        ("today", sydney_9am(24)),
        ("mon", sydney_9am(24)),  # today is Monday: through today
        ("Fri", sydney_9am(30)),  # through Friday: back on Monday (the weekend is not work)
        ("friday", sydney_9am(30)),
        ("wed", sydney_9am(26)),
        ("3d", NOW + timedelta(days=3)),
        ("4h", NOW + timedelta(hours=4)),
        ("2w", NOW + timedelta(weeks=2)),
        ("1bd", NOW + timedelta(days=1)),  # 11:00 Monday + a working day: 11:00 Tuesday
        ("366d", NOW + timedelta(days=366)),  # "at most a year": the longest there is
    ],
)
def test_until_reads_days_weekdays_and_durations(policy: Policy, word: str, back: datetime) -> None:
    assert parse_until(word, NOW, policy.calendar) == back


@pytest.mark.parametrize(
    ("word", "problem"),
    [
        ("2026-11-20", "has passed already"),
        ("2026-02-30", "is not a date on the calendar"),
        ("soon", "I can't read 'soon' as until when"),
        ("3 months", "I can't read"),
        ("2028-01-01", "more than a year ahead"),
        ("400d", "more than a year ahead"),
        ("9999-12-31", "more than a year ahead"),  # no day after it: was an OverflowError
        ("99999999999999w", "more than a year ahead"),  # past any date
        ("99999999bd", "more than a year ahead"),  # past the business calendar's reach
        ("-1d", "-1d is in the past"),
        ("-0d", "-0d is in the past"),
        ("0d", "0d is no time at all: away for how long?"),
        ("0h 0m", "0h 0m is no time at all"),
        # A dash before what is no duration is not time back from now: it cannot be read.
        ("-", "I can't read '-' as until when"),
        ("-x", "I can't read '-x' as until when"),
        ("--fri", "I can't read '--fri' as until when"),
    ],
)
def test_a_bad_until_is_refused_with_the_accepted_forms(
    policy: Policy, word: str, problem: str
) -> None:
    with pytest.raises(Refusal) as refused:
        parse_until(word, NOW, policy.calendar)
    assert problem in refused.value.message
    assert "a weekday (`fri`" in refused.value.message and "`3d`" in refused.value.message


@pytest.mark.parametrize("word", ["0" * 20_000, "-" + "9" * 20_000, "1" * 20_000 + "?"])
def test_a_long_run_of_digits_is_refused_at_once(policy: Policy, word: str) -> None:
    """`/handoff away` is answered after it is read, on the server's one event loop: a word of
    digits with no unit must not be read in time growing with its square (a 4,000-digit word
    took seconds, so every other person's Slack request waited past its 3 s ack). No clock is
    asserted (tests never time themselves): read the old way, each of these 20,000-digit
    words took over a minute, so a return of it keeps this test from finishing in CI's time."""
    with pytest.raises(Refusal, match="as until when"):
        parse_away(word + " note", NOW, policy.calendar)


def test_away_takes_an_optional_rep_first_and_a_note_last(policy: Policy) -> None:
    assert parse_away("fri  Offsite in Melbourne ", NOW, policy.calendar) == AwayAsk(
        None, sydney_9am(30), "Offsite in Melbourne"
    )
    mentioned = parse_away("<@U0REP2|tom> 3d", NOW, policy.calendar)
    assert (mentioned.who, mentioned.note) == ("U0REP2", None)
    assert parse_away("@tom tomorrow dentist", NOW, policy.calendar).who == "@tom"
    assert len(parse_away("3d " + "x" * 500, NOW, policy.calendar).note or "") == 200


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("tomorrow @tom", "/handoff away @tom tomorrow"),
        ("fri <@U0REP2|tom> Offsite", "/handoff away @tom fri Offsite"),
        ("3d <@U0REP2>", "/handoff away <@U0REP2> 3d"),
    ],
)
def test_a_rep_named_after_the_date_is_refused_with_the_order_that_works(
    policy: Policy, text: str, meant: str
) -> None:
    with pytest.raises(Refusal) as refused:
        parse_away(text, NOW, policy.calendar)
    assert str(refused.value) == (
        f"Did you mean `{meant}`? The rep comes first. Nothing was changed."
    )
    # A mention later in the note, or after the rep, is the note's.
    assert parse_away("fri ping @tom", NOW, policy.calendar).note == "ping @tom"
    assert parse_away("@tom fri @ana covers", NOW, policy.calendar).note == "@ana covers"


def test_the_refusal_of_a_rep_named_late_quotes_a_long_note_short(policy: Policy) -> None:
    """The order that works is quoted back, clipped: a long note is not repeated in full."""
    with pytest.raises(Refusal) as refused:
        parse_away("fri @tom " + "offsite " * 100, NOW, policy.calendar)
    assert str(refused.value).startswith("Did you mean `/handoff away @tom fri offsite")
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(("text", "who"), [("", None), ("   ", None), ("@tom", "@tom")])
def test_away_without_an_until_lasts_until_back(policy: Policy, text: str, who: str) -> None:
    """SPEC: `/handoff away` takes no argument: alone, it is away until `/handoff back`."""
    assert parse_away(text, NOW, policy.calendar) == AwayAsk(who, None, None)


def test_back_takes_nothing_or_a_rep() -> None:
    assert parse_back("").who is None
    assert parse_back("<@U0REP2>").who == "U0REP2"
    with pytest.raises(Refusal, match="takes no more than a rep"):
        parse_back("tomorrow please")


@pytest.mark.parametrize(
    ("emoji", "text", "away"),
    [
        (":palm_tree:", "", True),
        (":PALM_TREE:", "Back Monday", True),
        ("", "Out of office until Mon", True),
        ("", "out  of OFFICE", True),
        (":coffee:", "Watching cold brew steep", False),
        ("", "", False),
        (":palm_tree_2:", "", False),  # an emoji matches whole, not as a prefix
    ],
)
def test_statuses_the_sla_lists_mean_away(emoji: str, text: str, away: bool) -> None:
    assert status_counts(emoji, text, [":palm_tree:", "Out of office"]) is away


def test_a_status_emoji_in_a_skin_tone_is_the_emoji_listed() -> None:
    """Slack writes an emoji in a skin tone as the emoji then its tone
    (`:raised_hand::skin-tone-3:`; without the tone it is the default one): a rep whose status
    is the listed emoji in their skin tone is away; the tone listed is held to that tone."""
    entries = [":raised_hand:", ":man-surfing::skin-tone-2:"]
    assert status_counts(":raised_hand::skin-tone-3:", "", entries)
    assert status_counts(":man-surfing::skin-tone-2:", "", entries)
    assert not status_counts(":man-surfing::skin-tone-4:", "", entries)
    assert not status_counts(":raised_hands::skin-tone-3:", "", entries)


def test_an_entry_is_read_as_written_loosely() -> None:
    """`Out  of office` (two spaces) in the file matches the status; `OOO:` is text, not an
    emoji, as it does not start with a colon."""
    entries = ["Out  of office", "OOO:"]
    assert status_counts("", "Out of office until Mon", entries)
    assert status_counts(":spiral_calendar_pad:", "OOO: back Monday", entries)


def test_nothing_listed_means_no_status_is_away() -> None:
    assert not status_counts(":palm_tree:", "Out of office", [])


def test_a_status_counts_until_it_expires() -> None:
    assert status_until(0, NOW) is None  # no expiration: until it is cleared
    later = NOW + timedelta(days=2)
    assert status_until(int(later.timestamp()), NOW) == later
    assert status_until(int((NOW - timedelta(hours=1)).timestamp()), NOW) == NOW  # expired


def test_time_away_ends_at_its_until() -> None:
    """The end is exclusive, as the stored time away's is: back at `until`, not a moment later."""
    until = NOW + timedelta(days=2)
    assert is_away(until, until - timedelta(seconds=1))
    assert not is_away(until, until)
    assert is_away(None, NOW + timedelta(days=400))  # until `/handoff back`


def test_away_statuses_in_the_sla_file_are_checked(policy: Policy) -> None:
    content = snapshot(policy)
    assert parse_policy(content | {"away_statuses": [" :palm_tree: ", "OOO"]}).away_statuses == [
        ":palm_tree:",
        "OOO",
    ]
    with pytest.raises(PolicyError) as error:
        parse_policy(content | {"away_statuses": [":palm tree:", ""]})
    problems = "\n".join(error.value.problems)
    assert "away_statuses" in problems and "not an emoji" in problems


def test_setting_someone_else_back_is_a_managers_action() -> None:
    mine = {"command": "/handoff", "text": "back", "user_id": "U0REP1", "user_name": "maya"}
    theirs = {**mine, "text": "back <@U0REP2|tom>"}
    assert parse(mine).action is None
    assert parse(theirs).action is not None and parse(theirs).action.value == "away_for_others"


def test_an_emoji_in_a_skin_tone_is_an_entry_the_sla_file_takes(policy: Policy) -> None:
    """docs/sla-file.md: an entry with a tone (`:man-surfing::skin-tone-2:`, as Slack writes a
    status emoji in a tone) matches that tone only; `handoff check` takes it, not "is not an
    emoji". A tone that is no tone (`::skin-tone-7:`, `:a::b:`) is still refused."""
    content = snapshot(policy)
    entries = [":man-surfing::skin-tone-2:", " :raised_hand::skin-tone-6: "]
    parsed = parse_policy(content | {"away_statuses": entries}).away_statuses
    assert parsed == [":man-surfing::skin-tone-2:", ":raised_hand::skin-tone-6:"]
    assert status_counts(":man-surfing::skin-tone-2:", "", parsed)
    assert not status_counts(":man-surfing::skin-tone-3:", "", parsed)
    for wrong in (":raised_hand::skin-tone-7:", ":raised_hand::palm_tree:", "::skin-tone-2:"):
        with pytest.raises(PolicyError) as error:
            parse_policy(content | {"away_statuses": [wrong]})
        assert "not an emoji" in "\n".join(error.value.problems), wrong

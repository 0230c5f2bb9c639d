"""What `/handoff away` and `/handoff back` answer, privately, in plain words (the listener
escapes them with `as_mrkdwn`, keeping only the mentions written here)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.slack.text import clip, escape, plain, slack_date


def until_words(until: datetime | None, zone: str) -> str:
    """`Thu 24 Dec, 09:00 AEDT` in the team's zone; "until you're back" has no date."""
    if until is None:
        return "further notice"
    return until.astimezone(ZoneInfo(zone)).strftime("%a %d %b, %H:%M %Z").strip()


def away_set(who: str, actor: str, until: datetime | None, note: str | None, zone: str) -> str:
    """The answer to `/handoff away`: who is away, until when (None: until back), and what
    that changes."""
    about = f" ({plain(note, 200)})" if note else ""
    if who == actor:
        when = until_words(until, zone) if until else "you say `/handoff back`"
        return (
            f"You're away until {when}{about}: new leads skip you, and an open lead of yours "
            "goes back to the pool when its next deadline passes while you're away. "
            "`/handoff back` when you're back."
        )
    when = until_words(until, zone) if until else "they're back"
    return (
        f"<@{who}> is away until {when}{about}: new leads skip them, and an open lead of "
        f"theirs goes back to the pool when its next deadline passes. I've told them by DM. "
        f"`/handoff back <@{who}>` ends it early."
    )


def back(who: str, actor: str, was_away: bool, status: str | None) -> str:
    """The answer to `/handoff back`; `status`: the Slack status that still reads as away."""
    you = who == actor
    if not was_away:
        text = "You weren't away" if you else f"<@{who}> wasn't away"
        text += ": nothing was changed."
    else:
        text = (
            "Welcome back: new leads come to you again."
            if you
            else (f"<@{who}> is back: new leads go to them again. I've told them by DM.")
        )
    if status:
        whose = "Your" if you else "Their"
        text += (
            f" {whose} Slack status ({plain(status, 100)}) still says away, so Handoff counts "
            f"{'you' if you else 'them'} away again at its next look: clear the status too."
        )
    return text


def set_away_dm(actor: str, until: datetime | None, note: str | None, zone: str) -> str:
    """The DM to a rep a manager (`actor`) set away: until when (Slack shows the time in the
    rep's own zone) and what it changes. Message text: the note is escaped here."""
    when = "further notice" if until is None else slack_date(until, zone)
    about = f" — {clip(escape(plain(note, 200)), 200)}" if note else ""
    return (
        f"<@{actor}> set you away until {when}{about}. New leads skip you until then; "
        "`/handoff back` to return."
    )


def set_back_dm(actor: str) -> str:
    """The DM to a rep a manager (`actor`) set back."""
    return f"<@{actor}> set you back: new leads reach you again."

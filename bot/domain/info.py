""" "Request more info" (seed 003): a rep sends a lead back to marketing with a question; the
lead comes back to its owner with the answer.

While marketing has the question the lead stays accepted (SAL) and its owner's clocks pause:
no escalation runs, and when the answer comes each deadline still ahead at the question gets
the working time it had left then; a deadline already passed stays passed, and its steps
still to come wait the pause out. The question is feedback to marketing in words, not a
disposition: the lead's final outcome is still to come.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.domain.access import Action
from bot.domain.businesstime import BusinessCalendar, carried
from bot.domain.cadence import next_touch_carried
from bot.domain.durations import Clock
from bot.domain.lead import LeadView, check_work
from bot.domain.policy import Policy
from bot.domain.refusal import Reason, Refusal

QUESTION_MAX = 1000  # characters: a question, not a brief
ANSWER_MAX = 2000
MORE_INFO = "more_info"  # the disposition outcome that asks


def _written(text: str | None, field: str, limit: int, empty: str, what: str) -> str:
    """`text` stripped; Refusal (on the modal's `field` input) if empty or over `limit`."""
    value = (text or "").strip()
    if value and len(value) <= limit:
        return value
    problem = (
        empty if not value else f"Keep the {what} under {limit} characters ({len(value)} now)."
    )
    raise Refusal(problem, fields={field: problem})


def check_question(text: str | None) -> str:
    """The question as it will be sent; Refusal (on the modal's `question` input) if empty or
    too long."""
    return _written(
        text, "question", QUESTION_MAX, "Write the question marketing should answer.", "question"
    )


def check_answer_text(text: str | None) -> str:
    """The answer as it will be sent; Refusal (on the modal's `answer` input) if empty or too
    long."""
    return _written(text, "answer", ANSWER_MAX, "Write the answer for the lead's owner.", "answer")


def check_ask(lead: LeadView, actor: str, policy: Policy) -> None:
    """Raise Refusal unless `actor` may send this lead back to marketing with a question now:
    its owner (or a manager), on a claimed open lead not already waiting for an answer."""
    check_work(lead, actor, policy, "ask marketing for more info", Action.DISPOSE)


def check_answerer(actor: str, channel: str | None, policy: Policy) -> None:
    """Raise Refusal unless `actor` may answer: whoever can press Answer in the marketing
    feedback channel (its members), and the sales managers anywhere."""
    if channel == policy.channels.marketing_feedback or policy.is_manager(actor):
        return
    raise Refusal(
        "Only marketing (in the feedback channel) or a sales manager can answer this question; "
        "nothing was changed.",
        Reason.NOT_ALLOWED,
    )


def token(asked_at: datetime) -> str:
    """The question's id on its Answer button: when it was asked, in microseconds."""
    return str(round(asked_at.timestamp() * 1_000_000))


def asked_at_of(value: str) -> datetime | None:
    """The time a question `token` names (None: not a token Handoff makes)."""
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)
    except (OverflowError, ValueError, OSError):  # past the years a datetime holds
        return None


def is_current(lead: LeadView, asked_at: datetime) -> bool:
    """Whether the question asked at `asked_at` is the one the lead waits on."""
    return (
        lead.info_asked_at is not None and abs(lead.info_asked_at - asked_at).total_seconds() < 1e-3
    )


def resumed(lead: LeadView, policy: Policy, now: datetime) -> LeadView:
    """The lead back with its owner at `now`: each deadline still ahead when the question was
    asked gets the working time it had left then; one already passed stays as it was, and the
    pause is kept with the cycle's others (`info_pauses`), so the steps of that deadline still
    to come wait it out too (bot/domain/escalation.py `windows`)."""
    paused = lead.info_asked_at
    back = replace(lead, info_question=None, info_asked_at=None, info_asked_by=None)
    if paused is None:
        return back
    back = replace(back, info_pauses=(*lead.info_pauses, (paused, now)))
    calendar = policy.calendar_for(lead.owner_zone)

    def moved(
        due: datetime | None, clock: Clock, on: BusinessCalendar = calendar
    ) -> datetime | None:
        """`due` moved on by the pause, in the clock of the duration that set it."""
        return carried(due, clock, paused, now, on)

    touch = policy.tier(lead.tier).first_touch
    first = (  # set at arrival, on the team's calendar: it runs there (escalation.calendar_of)
        moved(lead.first_touch_due_at, touch.clock, policy.calendar)
        if lead.first_touch_at is None
        else lead.first_touch_due_at
    )
    following = next_touch_carried(lead, policy.follow_up.within.clock, paused, now, calendar)
    if lead.next_touch_due_at is not None and lead.touches_counted == 0:
        following = first  # before any attempt the next touch is the first (cadence.py)
    return replace(
        back,
        first_touch_due_at=first,
        disposition_due_at=moved(lead.disposition_due_at, policy.disposition_deadline.clock),
        final_due_at=moved(lead.final_due_at, policy.final_deadline.clock),
        next_touch_due_at=following,
    )

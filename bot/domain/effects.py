"""What a change causes in Slack, as data: the use case decides the effects, storage writes
them to the outbox in the change's own transaction, and the delivery worker sends them.

Keys make an effect happen once: a second effect with the key of one already written is
ignored (a retried request, or two replicas deciding the same thing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.lead import LeadView


class Announce(StrEnum):
    """A lead's messages that are rendered from its stored state when they are sent."""

    POST = "post_lead"  # its message in its segment channel
    NURTURE = "nurture_notice"  # a lead that did not qualify, told to marketing
    FEEDBACK = "feedback"  # its disposition, told to marketing


@dataclass(frozen=True)
class Render:
    """One of the lead's messages (`what`) in `channel`, rendered when it is sent."""

    what: Announce
    lead_id: int
    channel: str
    key: str
    cycle: int | None = None  # a new cycle's post of a recycled lead


# What a report's message is (`ReportPart.what`): bot/services/digest.py marks each message and
# chart of a weekly or monthly run with it, so the managers' alerts can name one Slack refused
# and, once its channel takes messages again, what was sent again (`Resent`).
WEEKLY_DIGEST, REJECTION_REVIEW, MONTHLY_DIGEST = (
    "weekly_digest",
    "rejection_review",
    "monthly_digest",
)


@dataclass(frozen=True)
class ReportPart:
    """Which report a message (or a chart) is part of: `what` (WEEKLY_DIGEST, REJECTION_REVIEW
    or MONTHLY_DIGEST) and its period's label (`2026-W48`, `2026-11`)."""

    what: str
    period: str


@dataclass(frozen=True)
class Resent:
    """What else than leads' posts Handoff sent again to a channel that takes messages again,
    as the managers' alert about its refusals tells it: marketing's messages by what they
    told, the reports by what and which period, the edits retiring the posts of leads' ended
    cycles."""

    rejections: int = 0
    dispositions: int = 0  # a lead put back in nurture or recycling
    notices: int = 0  # "not an MQL, kept in nurture"
    # (WEEKLY_DIGEST, REJECTION_REVIEW or MONTHLY_DIGEST, its period's label), oldest first
    reports: tuple[tuple[str, str], ...] = ()
    charts: int = 0
    retired: int = 0  # the posts of leads' ended cycles, retired (outbox kind `retire_post`)


@dataclass(frozen=True)
class Moved:
    """Leads whose posts Slack refused in a channel, posted in their segment's channel once
    sla.yaml moved the segment there, as the managers' alert about the old channel tells it:
    the segment, its channel now, and how many of those leads (erased ones not counted)."""

    segment: str
    channel: str
    leads: int


@dataclass(frozen=True)
class Send:
    """A ready-made message: to a channel, a person (a user id: their DM), or a lead's thread."""

    channel: str
    text: str
    key: str
    lead_id: int | None = None
    blocks: tuple[dict[str, object], ...] = ()
    thread_ts: str | None = None
    # It asks its reader to claim the lead (`lead_id`): left unsent if, by the time it goes,
    # the lead is claimed (by them, or anyone) or closed: nothing is left to claim.
    asks_claim: bool = False
    report: ReportPart | None = None  # the report it is (a weekly or monthly run's message)


@dataclass(frozen=True)
class Upload:
    """A file (a report chart) for a channel, or a user id's DM."""

    channel: str
    filename: str
    title: str
    content: bytes
    key: str | None = None
    comment: str | None = None
    alt_text: str | None = None
    report: ReportPart | None = None  # the report it is a chart of


@dataclass(frozen=True)
class Refresh:
    """Re-render the lead's message from its state (repeated refreshes collapse into one)."""

    lead_id: int


@dataclass(frozen=True)
class RefreshHomes:
    """Re-publish the App Homes of `users`, and of the owners and suggested owners of `leads`
    (as they are once the change is written); only of people who have opened App Home. A
    change to a lead on the managers' overdue list names the managers in `users`."""

    users: tuple[str, ...] = ()
    leads: tuple[int, ...] = ()


@dataclass(frozen=True)
class Settle:
    """Replace messages about the lead in place with `text`, their menu and buttons gone: what
    was done about them. By default the managers' escalation alerts of its `cycle` (sent keyed
    `alert_key`) that nothing settled yet: a claim, a final disposition or a reassignment
    settles them all, whichever comes first; with `clocks`, only the alerts about those clocks
    (feedback given meets `no_feedback`, not `no_outcome`: bot/domain/escalation.py
    `clocks_met`); `of`, the key (a LIKE pattern) of other messages (marketing's question once
    it is answered). Keyed by the change (`key`): each message once per settling change."""

    lead_id: int
    cycle: int
    text: str | Callable[[], str]  # or what writes it, when there is a message to settle
    key: str
    of: str | None = None
    clocks: frozenset[str] | None = None  # None: every open alert of the cycle

    def settles(self, alert: str) -> bool:
        """Whether this settles the open alert keyed `alert` (any of the lead's alerts): one of
        its cycle, about one of its clocks. An alert sent before alerts named their clock
        settles only with all of them."""
        if not alert.startswith(alert_prefix(self.lead_id, self.cycle)):
            return False
        return self.clocks is None or alert_clock(alert) in self.clocks


@dataclass(frozen=True)
class RetirePost:
    """The post of a lead's ended cycle (`ts` in `channel`) replaced in place by `text` and
    `blocks` (chat.update), once the lead came back as a new cycle with a post of its own:
    that cycle as it ended, with no control a pick on could only be refused, and a line
    saying where the lead went. Keyed by the new cycle (`key`): once per comeback."""

    lead_id: int
    channel: str
    ts: str
    text: str
    blocks: tuple[dict[str, object], ...]
    key: str


Effect = Render | Send | Upload | Refresh | RefreshHomes | Settle | RetirePost


ALERT_KEYS = "sweep:%:alert"  # a LIKE pattern of every escalation alert's key
# The runs whose messages and charts are worth reading however late (keys `<run>:<period>:<n>`,
# bot/services/digest.py): a week's or a month's report and the week's rejection review tell
# what that period was. One Slack refused because of its channel (archived, the app removed)
# is sent again, as it was, once the channel takes messages again. The compliance alert is not
# one: it goes to people's DMs, which no unarchiving mends, and the next week's run says
# whether the streak still holds.
LATE_REPORTS = ("weekly_digest", "monthly_digest")


def alert_key(lead_id: int, cycle: int, at: str, clock: str) -> str:
    """The key of the managers' escalation alert about a lead's `cycle` sent by the sweep at
    `at` (an ISO instant) because its `clock` (a ladder: `no_feedback`…) ran late: how a later
    `Settle` finds it, and which action meets it."""
    return f"{alert_prefix(lead_id, cycle)}{at}:{clock}:alert"


def alert_clock(key: str) -> str | None:
    """The clock an alert keyed `key` is about; None for one sent before alerts named it (its
    key ends with the instant: `…+00:00:alert`)."""
    named = key.removesuffix(":alert").rpartition(":")[2]
    return named if named.isidentifier() else None


def alert_prefix(lead_id: int, cycle: int) -> str:
    """What the keys of the alerts about a lead's `cycle` start with."""
    return f"sweep:{lead_id}:{cycle}:"


def thread_note(lead: LeadView, text: str, key: str) -> Send:
    """A note in a lead's thread (in its channel while its post is still on the way)."""
    channel = lead.message_channel or lead.channel
    return Send(channel, text, key, lead_id=lead.id, thread_ts=lead.message_ts)

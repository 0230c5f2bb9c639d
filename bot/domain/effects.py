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


@dataclass(frozen=True)
class Send:
    """A ready-made message: to a channel, a person (a user id: their DM), or a lead's thread."""

    channel: str
    text: str
    key: str
    lead_id: int | None = None
    blocks: tuple[dict[str, object], ...] = ()
    thread_ts: str | None = None


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
    `alert_key`) that nothing settled yet: a claim, a disposition or a reassignment settles
    them, whichever comes first; `of`, the key (a LIKE pattern) of other messages (marketing's
    question once it is answered). Keyed by the change (`key`): each message once per settling
    change."""

    lead_id: int
    cycle: int
    text: str | Callable[[], str]  # or what writes it, when there is a message to settle
    key: str
    of: str | None = None


Effect = Render | Send | Upload | Refresh | RefreshHomes | Settle


ALERT_KEYS = "sweep:%:alert"  # a LIKE pattern of every escalation alert's key


def alert_key(lead_id: int, cycle: int, at: str) -> str:
    """The key of the managers' escalation alert about a lead's `cycle` sent by the sweep at
    `at` (an ISO instant): how a later `Settle` finds it."""
    return f"{alert_prefix(lead_id, cycle)}{at}:alert"


def alert_prefix(lead_id: int, cycle: int) -> str:
    """What the keys of the alerts about a lead's `cycle` start with."""
    return f"sweep:{lead_id}:{cycle}:"


def thread_note(lead: LeadView, text: str, key: str) -> Send:
    """A note in a lead's thread (in its channel while its post is still on the way)."""
    channel = lead.message_channel or lead.channel
    return Send(channel, text, key, lead_id=lead.id, thread_ts=lead.message_ts)

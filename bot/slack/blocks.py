"""Block Kit primitives: the one `Message` type, the blocks every view is built of, and Slack's
limits. The views (lead, alert, report, plan, home) build on these and on bot/slack/text.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.slack.text import clip, plain

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
BUTTON_LIMIT = 75
HEADER_LIMIT = 150
MAX_BLOCKS = 50
MAX_FIELDS = 10  # of a section
MAX_CONTEXT_ELEMENTS = 10
# chat.update's `msg_too_long`: "The `text` field cannot exceed 4,000 characters." (Slack's
# chat.update reference). A message Handoff edits in place keeps its text within it.
EDIT_TEXT_LIMIT = 4000


@dataclass(frozen=True)
class Message:
    """What Slack receives for a message: its blocks and the plain-text fallback."""

    text: str  # the notification / screen-reader fallback
    blocks: list[dict[str, Any]]


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object. `verbatim`: Slack must not link-ify or parse mentions in plain
    text (a lead named "@here" stays text); the `<@U…>` Handoff writes itself still works."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str, **extra: Any) -> dict[str, Any]:
    """A section of mrkdwn `text`, clipped to `SECTION_LIMIT` (never inside an entity)."""
    return {"type": "section", "text": mrkdwn(clip(text, SECTION_LIMIT)), **extra}


def fields(*texts: str) -> dict[str, Any]:
    """A section of mrkdwn fields, two a row (at most `MAX_FIELDS`, each clipped)."""
    shown = [mrkdwn(clip(text, FIELD_LIMIT)) for text in texts]
    return {"type": "section", "fields": shown[:MAX_FIELDS]}


def field_sections(texts: Iterable[str]) -> list[dict[str, Any]]:
    """As many sections of fields as `texts` need (a section holds at most `MAX_FIELDS`): none
    is dropped."""
    shown = list(texts)
    starts = range(0, len(shown), MAX_FIELDS)
    return [fields(*shown[start : start + MAX_FIELDS]) for start in starts]


def context(*texts: str) -> dict[str, Any]:
    """A context block of the non-empty `texts`, each clipped to Slack's limit."""
    elements = [mrkdwn(clip(t, CONTEXT_LIMIT)) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:HEADER_LIMIT]}}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def actions(elements: list[dict[str, Any]], block_id: str | None = None) -> dict[str, Any]:
    """An actions block: buttons and menus."""
    if block_id is None:
        return {"type": "actions", "elements": elements}
    return {"type": "actions", "block_id": block_id, "elements": elements}


def button(
    label: str, action_id: str, value: str, style: str | None = None, confirm: Any = None
) -> dict[str, Any]:
    """A button: its label made plain and clipped, its style and confirmation if given."""
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": plain(label, BUTTON_LIMIT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element

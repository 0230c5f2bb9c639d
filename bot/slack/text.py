"""Making lead data safe for Slack: escape, strip control characters, clip to limits."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")


def escape(value: object) -> str:
    """Escape `&`, `<`, `>` (ampersand first) and drop control and bidi-override characters.

    This is the only escaping lead text gets: it is what keeps `<!channel>` from pinging and
    `<https://evil|bank>` from becoming a link.
    """
    text = _CONTROL.sub("", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Cut escaped text to `limit` characters with an ellipsis, never inside an entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    cut = _ENTITY_TAIL.sub("", cut)
    return cut + "…"


def safe(value: object, limit: int) -> str:
    """Escape and clip in one step (the usual way lead data enters a message)."""
    raw = str(value)
    # Clip the raw text first so a 10k-character field costs nothing to escape.
    return clip(escape(raw[: limit * 2]), limit)


def plain(value: object, limit: int) -> str:
    """Text for plain_text objects (button labels, option labels): no markup, just clipped."""
    text = _CONTROL.sub("", str(value)).replace("\n", " ").strip() or "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_date(when: datetime, zone: str, style: str = "{date_short_pretty} {time}") -> str:
    """Slack's date token: each reader sees their own zone; the fallback names the team's."""
    local = when.astimezone(ZoneInfo(zone))
    fallback = local.strftime("%a %d %b %H:%M %Z" if "{time}" in style else "%a %d %b")
    return f"<!date^{int(when.timestamp())}^{style}|{fallback}>"


def team_time(when: datetime, zone: str) -> str:
    """`Tue 14:30 AEDT`: a time in the team's zone, for plain-text fallbacks."""
    return when.astimezone(ZoneInfo(zone)).strftime("%a %H:%M %Z")

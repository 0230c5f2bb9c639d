"""Making lead data safe for Slack: escape, strip control characters, clip to limits."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

# The rule lives in the domain (its refusals name segments too); Slack views import it here.
from bot.domain.naming import readable as readable

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")
_MARKUP_TAIL = re.compile(r"<[^>]*$")  # an unclosed `<@U…>` or `<!date^…>` Handoff wrote
_LINE_BREAKS = re.compile(r"[\n\t]")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,20})>")
_LINK = re.compile(r"<((?:mailto:|https?://)[^<>|]*)(?:\|([^<>]*))?>")  # <mailto:a@b.c|a@b.c>


def escape(value: object) -> str:
    """Escape `&`, `<`, `>` (ampersand first) and drop control and bidi-override characters.

    This is the only escaping lead text gets: it is what keeps `<!channel>` from pinging and
    `<https://evil|bank>` from becoming a link.
    """
    text = _CONTROL.sub("", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def typed(text: str) -> str:
    """A slash command's text as the person typed it. Slack sends `&`, `<` and `>` escaped,
    and, when the command escapes links, an email or URL wrapped (`<mailto:a@b.c|a@b.c>`):
    a look-up by `r&d@acme.com` must find it, and a note must not show `&amp;`. Mentions
    (`<@U…|name>`) are kept: they name someone. Whatever comes out is escaped again to show."""
    unwrapped = _LINK.sub(lambda found: found[2] or found[1].removeprefix("mailto:"), text)
    return unwrapped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: str, limit: int) -> str:
    """Cut escaped text to `limit` characters with an ellipsis, never inside an entity (`R&a`
    would show as is) nor inside markup Handoff wrote (a mention or a date token cut in half)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    cut = _MARKUP_TAIL.sub("", _ENTITY_TAIL.sub("", cut))
    return cut.rstrip("\u200d") + "…"  # no joiner dangling before "…"


def whole_parts(parts: Iterable[str], separator: str, limit: int) -> str:
    """`parts` (escaped already) joined by `separator`: as many whole parts as fit in `limit`
    characters, then "…" for the rest. A part is never cut (a mention `<@U…>` or an entity
    `&amp;` cut in half shows as is), unless the first is too long alone: it is clipped."""
    shown: list[str] = []
    size = 0
    items = list(parts)
    for index, part in enumerate(items):
        more = index + 1 < len(items)  # room kept for the separator and "…"
        need = size + (len(separator) if shown else 0) + len(part)
        if need + (len(separator) + 1 if more else 0) > limit:
            if not shown:
                return clip(f"{part}{separator}…" if more else part, limit)
            return separator.join([*shown, "…"])
        shown.append(part)
        size = need
    return separator.join(shown)


def safe(value: object, limit: int) -> str:
    """Escape and clip in one step: lead text that may span lines (a rep's note)."""
    raw = str(value)
    if len(raw) > limit * 2:
        # Clip the raw text first so a 10k-character field costs little to escape; the control
        # characters escape drops must not use up the room.
        raw = _CONTROL.sub("", raw)[: limit * 2]
    return clip(escape(raw), limit)


def one_line(value: object, limit: int) -> str:
    """`safe` on one line: a name or a title cannot add lines (a fake quote or status line)."""
    return safe(_LINE_BREAKS.sub(" ", str(value)), limit)


def as_mrkdwn(words: str) -> str:
    """Plain words for a person (a `Refusal`'s message) as Slack message text: everything
    escaped, so `/lead <email or external id>` shows as typed instead of a broken link, except
    the user mentions Handoff wrote on purpose (`<@U…>`, `<@W…>`, strictly shaped).

    The domain keeps its words plain (the HTTP routes and the CLI show them as they are); the
    Slack answers pass them through here, once.
    """
    parts = _MENTION.split(words)  # text, user id, text, user id, …, text
    return "".join(f"<@{part}>" if i % 2 else escape(part) for i, part in enumerate(parts))


def as_plain(words: str, names: Mapping[str, str]) -> str:
    """Plain words for a plain_text field (a modal's field error), where a mention would show
    as `<@U0REP1>`: each user mention written as `@name`, the name people know them by."""
    parts = _MENTION.split(words)
    return "".join(f"@{names.get(part, part)}" if i % 2 else part for i, part in enumerate(parts))


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


def is_user_id(value: str) -> bool:
    """Shaped like a Slack user id (`U0REP1`, `W…`): only such text may become a mention."""
    return _USER_ID.fullmatch(value) is not None


def person(value: str, limit: int) -> str:
    """A live mention for a Slack user id; any other name (a CRM user, "intake") as text."""
    return f"<@{value}>" if is_user_id(value) else one_line(value, limit)


def named(value: str, names: Mapping[str, str], limit: int) -> str:
    """A member by the name people know them by, without pinging them (a shared report, the
    digest): their display name, else their id as text; any other name as text."""
    return one_line(names.get(value, value), limit)

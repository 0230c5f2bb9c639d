"""Plain-text rendering of Block Kit messages for terminal transcripts (`handoff demo`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

RULE = "─" * 40

# Slack's angle-bracket tokens: <@U1>, <#C1|name>, <!date^..|fallback>, <!here>, <url|label>.
_TOKEN = re.compile(r"<([^<>\s][^<>]*)>")
# Markers must hug non-space text and sit at word edges, so snake_case and "2 * 3" survive.
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")


def render_blocks_text(
    blocks: list[dict[str, Any]] | None,
    *,
    text: str = "",
    users: dict[str, str] | None = None,
) -> str:
    """Render a message's blocks as readable lines; fall back to `text` when there are none."""
    if not blocks:
        return mrkdwn_to_plain(text, users)
    lines: list[str] = []
    for block in blocks:
        lines.extend(_render_block(block, users or {}))
    return "\n".join(lines)


def mrkdwn_to_plain(text: str, users: dict[str, str] | None = None) -> str:
    """Turn Slack mrkdwn into display text: resolve tokens, drop markers, unescape entities."""
    users = users or {}
    text = _TOKEN.sub(lambda m: _render_token(m.group(1), users), text)
    for pattern in (_BOLD, _ITALIC, _STRIKE):
        text = pattern.sub(r"\1", text)
    # &amp; last, so "&amp;lt;" shows as the literal "&lt;" the author wrote.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def iter_block_texts(value: Any) -> Iterator[str]:
    """Yield every human-visible string inside blocks (text objects, rich text, alt text)."""
    if isinstance(value, list):
        for item in value:
            yield from iter_block_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("text", "alt_text", "url") and isinstance(item, str):
                yield item
            elif isinstance(item, (dict, list)):
                yield from iter_block_texts(item)


def _render_token(token: str, users: dict[str, str]) -> str:
    body, _, label = token.partition("|")
    if body.startswith("@"):
        user_id = body[1:]
        return "@" + (users.get(user_id) or label or user_id)
    if body.startswith("#"):
        return "#" + (label or body[1:])
    if body.startswith("!"):
        if label:
            return label  # dates, subteams: Slack shows the fallback to clients that can't render
        return "@" + body[1:].split("^")[0]
    if not label:
        return body.removeprefix("mailto:")
    if body.removeprefix("mailto:") == label:
        return label
    return f"{label} ({body})"


def _text_of(obj: Any, users: dict[str, str]) -> str:
    if isinstance(obj, dict):
        raw = obj.get("text")
        if isinstance(raw, str):
            if obj.get("type") == "plain_text":
                return raw
            return mrkdwn_to_plain(raw, users)
    if isinstance(obj, str):
        return mrkdwn_to_plain(obj, users)
    return ""


def _render_block(block: dict[str, Any], users: dict[str, str]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"== {_text_of(block.get('text'), users)} =="]
    if kind == "divider":
        return [RULE]
    if kind == "section":
        return _render_section(block, users)
    if kind == "context":
        parts = [_element_label(e, users) for e in block.get("elements") or []]
        return [" · ".join(p for p in parts if p)]
    if kind == "actions":
        parts = [_element_label(e, users) for e in block.get("elements") or []]
        return ["  ".join(p for p in parts if p)]
    if kind == "input":
        label = _text_of(block.get("label"), users)
        optional = " (optional)" if block.get("optional") else ""
        return [f"{label}{optional}: ____"]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "markdown":
        return [mrkdwn_to_plain(str(block.get("text", "")), users)]
    if kind == "rich_text":
        return ["".join(_rich_text(block.get("elements"), users)).rstrip("\n")]
    return [f"[{kind}]"]


def _render_section(block: dict[str, Any], users: dict[str, str]) -> list[str]:
    lines: list[str] = []
    if block.get("text"):
        lines.extend(_text_of(block["text"], users).split("\n"))
    for field in block.get("fields") or []:
        # Slack breaks a field's value where its text does: each line stays a line, under it.
        label, _, value = _text_of(field, users).partition("\n")
        first, *more = [" ".join(line.split()) for line in value.split("\n")]
        lines.append(f"{label}: {first}" if first else label)
        lines.extend(" " * (len(label) + 2) + line for line in more if line)
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        rendered = _element_label(accessory, users)
        if rendered:
            lines.append(rendered)
    return lines


def _element_label(element: Any, users: dict[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _text_of(element, users)
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind in ("button", "workflow_button"):
        return f"[ {_text_of(element.get('text'), users)} ]"
    if kind == "overflow":
        return "[ ⋯ ]"
    placeholder = _text_of(element.get("placeholder"), users)
    if kind and "select" in kind:
        chosen = element.get("initial_option")
        shown = _text_of(chosen.get("text"), users) if isinstance(chosen, dict) else placeholder
        return f"[ {shown or 'Choose'} ▾ ]"
    return f"[ {placeholder or kind} ]"


def _rich_text(elements: Any, users: dict[str, str]) -> Iterator[str]:
    for element in elements or []:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "text":
            yield str(element.get("text", ""))
        elif kind == "link":
            url = str(element.get("url", ""))
            label = element.get("text")
            yield f"{label} ({url})" if label and label != url else url
        elif kind == "user":
            user_id = str(element.get("user_id", ""))
            yield "@" + users.get(user_id, user_id)
        elif kind == "channel":
            yield "#" + str(element.get("channel_id", ""))
        elif kind == "emoji":
            yield f":{element.get('name', '')}:"
        elif kind == "broadcast":
            yield "@" + str(element.get("range", ""))
        elif "elements" in element:
            yield from _rich_text(element["elements"], users)
            if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
                yield "\n"

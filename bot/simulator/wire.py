"""The HTTP side of the Web API: reading a call's arguments and writing Slack's answers."""

from __future__ import annotations

import json
from collections.abc import Container
from urllib.parse import parse_qsl

from aiohttp import web

from bot.simulator.blockkit import Json
from bot.simulator.data import ApiError, RecordedCall

# Fields that slack_sdk (or a form post) may send as a JSON-encoded string.
_JSON_FIELDS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
    "view": "invalid_arguments",
}


# The methods whose reference does not list JSON input (`json_input_supported`; users.profile.get
# says it in words: "This method does not currently accept application/json."): Slack reads
# their query string or form body, and a JSON body's arguments are not seen.
NO_JSON_INPUT = frozenset(
    {
        "chat.getPermalink",
        "conversations.info",
        "conversations.members",
        "conversations.replies",
        "files.getUploadURLExternal",
        "usergroups.users.list",
        "users.info",
        "users.list",
        "users.lookupByEmail",
        "users.profile.get",
    }
)


async def read_args(request: web.Request, method: str = "") -> Json:
    """Merge query string, form body and JSON body, like Slack accepts all three (a JSON body
    only for the methods that take one: `NO_JSON_INPUT`)."""
    args: Json = dict(request.query)
    if not request.body_exists:
        return args
    if request.content_type == "multipart/form-data":
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args
    raw = await request.read()
    if not raw.strip():
        return args
    try:
        if request.content_type == "application/json":
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            if method not in NO_JSON_INPUT:
                args.update(data)
        else:
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            "invalid_json" if isinstance(exc, json.JSONDecodeError) else "invalid_form_data"
        ) from exc
    return args


def auth_error(
    request: web.Request, args: Json, method: str = "", refused: Container[str] = ()
) -> str | None:
    """Slack's answer to the call's token, None if it is accepted; `refused`: tokens that were
    revoked (each method's reference: `invalid_auth`, "some aspect of authentication cannot
    be validated")."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else args.get("token")
    if not token:
        return "not_authed"
    if not isinstance(token, str) or not token.startswith(("xox", "xapp-")) or token in refused:
        return "invalid_auth"
    # apps.connections.open takes an app-level token (xapp-) and nothing else takes one:
    # https://docs.slack.dev/reference/methods/apps.connections.open
    if token.startswith("xapp-") != method.startswith("apps.connections."):
        return "not_allowed_token_type"
    return None


def decode_json_fields(args: Json) -> None:
    for key, error in _JSON_FIELDS.items():
        value = args.get(key)
        if isinstance(value, str):
            try:
                args[key] = json.loads(value) if value.strip() else None
            except json.JSONDecodeError as exc:
                raise ApiError(error) from exc


def finish(
    call: RecordedCall,
    body: Json,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Answer with a JSON body, noting the outcome on the recorded call."""
    call.ok = bool(body.get("ok"))
    call.error = None if call.ok else str(body.get("error"))
    call.status = status
    return web.json_response(body, status=status, headers=headers)


def finish_text(
    call: RecordedCall, status: int, text: str, content_type: str = "text/plain"
) -> web.Response:
    """Answer with plain text (response_url and upload URL do), noting the outcome; or with
    another page that is not Slack's JSON (`content_type`: a proxy's)."""
    call.ok = status == 200
    call.error = None if call.ok else text
    call.status = status
    return web.Response(status=status, text=text, content_type=content_type)

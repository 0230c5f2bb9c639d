"""The bot scope each Web API method needs, as Slack's method reference lists them
(api.slack.com/methods/<method>, "Required scopes"; the same lists are in
shared/slack/methods/*.json). With the scopes it was given, the simulator answers
`missing_scope` where Slack would, so an app's manifest and its calls cannot drift apart."""

from __future__ import annotations

# Any one of these grants the method (e.g. conversations.open: im:write for a DM).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.join": ("channels:join",),
    "conversations.open": ("channels:manage", "groups:write", "im:write", "mpim:write"),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "users.profile.get": ("users.profile:read",),
    "users.lookupByEmail": ("users:read.email",),
    "reactions.add": ("reactions:write",),
    "reactions.remove": ("reactions:write",),
}

# Methods whose scope depends on the conversation: a public channel, a private one, or a DM.
CONVERSATION_SCOPES: dict[str, dict[str, str]] = {
    "conversations.history": {
        "public": "channels:history",
        "private": "groups:history",
        "im": "im:history",
    },
    "conversations.replies": {
        "public": "channels:history",
        "private": "groups:history",
        "im": "im:history",
    },
    "conversations.info": {"public": "channels:read", "private": "groups:read", "im": "im:read"},
}

# Posting to a public channel the bot is not a member of (api.slack.com/scopes/chat:write.public).
POST_UNJOINED = "chat:write.public"

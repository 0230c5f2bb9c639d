"""`handoff manifest`: the Slack app manifest with its request URLs filled in, for HTTP or
Socket Mode; and the bot scopes it declares, which `handoff doctor` and the local stack use."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.settings import ConfigError

# A link to the repository's manifest.yaml, so an installed package carries it too (package data).
MANIFEST = Path(__file__).with_name("manifest.yaml")
EVENTS_PATH = "/slack/events"  # every Slack request (events, commands, interactivity) goes here


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The manifest as data (the file's comments are lost)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a Slack app manifest (a YAML mapping)")
    return data


def bot_scopes(manifest: dict[str, Any]) -> list[str]:
    """The bot token scopes the manifest declares, in its order."""
    return [str(scope) for scope in manifest["oauth_config"]["scopes"]["bot"]]


def events_url(url: str | None) -> str:
    """`https://example.com` → `https://example.com/slack/events`; ConfigError unless https."""
    text = (url or "").strip()
    if not text:
        raise ConfigError(
            "manifest needs --url https://… (where Slack reaches `handoff serve`) "
            "or --socket (Socket Mode)"
        )
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"--url {text!r} is not an https:// address like https://handoff.example.com "
            "(Slack sends requests over HTTPS only; without a public address use --socket)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return f"https://{parts.netloc}{path}"


def for_http(manifest: dict[str, Any], url: str | None) -> dict[str, Any]:
    """The manifest for HTTP mode: every request URL is `url`'s /slack/events."""
    target = events_url(url)
    out = copy.deepcopy(manifest)
    for command in out["features"].get("slash_commands", []):
        command["url"] = target
    settings = out["settings"]
    settings.setdefault("event_subscriptions", {})["request_url"] = target
    settings.setdefault("interactivity", {"is_enabled": True})["request_url"] = target
    settings["socket_mode_enabled"] = False
    return out


def for_socket(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest for Socket Mode: Slack sends everything over the socket, so no URLs."""
    out = copy.deepcopy(manifest)
    for command in out["features"].get("slash_commands", []):
        command.pop("url", None)
    settings = out["settings"]
    settings.get("event_subscriptions", {}).pop("request_url", None)
    settings.get("interactivity", {}).pop("request_url", None)
    settings["socket_mode_enabled"] = True
    return out


def render(url: str | None, socket: bool) -> str:
    """`handoff manifest`'s output: a header comment, then the manifest as YAML. With neither
    a URL nor `socket` (SPEC: `handoff manifest [--url URL | --socket]`, both optional), the
    manifest as shipped, whose comments say to replace its placeholder address."""
    if url is None and not socket:
        return MANIFEST.read_text(encoding="utf-8")
    manifest = load_manifest()
    if socket:
        data = for_socket(manifest)
        how = "Socket Mode: run `handoff serve --socket` with SLACK_APP_TOKEN (connections:write)"
    else:
        data = for_http(manifest, url)
        how = f"HTTP: Slack sends every request to {events_url(url)}"
    header = (
        "# Slack app manifest for Handoff (api.slack.com/apps → Create New App → From a "
        f"manifest).\n# {how}\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return header + body

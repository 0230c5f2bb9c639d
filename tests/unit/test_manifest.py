"""`manifest.yaml` is a Slack app manifest Slack will accept, declaring what the SPEC promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yaml"
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"
SPEC_COMMANDS = {"/sla-report", "/lead", "/sla", "/sla-plan", "/handoff"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "manifest.yaml must be a mapping"
    return data


def test_matches_slacks_published_schema(manifest: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA}")
    validator = Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]
    assert problems == []


def test_lengths_the_schema_only_states_as_regex(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert 1 <= len(info.get("description", "x")) <= 140
    if "long_description" in info:
        assert 175 <= len(info["long_description"]) <= 4000
    if "background_color" in info:
        assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"])
    for command in manifest["features"]["slash_commands"]:
        assert re.match(r"^/", command["command"]), command
        assert 2 <= len(command["command"]) <= 32, command


def test_declares_exactly_the_specs_commands(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    names = [command["command"] for command in commands]
    assert sorted(names) == sorted(SPEC_COMMANDS)
    hints = {command["command"]: command.get("usage_hint") for command in commands}
    assert hints["/sla-report"] == "[this-week|last-week|YYYY-Www] [segment]"
    assert hints["/lead"] == "<email|external id>"
    assert hints["/sla-plan"] == "<revenue goal>"
    assert hints["/handoff"] == "away|back|routing|help"
    assert all(command["should_escape"] is False for command in commands)


def test_every_request_goes_to_slack_events(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [command["url"] for command in manifest["features"]["slash_commands"]]
    urls += [
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls), urls
    assert settings["interactivity"]["is_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]


def test_bot_user_home_tab_and_scopes(manifest: dict[str, Any]) -> None:
    features = manifest["features"]
    assert features["bot_user"]["display_name"] == "Handoff"
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {
        "chat:write",
        "chat:write.public",
        "commands",
        "users:read",
        "channels:history",
        "groups:history",
        "channels:read",
        "groups:read",
        "im:write",
        "files:write",
    }
    assert needed <= scopes
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False

"""`manifest.yaml` is a Slack app manifest Slack will accept, declaring what the SPEC promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from bot.cli.manifest import MANIFEST as PACKAGED
from bot.cli.manifest import events_url, render
from bot.domain.report import parse_period
from bot.settings import ConfigError
from tests.slack_reference import slack_reference

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yaml"
SPEC_COMMANDS = {"/sla-report", "/lead", "/sla", "/sla-plan", "/handoff"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "manifest.yaml must be a mapping"
    return data


def schema_problems(manifest: dict[str, Any]) -> list[str]:
    """Where `manifest` breaks Slack's published schema, one line each (skips without it)."""
    schema = slack_reference("manifest.schema.1.0.0.json")
    validator = Draft7Validator(json.loads(schema.read_text(encoding="utf-8")))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def test_matches_slacks_published_schema(manifest: dict[str, Any]) -> None:
    assert schema_problems(manifest) == []


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
    assert hints["/sla-report"] == (
        "[this-week|last-week|this-month|last-month|this-quarter|last-quarter|YYYY-Www|YYYY-MM|"
        "YYYY-Qn|YYYY-MM-DD..YYYY-MM-DD] [segment]"
    )
    assert hints["/lead"] == "<email|external id>"
    assert hints["/sla-plan"] == "<revenue goal>"
    assert hints["/handoff"] == "away|back|routing|help"
    assert all(command["should_escape"] is False for command in commands)


def test_the_sla_report_hint_offers_every_kind_of_period_the_command_takes(
    manifest: dict[str, Any],
) -> None:
    commands = manifest["features"]["slash_commands"]
    hint = next(c["usage_hint"] for c in commands if c["command"] == "/sla-report")
    offered = hint.split("]")[0].lstrip("[").split("|")
    examples = {"YYYY-Www": "2026-W47", "YYYY-MM": "2026-11", "YYYY-Qn": "2026-Q4"}
    examples["YYYY-MM-DD..YYYY-MM-DD"] = "2026-11-02..2026-11-29"
    now = datetime(2026, 12, 1, tzinfo=UTC)
    kinds = {parse_period(examples.get(word, word), now, "UTC").kind for word in offered}
    assert kinds == {"week", "month", "quarter", "range"}
    for word in ("this-week", "this-month", "last-quarter"):
        assert word in offered


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
    # The delivery worker stops at once when the app is uninstalled or its bot token revoked.
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_uninstalled", "tokens_revoked"} <= events


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


def request_urls(manifest: dict[str, Any]) -> list[str | None]:
    settings = manifest["settings"]
    return [
        *(command.get("url") for command in manifest["features"]["slash_commands"]),
        settings["event_subscriptions"].get("request_url"),
        settings["interactivity"].get("request_url"),
    ]


def test_the_package_carries_the_repositorys_manifest() -> None:
    assert PACKAGED.read_text(encoding="utf-8") == MANIFEST.read_text(encoding="utf-8")


def test_handoff_manifest_for_http_fills_in_every_request_url(manifest: dict[str, Any]) -> None:
    printed = yaml.safe_load(render("https://leads.acme.example", socket=False))
    assert schema_problems(printed) == []
    assert set(request_urls(printed)) == {"https://leads.acme.example/slack/events"}
    assert printed["settings"]["socket_mode_enabled"] is False
    assert printed["oauth_config"] == manifest["oauth_config"]
    assert (
        printed["features"]["slash_commands"][0]["usage_hint"]
        == (manifest["features"]["slash_commands"][0]["usage_hint"])
    )


def test_handoff_manifest_for_socket_mode_has_no_request_urls(manifest: dict[str, Any]) -> None:
    printed = yaml.safe_load(render(None, socket=True))
    assert schema_problems(printed) == []
    assert request_urls(printed) == [None] * (len(SPEC_COMMANDS) + 2)
    assert printed["settings"]["socket_mode_enabled"] is True
    assert printed["settings"]["interactivity"]["is_enabled"] is True
    assert (
        printed["settings"]["event_subscriptions"]["bot_events"]
        == (manifest["settings"]["event_subscriptions"]["bot_events"])
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.com", "https://example.com/slack/events"),
        ("https://example.com/", "https://example.com/slack/events"),
        ("https://example.com:8443/handoff", "https://example.com:8443/handoff/slack/events"),
        ("https://example.com/slack/events", "https://example.com/slack/events"),
    ],
)
def test_the_request_url_is_slack_events_under_the_address(given: str, expected: str) -> None:
    assert events_url(given) == expected


@pytest.mark.parametrize(
    "given", [None, "", "http://example.com", "example.com", "https://", "https://x.com/?a=1"]
)
def test_a_missing_or_plain_http_url_is_refused(given: str | None) -> None:
    with pytest.raises(ConfigError, match="--url"):
        events_url(given)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--url", "http://example.com"], "is not an https:// address"),
        (["--url", ""], "needs --url"),
    ],
)
def test_handoff_manifest_refuses_in_one_line(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "manifest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr


def test_handoff_manifest_with_neither_option_prints_the_shipped_manifest() -> None:
    """SPEC: `handoff manifest [--url URL | --socket]`, both optional. Bare, it printed nothing
    and exit code 2; it prints manifest.yaml as shipped, whose first lines say to replace its
    placeholder address (or to run it again with --url or --socket)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "manifest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == MANIFEST.read_text(encoding="utf-8")
    printed = yaml.safe_load(done.stdout)
    assert schema_problems(printed) == []
    head = done.stdout.split("display_information:", 1)[0]
    assert "replace every handoff.example.com" in head
    assert "handoff manifest --url" in head and "handoff manifest --socket" in head

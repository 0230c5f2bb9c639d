"""The simulator's scope rules are Slack's: each method it answers `missing_scope` for needs the
bot scopes Slack's method reference lists (shared/slack/methods/<method>.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.simulator.scopes import CONVERSATION_SCOPES, METHOD_SCOPES
from bot.simulator.wire import NO_JSON_INPUT
from tests.slack_reference import slack_reference


def bot_scopes(method: str) -> list[str]:
    reference: dict[str, Any] = json.loads(
        slack_reference(f"methods/{method}.json").read_text(encoding="utf-8")
    )
    return list(reference["scope"]["bot"])


# The reference holds the methods Handoff calls; the simulator also answers these for tests.
NOT_CALLED = {"reactions.add", "reactions.remove"}


@pytest.mark.parametrize("method", sorted(set(METHOD_SCOPES) - NOT_CALLED))
def test_a_method_needs_the_bot_scopes_slack_lists(method: str) -> None:
    assert sorted(METHOD_SCOPES[method]) == sorted(bot_scopes(method))


@pytest.mark.parametrize("method", sorted(CONVERSATION_SCOPES))
def test_a_conversation_method_needs_a_scope_slack_lists_for_its_kind(method: str) -> None:
    # Slack lists one scope a kind of conversation (mpim too, which the simulator has not).
    assert set(CONVERSATION_SCOPES[method].values()) <= set(bot_scopes(method))


@pytest.mark.parametrize("method", sorted(NO_JSON_INPUT))
def test_a_method_read_without_its_json_body_takes_no_json_in_slacks_reference(
    method: str,
) -> None:
    reference = json.loads(slack_reference(f"methods/{method}.json").read_text(encoding="utf-8"))
    assert not reference.get("json_input_supported")


def test_every_method_slack_reads_no_json_for_is_read_without_its_json_body() -> None:
    folder = slack_reference("methods")
    for path in sorted(folder.glob("*.json")):
        reference = json.loads(path.read_text(encoding="utf-8"))
        if not reference.get("json_input_supported"):
            assert path.stem in NO_JSON_INPUT, path.stem

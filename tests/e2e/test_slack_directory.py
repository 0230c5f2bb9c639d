"""The owner lookup by email (`SlackDirectory`, users.lookupByEmail) on its own, against the
Slack simulator: with no delivery worker wired to it, the directory is what tells the operator
how to mend a bot token Slack refuses (with one, the worker's `refuse_token` does:
tests/e2e/test_crm_inbound.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.crm_inbound import SlackDirectory, SlackTokenRefused
from bot.simulator.server import SlackSimulator

TOKEN = "xoxb-directory-test"


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    async with SlackSimulator() as simulator:
        simulator.add_user("U0TOM", "tom", "Tom Rep", email="tom@example.com")
        yield simulator


async def test_without_a_delivery_worker_a_refused_token_logs_its_fix_once_per_code(
    sim: SlackSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack refuses the bot token (`invalid_auth`: the token revoked; then `token_revoked`):
    every lookup is refused with the code, and the log says once per code what Slack said and
    how to mend it (reinstall the app, or a new SLACK_BOT_TOKEN), not at every CRM owner
    change that meets it."""
    caplog.set_level(logging.INFO, logger="handoff")
    directory = SlackDirectory(AsyncWebClient(token=TOKEN, base_url=sim.api_url))
    assert await directory.member_by_email("tom@example.com") == "U0TOM"

    sim.refused_tokens.add(TOKEN)  # Slack's answer to a revoked token (its method pages)
    for _ in range(3):
        with pytest.raises(SlackTokenRefused) as refused:
            await directory.member_by_email("tom@example.com")
        assert refused.value.code == "invalid_auth"
    sim.refused_tokens.clear()
    sim.inject("users.lookupByEmail", error="token_revoked")
    for _ in range(2):
        with pytest.raises(SlackTokenRefused) as refused:
            await directory.member_by_email("tom@example.com")
        assert refused.value.code == "token_revoked"

    fixes = [r for r in caplog.records if "SLACK_BOT_TOKEN" in r.getMessage()]
    assert [r.levelno for r in fixes] == [logging.WARNING, logging.WARNING], fixes
    first, second = (r.getMessage() for r in fixes)
    for line, code in ((first, "invalid_auth"), (second, "token_revoked")):
        assert code in line and "users.lookupByEmail" in line, line
        assert "reinstall the app" in line and "docs/crm-inbound.md" in line, line
        assert TOKEN not in line

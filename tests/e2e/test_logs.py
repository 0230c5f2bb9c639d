"""Structured logs (issue 15): JSON lines that say what each line is about (request, Slack
team/user/channel, lead, outbox row), `LOG_FORMAT=text` for a developer, and, at DEBUG with
every library talking, no token, secret or lead data in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot import logs
from bot.cli.main import main
from bot.cli.stack import BOT_TOKEN, INTAKE_TOKEN, SIGNING_SECRET, TravelClock, start_stack
from bot.domain.policy import Policy
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
CHATTY = ("slack_sdk", "slack_bolt", "aiohttp", "handoff", "asyncio", "sqlalchemy", "")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging as `handoff serve` sets it up (JSON lines), at DEBUG everywhere, into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in CHATTY}
    stream = io.StringIO()
    logs.configure(logging.DEBUG, "json", stream)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_json_lines_carry_their_context_and_nothing_secret(
    captured: io.StringIO, sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    payload = lead_payload()
    stack = await start_stack(sqlite_url, policy, clock=clock)
    try:
        status, _ = await stack.post_lead(payload)
        assert status == 201
        await stack.settle()
        await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
        await stack.settle()
        clock.advance(minutes=5)
        await stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE)
        await stack.settle()
        # A look-up answers with the lead's card: Bolt logs its answers at DEBUG.
        await stack.driver.command("U0MGR1", "/lead", payload["email"], ENTERPRISE)
        await stack.settle()
        # Refused senders are on the log too (they were invisible): a bad token, a bad lead.
        bad = {"Authorization": "Bearer not-the-token", "X-Request-Id": "req-refused-1"}
        async with stack.session.post(f"{stack.base_url}/leads", json={}, headers=bad) as sent:
            assert sent.status == 401
        assert (await stack.post_lead({**payload, "external_id": "hs-x", "email": "no"}))[0] == 400
    finally:
        await stack.close()

    text = captured.getvalue()
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    assert len(lines) > 20 and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    assert any(line["logger"].startswith("slack_sdk") for line in lines)  # DEBUG really was on

    (refused,) = [line for line in lines if line.get("request_id") == "req-refused-1"]
    assert refused["message"] == (
        "POST /leads refused (401): unauthorized: bad or missing bearer token (see "
        "HANDOFF_INTAKE_TOKEN)"
    )
    assert any(line["message"] == "intake: refused (400): email" for line in lines)
    (intake,) = [line for line in lines if line["message"].startswith("intake: lead 1")]
    assert len(intake["request_id"]) == 32 and intake["lead_id"] == 1
    delivered = [line for line in lines if "outbox_id" in line]
    assert delivered and all(line["lead_id"] == 1 for line in delivered if "lead_id" in line)
    pressed = [line for line in lines if line.get("user") == "U0REP1"]
    assert pressed and {line.get("channel") for line in pressed} >= {ENTERPRISE}
    assert any(line.get("lead_id") == 1 for line in pressed)

    for name, secret in {
        "bot token": BOT_TOKEN,
        "signing secret": SIGNING_SECRET,
        "intake token": INTAKE_TOKEN,
        "lead's email": payload["email"],
        "lead's name": payload["name"],
        "lead's phone": payload.get("phone") or "no phone",
    }.items():
        assert secret not in text, f"the {name} was logged"
    answered = [line["message"] for line in lines if line["logger"] == "slack_bolt.AsyncApp"]
    assert "Responding with status: 200 (body not logged)" in answered  # the status stays


def test_a_crm_writes_line_names_its_row_in_either_format() -> None:
    """docs/crm.md: log lines of a CRM write carry `lead_id` and `crm_outbox_id`; with
    LOG_FORMAT=text the same fields end the line (docs/operations.md, "Logs")."""
    record = logging.LogRecord("handoff.crm", logging.INFO, __file__, 1, "written", (), None)
    with logs.scope(crm_outbox_id=12, lead_id=7):
        logs.WithContext().filter(record)
    assert json.loads(logs.formatter("json").format(record))["crm_outbox_id"] == 12
    assert logs.formatter("text").format(record).endswith("written [lead_id=7 crm_outbox_id=12]")


def test_log_format_text_is_for_people_and_a_wrong_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        handler = logs.configure(logging.INFO, "text", io.StringIO())
        assert not isinstance(handler.formatter, type(logs.formatter("json")))
        record = logging.LogRecord("handoff", logging.INFO, __file__, 1, "hello %s", ("you",), None)
        assert handler.format(record).endswith("INFO handoff: hello you")
        # What a line is about, as the JSON lines carry it (the text lines dropped it all).
        record.request_id, record.lead_id = "req-1", 7
        assert handler.format(record).endswith("hello you [request_id=req-1 lead_id=7]")
        # Time in UTC as ISO 8601, whatever the host's zone, in either format.
        record.created = 1795392000.084  # 2026-11-23 00:00:00.084 UTC
        record.msecs = 84.0
        assert handler.format(record).startswith("2026-11-23T00:00:00.084Z INFO")
        assert json.loads(logs.formatter("json").format(record))["time"] == (
            "2026-11-23T00:00:00.084Z"
        )
        monkeypatch.setenv("LOG_FORMAT", "xml")
        assert main(["check"]) == 2
        assert "LOG_FORMAT must be json or text (not 'xml')" in capsys.readouterr().err
        # A bad level alone is named alone (the format, text, is fine).
        monkeypatch.setenv("LOG_FORMAT", "text")
        monkeypatch.setenv("LOG_LEVEL", "loud")
        assert main(["check"]) == 2
        said = capsys.readouterr().err
        assert "LOG_LEVEL must be DEBUG, INFO or WARNING (not 'LOUD')" in said
        assert "LOG_FORMAT" not in said
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

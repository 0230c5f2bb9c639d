"""The members' emails the CRM adapters read from Slack (bot/crm/emails.py): users.info, like
every other Slack read, within the app's pace per method (HANDOFF_SLACK_CALLS_PER_MINUTE, the
delivery worker's pacer; users.info is Tier 4, 100+ per minute, in Slack's method reference),
and not sent at all while a 429's Retry-After lasts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.crm.emails import SlackEmails
from bot.crm.port import CrmRetry
from bot.slack.pacing import Pace, Pacer
from bot.slack.publisher import NoSlackAnswer
from tests.unit.test_member_reads import answer

MEMBERS = [f"U{index:04d}" for index in range(25)]


class Slack:
    """users.info on the test clock: when each call went, and a 429 for the `limited` next."""

    def __init__(self, seconds: list[float]) -> None:
        self.seconds = seconds
        self.calls: list[tuple[str, float]] = []
        self.limited = 0
        self.failing = 0

    async def users_info(self, user: str) -> AsyncSlackResponse:
        self.calls.append((user, self.seconds[0]))
        if self.limited:
            self.limited -= 1
            limited = answer({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "30"})
            raise SlackApiError("", limited)
        if self.failing:
            self.failing -= 1
            raise SlackApiError("", answer({"ok": False, "error": "internal_error"}, 500))
        profile = {"email": f"{user.lower()}@acme.example"}
        return answer({"ok": True, "user": {"id": user, "profile": profile}})


@pytest.fixture
def seconds(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The test clock, in seconds: a wait moves it on instead of sleeping."""
    now = [0.0]

    async def sleep(delay: float, result: Any = None) -> Any:
        now[0] += delay + 1e-6  # time moves on (a float sum alone may round to no change)
        return result

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return now


async def test_the_owners_emails_are_read_at_the_apps_pace(seconds: list[float]) -> None:
    """10 a minute, in bursts of 10: 25 members' emails are not read at once, but 10 at once
    and then one every 6 seconds, as the other Slack reads are."""
    slack = Slack(seconds)
    pacer = Pacer(Pace(calls_per_minute=10, call_burst=10), monotonic=lambda: seconds[0])
    emails = SlackEmails(slack, pacer)  # type: ignore[arg-type]
    found = await asyncio.gather(*(emails(user) for user in MEMBERS))
    assert found == [f"{user.lower()}@acme.example" for user in MEMBERS]
    at = [when for _, when in slack.calls]
    assert len(at) == 25 and at == sorted(at)
    assert sum(1 for when in at if when < 1) == 10
    assert 89 <= at[-1] <= 91  # the 15 others, 6 s apart


async def test_a_429_pauses_users_info_for_its_retry_after(seconds: list[float]) -> None:
    """Slack's rate limits are the app's per method: after a 429 for an email, no users.info
    goes (this read's or the members' refresh, which share the pacer) before its Retry-After.
    The CRM write that asked waits as long (a CrmRetry with Slack's wait): answered None, it
    went out without its owner, and the owner reached the CRM only if the lead was written
    again."""
    slack = Slack(seconds)
    pacer = Pacer(Pace(), monotonic=lambda: seconds[0])
    emails = SlackEmails(slack, pacer)  # type: ignore[arg-type]
    slack.limited = 1
    with pytest.raises(CrmRetry) as waits:
        await emails("U0001")
    assert waits.value.after == 30
    assert pacer.delay("users.info", None) >= 29
    assert await emails("U0001") == "u0001@acme.example"  # not cached: asked again, later
    assert slack.calls[-1][1] >= 30


async def test_a_slack_5xx_is_a_retry_of_the_write_not_an_owner_left_out(
    seconds: list[float],
) -> None:
    """users.info answered 500 (after the client's own retries): the write waits for the
    worker's backoff and asks again, rather than going out without its owner."""
    slack = Slack(seconds)
    emails = SlackEmails(slack, Pacer(Pace(), monotonic=lambda: seconds[0]))  # type: ignore[arg-type]
    slack.failing = 1
    with pytest.raises(CrmRetry) as waits:
        await emails("U0001")
    assert waits.value.after is None
    assert await emails("U0001") == "u0001@acme.example"


async def test_a_proxys_page_for_users_info_is_a_retry_of_the_write(seconds: list[float]) -> None:
    """users.info answered by a proxy's page, not Slack's JSON (a captive portal's 200: the
    client's NoSlackAnswer, no error code): Slack said nothing about the member, so the write
    waits and asks again (before: read as Slack's refusal, "no email", and the write went out
    without its owner)."""

    class Portal(Slack):
        async def users_info(self, user: str) -> AsyncSlackResponse:
            if not self.calls:
                self.calls.append((user, self.seconds[0]))
                page = answer({}, 200, {"Content-Type": "text/html"})
                raise NoSlackAnswer(page, "<html>Sign in to the network</html>")
            return await super().users_info(user)

    slack = Portal(seconds)
    emails = SlackEmails(slack, Pacer(Pace(), monotonic=lambda: seconds[0]))  # type: ignore[arg-type]
    with pytest.raises(CrmRetry) as waits:
        await emails("U0001")
    assert "not Slack's answer" in str(waits.value)
    assert await emails("U0001") == "u0001@acme.example"


async def test_a_429_without_a_readable_retry_after_takes_the_workers_backoff(
    seconds: list[float],
) -> None:
    """A 429 with no `Retry-After` (or `inf`): the write is retried after the worker's
    backoff (`after` None), not at once as a CRM's wait of 0 s."""

    class Limited(Slack):
        async def users_info(self, user: str) -> AsyncSlackResponse:
            limited = answer({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "inf"})
            raise SlackApiError("", limited)

    emails = SlackEmails(Limited(seconds), Pacer(Pace(), monotonic=lambda: seconds[0]))  # type: ignore[arg-type]
    with pytest.raises(CrmRetry) as waits:
        await emails("U0001")
    assert waits.value.after is None

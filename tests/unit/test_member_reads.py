"""The members' reads from Slack (bot/services/people.py) when Slack does not answer at all: a
connection error or a timeout is no API answer about one member (users.info's reference lists
`user_not_found` and `user_not_visible` for that), Slack is down for everyone, so the read stops
at the first member, says so in one line, and is tried again within minutes, not the next day.
And once auth.test finds a refused bot token working again, the refresh comes due once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.services.people import People
from bot.slack.publisher import NoSlackAnswer
from storage.away import StatusAway
from storage.repository import Member

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
REPS = [f"U{index:04d}" for index in range(1000)]


def answer(
    data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> AsyncSlackResponse:
    return AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/users.info",
        req_args={},
        data=data,
        headers=headers or {},
        status_code=status,
    )


class Slack:
    """users.info and users.profile.get as Slack answers them, or not at all (`down`)."""

    def __init__(self) -> None:
        self.down: Exception | None = None
        self.down_after: int | None = None  # answers this many calls, then stops (a timeout)
        self.unknown: set[str] = set()  # users.info: user_not_found
        self.calls: list[tuple[str, str]] = []

    async def _call(self, method: str, user: str) -> AsyncSlackResponse:
        self.calls.append((method, user))
        if self.down_after is not None and len(self.calls) > self.down_after:
            self.down = TimeoutError()
        if self.down is not None:
            raise self.down
        if user in self.unknown:
            raise SlackApiError("", answer({"ok": False, "error": "user_not_found"}))
        if method == "users.info":
            user_object = {"id": user, "tz": "Europe/London", "profile": {"display_name": user}}
            return answer({"ok": True, "user": user_object})
        return answer({"ok": True, "profile": {"status_emoji": ":palm_tree:"}})

    async def users_info(self, user: str) -> AsyncSlackResponse:
        return await self._call("users.info", user)

    async def users_profile_get(self, user: str) -> AsyncSlackResponse:
        return await self._call("users.profile.get", user)


class Store:
    def __init__(self) -> None:
        self.saved: dict[str, Member] = {}

    async def holders(self, user: str | None = None) -> set[str]:
        return set()

    async def save_people(self, people: dict[str, Member], now: datetime) -> set[str]:
        self.saved.update(people)
        return set()

    async def read_after(self, users: Any, at: datetime) -> set[str]:
        return set()


class Away:
    def __init__(self) -> None:
        self.synced: list[tuple[list[str], dict[str, StatusAway]]] = []

    async def sync_statuses(
        self, checked: list[str], found: dict[str, StatusAway], now: datetime
    ) -> None:
        self.synced.append((checked, found))


class Token:
    """The delivery worker's word on the bot token (bot/slack/outbox.py `Outbox`)."""

    def __init__(self) -> None:
        self.token_refused: str | None = None
        self.token_restored = 0

    def refuse_token(self, why: str) -> None:
        self.token_refused = why


def people(slack: Slack, token: Token | None = None) -> People:
    policy = SimpleNamespace(
        segments=[SimpleNamespace(reps=REPS)],
        managers=[],
        reporters=[],
        viewers=[],
        clock="owner",
        away_statuses=[":palm_tree:"],
    )
    return People(
        slack,  # type: ignore[arg-type]
        Store(),  # type: ignore[arg-type]
        SimpleNamespace(current=policy),  # type: ignore[arg-type]
        {},
        away=Away(),  # type: ignore[arg-type]
        token=token,
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def logged(caplog: pytest.LogCaptureFixture) -> tuple[Slack, People]:
    """Slack and the members' reads through it, with their log lines captured."""
    caplog.set_level(logging.INFO, logger="handoff.people")
    slack = Slack()
    return slack, people(slack)


@pytest.mark.parametrize(
    "down",
    [
        aiohttp.ClientConnectionError("Cannot connect to host slack.com:443"),
        TimeoutError(),
        SlackApiError("", answer({}, status=503)),
        # A proxy's page, not Slack's JSON (a captive portal's 200): no answer about anyone.
        NoSlackAnswer(answer({}, headers={"Content-Type": "text/html"}), "<html>Sign in</html>"),
    ],
    ids=["connection", "timeout", "http-503", "not-slack-200"],
)
async def test_slack_not_answering_stops_the_refresh_at_the_first_member_and_retries_soon(
    caplog: pytest.LogCaptureFixture, down: Exception
) -> None:
    slack, reads = logged(caplog)
    slack.down = down
    assert await reads.refresh(NOW) == {}
    assert len(slack.calls) == 1  # not one per member
    (line,) = lines(caplog)
    assert "names and time zones of 1000 of 1000 members not read from Slack" in line
    if isinstance(down, NoSlackAnswer):  # the line names what answered
        assert (
            "HTTP 200 from slack.com, not Slack's answer (text/html: <html>Sign in</html>)" in line
        )
    assert "trying again in 1 min (00:01 UTC)" in line

    # Tried again a minute later, not the next day; still down: twice as long, up to 15 min.
    assert reads.due(NOW + timedelta(seconds=59)) == []
    now, waits = NOW, []
    for _ in range(6):
        wait = next(m for m in range(1, 61) if reads.due(now + timedelta(minutes=m)))
        waits.append(wait)
        now += timedelta(minutes=wait)
        await reads.refresh(now)
    assert waits == [1, 2, 4, 8, 15, 15]
    assert len(lines(caplog)) == 7 and len(slack.calls) == 7

    # Slack answers again: everyone is read, and the next read is the daily one.
    slack.down = None
    now += timedelta(minutes=15)
    assert reads.due(now) == ["refresh"]
    zones = await reads.refresh(now)
    assert len(zones) == 1000 and reads.zones["U0999"] == "Europe/London"
    assert reads.due(now + timedelta(hours=23, minutes=59)) == []
    assert reads.due(now + timedelta(days=1)) == ["refresh"]
    slack.down = down  # the backoff starts again from a minute
    await reads.refresh(now + timedelta(days=1))
    assert reads.due(now + timedelta(days=1, minutes=1)) == ["refresh"]


async def test_the_members_read_before_slack_stopped_answering_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, reads = logged(caplog)
    slack.down_after = 10
    zones = await reads.refresh(NOW)
    assert len(zones) == 10 and len(slack.calls) == 11
    (line,) = lines(caplog)
    assert "names and time zones of 990 of 1000 members" in line and "TimeoutError" in line


async def test_one_members_api_error_skips_only_that_member(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, reads = logged(caplog)
    slack.unknown = {"U0003"}
    zones = await reads.refresh(NOW)
    assert len(slack.calls) == 1000 and len(zones) == 999
    (line,) = lines(caplog)
    assert "U0003" in line and "user_not_found" in line
    assert reads.due(NOW + timedelta(minutes=15)) == []  # no retry: the next daily read


async def test_slack_not_answering_stops_the_status_read_and_retries_soon(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, reads = logged(caplog)
    await reads.refresh(NOW)
    slack.calls.clear()
    slack.down = aiohttp.ServerDisconnectedError()
    assert await reads.statuses(NOW) == 0
    assert len(slack.calls) == 1
    (line,) = lines(caplog)
    assert "Slack statuses of 1000 of 1000 reps not read from Slack" in line
    assert "trying again in 1 min" in line
    assert reads.away.synced == [([], {})]  # type: ignore[union-attr]  # what was known stays
    assert reads.due(NOW + timedelta(minutes=1)) == ["statuses"]

    slack.down = None
    assert await reads.statuses(NOW + timedelta(minutes=1)) == 1000
    assert reads.due(NOW + timedelta(hours=1)) == []  # the scheduler's own reads go on


async def test_the_refresh_comes_due_once_after_a_refused_token_works_again() -> None:
    slack = Slack()
    token = Token()
    reads = people(slack, token)
    assert reads.due(NOW) == ["refresh"]  # at start
    await reads.refresh(NOW)
    token.token_refused = "invalid_auth"
    later = NOW + timedelta(hours=1)
    assert reads.due(later) == []  # nothing is read while it is refused
    token.token_refused, token.token_restored = None, 1  # auth.test accepts it again
    assert reads.due(later) == ["refresh"]
    await reads.refresh(later)
    for minutes in range(1, 60):  # once: not again at each look, nor at the next probe
        assert reads.due(later + timedelta(minutes=minutes)) == []


async def test_a_status_retry_is_dropped_once_no_status_counts_any_more() -> None:
    """`away_statuses` taken out of the file while a retry waited: nothing is read, and the
    retry does not come due every half minute for ever."""
    slack = Slack()
    reads = people(slack)
    slack.down = TimeoutError()
    await reads.statuses(NOW)
    reads.policies.current.away_statuses = []  # type: ignore[misc]
    later = NOW + timedelta(minutes=1)
    assert reads.due(later) == ["refresh", "statuses"]
    assert await reads.statuses(later) == 0
    assert reads.due(later + timedelta(minutes=30)) == ["refresh"]  # never read yet
    assert len(slack.calls) == 1


@pytest.mark.parametrize("why", ["down", "refused", "partly"])
async def test_the_log_claims_no_names_from_slack_that_it_did_not_read(
    caplog: pytest.LogCaptureFixture, why: str
) -> None:
    """`serve`'s refresh (bot/app.py `refresh_members`) said "names of 1000 members and 0 time
    zones from Slack" right after the warning that Slack did not answer (or the error that it
    refuses the token): the names it counted were those known from the database. What the log
    says was read from Slack is what Slack answered, and nothing when it answered nothing."""
    from bot.app import Handoff

    caplog.set_level(logging.INFO, logger="handoff")
    slack, token = Slack(), Token()
    reads = people(slack, token)
    serve = SimpleNamespace(people=reads, clock=lambda: NOW)
    await Handoff.refresh_members(serve)  # type: ignore[arg-type]
    (read,) = [r.getMessage() for r in caplog.records if "from Slack" in r.getMessage()]
    assert "names of 1000 members and 1000 time zones from Slack" in read
    caplog.clear()

    if why == "down":
        slack.down = TimeoutError()
    elif why == "refused":
        token.token_refused = "invalid_auth"
    else:  # Slack stops answering after the first 10 members
        slack.down_after = len(slack.calls) + 10
    await Handoff.refresh_members(serve)  # type: ignore[arg-type]
    claimed = [
        r.getMessage()
        for r in caplog.records
        if r.levelno < logging.WARNING and "from Slack" in r.getMessage()
    ]
    if why == "partly":
        assert claimed == ["names of 10 members and 10 time zones from Slack"]
    else:
        assert claimed == [] or all("not read" in line for line in claimed)


async def test_a_look_goes_on_when_the_database_cannot_say_who_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`serve`'s look (bot/app.py `read_people`, every 30 s) first reads who left from the
    database: a database that fails it is logged, and the look (and its loop) goes on."""
    from bot.app import Handoff

    slack = Slack()
    reads = people(slack)

    async def fails() -> set[str]:
        raise OSError("the database is not there")

    reads.store.barred = fails  # type: ignore[attr-defined]
    serve = SimpleNamespace(people=reads, clock=lambda: NOW)
    serve.refresh_members = lambda: Handoff.refresh_members(serve)  # type: ignore[arg-type]
    await Handoff.read_people(serve)  # type: ignore[arg-type]
    assert len(reads.names) == 1000  # the refresh due at start was still made
    assert any("who left Slack" in r.getMessage() for r in caplog.records)


RATELIMITED = {"ok": False, "error": "ratelimited"}


@pytest.mark.parametrize(
    ("retry_after", "first_wait"),
    [(None, "1 min (00:01 UTC)"), ("300", "5 min (00:05 UTC)")],
    ids=["no-retry-after", "retry-after-300"],
)
async def test_a_429_left_after_the_clients_retries_stops_the_refresh_for_everyone(
    caplog: pytest.LogCaptureFixture, retry_after: str | None, first_wait: str
) -> None:
    """Slack's rate limits (https://docs.slack.dev/apis/web-api/rate-limits/) are per method
    for the whole app: a 429 for one member is a 429 for the next. It was taken for a problem
    with that member, and the read went on member by member with a warning each. It stops at
    the first, says so in one line, and is tried again with the backoff, not before the
    Retry-After it carries."""
    slack, reads = logged(caplog)
    headers = {"Retry-After": retry_after} if retry_after else {}
    slack.down = SlackApiError("", answer(RATELIMITED, status=429, headers=headers))
    assert await reads.refresh(NOW) == {}
    assert len(slack.calls) == 1
    (line,) = lines(caplog)
    assert "names and time zones of 1000 of 1000 members not read from Slack" in line
    assert "HTTP 429" in line and f"trying again in {first_wait}" in line
    wait = 5 if retry_after else 1
    assert reads.due(NOW + timedelta(minutes=wait) - timedelta(seconds=1)) == []
    assert reads.due(NOW + timedelta(minutes=wait)) == ["refresh"]

    slack.calls.clear()
    assert await reads.statuses(NOW) == 0  # users.profile.get: the same
    assert len(slack.calls) == 1 and len(lines(caplog)) == 2


async def test_a_database_error_in_the_refresh_retries_within_minutes_not_a_day(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Who holds open leads is read from the database before Slack is asked: a database that
    fails it pushed the next refresh a full day away. It is retried with the same backoff as
    Slack not answering, in one line."""
    slack, reads = logged(caplog)

    async def fails(user: str | None = None) -> set[str]:
        raise OSError("connection refused\nsecond line of the driver's message")

    reads.store.holders = fails  # type: ignore[method-assign]
    assert await reads.refresh(NOW) == {}
    (line,) = lines(caplog)
    assert "names and time zones not refreshed: the database failed" in line
    assert "OSError: connection refused" in line and "second line" not in line
    assert "trying again in 1 min (00:01 UTC)" in line
    assert reads.due(NOW + timedelta(minutes=1)) == ["refresh"]
    await reads.refresh(NOW + timedelta(minutes=1))  # still failing: twice as long
    assert reads.due(NOW + timedelta(minutes=2)) == []
    assert reads.due(NOW + timedelta(minutes=3)) == ["refresh"]
    del reads.store.holders  # the database is back
    assert len(await reads.refresh(NOW + timedelta(minutes=3))) == 1000
    assert reads.due(NOW + timedelta(minutes=18)) == []  # the next read is the daily one
    assert len(slack.calls) == 1000


async def test_the_refresh_keeps_users_info_within_its_tier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack's rate limits are per method for the whole app (users.info: Tier 4, 100+ per
    minute): `serve` read 1,000 members as fast as Slack answered, spending the app's budget
    and meeting 429s. It reads them at the pace of its other calls (the delivery worker's
    pacer: HANDOFF_SLACK_CALLS_PER_MINUTE, 50 a minute by default, bursts of 10)."""
    import asyncio

    from bot.slack.pacing import Pace, Pacer

    seconds = [0.0]
    monkeypatch.setattr(asyncio, "sleep", _advancing(seconds))
    slack = Slack()
    reads = people(slack)
    reads.pacer = Pacer(Pace(), monotonic=lambda: seconds[0])
    await reads.refresh(NOW)
    assert len(slack.calls) == 1000
    # 10 at once (the burst), then 50 a minute: about twenty minutes for 1,000.
    assert 1180 <= seconds[0] <= 1190

    # A 429 pauses the method for its Retry-After (the pacer's, the worker's too).
    slack.down = SlackApiError("", answer(RATELIMITED, 429, {"Retry-After": "30"}))
    await reads.refresh(NOW + timedelta(days=1))
    assert reads.pacer.delay("users.info", None) >= 29


def _advancing(seconds: list[float]) -> Any:
    async def sleep(delay: float, result: Any = None) -> Any:
        seconds[0] += delay + 1e-6  # time moves on (a float sum alone may round to no change)
        return result

    return sleep

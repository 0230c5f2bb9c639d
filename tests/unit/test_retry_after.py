"""Every `Retry-After` Handoff reads (Slack's 429s in the outbox and its client, HubSpot's 429s,
423s and 477s, a webhook receiver's, the inbound reads) is a finite wait between 0 and a cap,
whatever the sender wrote: RFC 9110 §10.2.3, delay-seconds or an HTTP-date; anything else is the
usual wait. `timedelta(seconds=inf)` and `datetime + timedelta(seconds=1e300)` raise
OverflowError, which stopped the worker that met them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.crm.emails import retry_after as slack_retry_after
from bot.crm.hubspot import retry_after as hubspot_retry_after
from bot.crm.webhook import wait as webhook_wait
from bot.domain.retry_after import (
    HUBSPOT_MOST,
    SLACK_MOST,
    header_seconds,
    retry_after_seconds,
)

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC).timestamp()
HOSTILE = ["inf", "Infinity", "-inf", "nan", "NaN", "-5", "1e999", "1e9", "", "  ", "soon", "0x10"]


def seconds(value: object, default: float | None = 7.0, most: float = 600.0) -> float | None:
    return retry_after_seconds(value, NOW, default=default, most=most)


def test_delay_seconds_are_taken_as_given() -> None:
    assert seconds("0") == 0
    assert seconds("30") == 30
    assert seconds(" 12 ") == 12
    assert seconds("1.5") == 1.5  # not RFC, but harmless
    assert seconds(["4", "9"]) == 4  # a client's list of values: the first
    assert seconds(b"30") == 30  # a client that hands over the raw bytes


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_that_is_no_wait_is_the_default(value: str) -> None:
    assert seconds(value) == 7.0
    assert seconds(value, default=None) is None


def test_no_value_is_the_default() -> None:
    assert seconds(None) == 7.0
    assert seconds([]) == 7.0  # a client's empty list of values
    assert header_seconds({"Content-Type": "application/json"}, NOW, default=3.0, most=10) == 3.0
    assert header_seconds({}, NOW, default=3.0, most=10) == 3.0
    assert header_seconds(None, NOW, default=3.0, most=10) == 3.0


@pytest.mark.parametrize("value", ["601", "86400", "99999999999", "9" * 400])
def test_a_huge_wait_is_the_cap(value: str) -> None:
    assert seconds(value) == 600.0


def test_an_http_date_is_the_time_until_then_capped_and_a_past_one_is_no_wait() -> None:
    assert seconds("Mon, 23 Nov 2026 00:01:00 GMT") == 60
    assert seconds("Monday, 23-Nov-26 00:02:00 GMT") == 120  # RFC 850, obsolete but allowed
    assert seconds("Mon Nov 23 00:03:00 2026") == 180  # asctime: GMT
    assert seconds("Sun, 22 Nov 2026 00:00:00 GMT") == 0
    assert seconds("Fri, 31 Dec 9999 23:59:59 GMT") == 600.0


@pytest.mark.parametrize(
    "value",
    [
        "Mon, 23 Nov 99999 00:00:00 GMT",
        "Mon, 32 Nov 2026 00:00:00 GMT",
        "Mon, 23 Nov 2026",
        # Numbers past a C long: the date parser raises OverflowError, not ValueError.
        "Mon, 23 Nov 2026 99999999999999999999:00:00 GMT",
        "Mon, 23 Nov 2026 00:00:00 +99999999999999999999",
    ],
)
def test_a_date_that_is_no_date_is_the_default(value: str) -> None:
    assert seconds(value) == 7.0


def test_an_asctime_date_is_gmt_whatever_the_server_s_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asctime's form names no zone; RFC 9110 §5.6.7: HTTP-dates are GMT. On a server whose
    clock is set to Sydney (or New York) the wait is the same 3 minutes, not hours off."""
    for zone in ("Australia/Sydney", "America/New_York"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        try:
            assert seconds("Mon Nov 23 00:03:00 2026") == 180
        finally:
            monkeypatch.undo()
            time.tzset()


def test_the_header_is_found_in_any_case() -> None:
    assert header_seconds({"retry-after": ["5"]}, NOW, default=1.0, most=10) == 5
    assert header_seconds({"RETRY-AFTER": "inf"}, NOW, default=1.0, most=10) == 1.0
    # A mapping with a name that is no text (a client's raw pairs) is read past, not a crash.
    odd: dict[object, str] = {None: "x", 7: "y", "Retry-After": "5"}
    assert header_seconds(odd, NOW, default=1.0, most=10) == 5  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [*HOSTILE, "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_every_reader_of_the_header_gives_a_wait_a_clock_can_add(value: str) -> None:
    """Each wait is finite and within its cap, so `now + timedelta(seconds=wait)` holds."""
    now = datetime.now(UTC)
    waits = [
        hubspot_retry_after({"Retry-After": value}),
        webhook_wait(value, NOW),
        slack_retry_after_of(value),
    ]
    for wait in waits:
        assert wait is None or 0 <= wait <= HUBSPOT_MOST
        _ = now + timedelta(seconds=wait or 0)
    assert waits[2] <= SLACK_MOST  # type: ignore[operator]


def slack_retry_after_of(value: str) -> float:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    response = AsyncSlackResponse(
        client=None,  # type: ignore[arg-type]
        http_verb="POST",
        api_url="https://slack.test/api/users.info",
        req_args={},
        data={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": [value]},
        status_code=429,
    )
    return slack_retry_after(SlackApiError("ratelimited", response))


def test_slack_asking_an_hour_is_waited_fifteen_minutes_and_hubspot_two_days_one_day() -> None:
    """The caps themselves, as each reader applies them: a Slack 429 asking for an hour is
    waited 15 minutes, as long as the members' reads wait at most (bot/services/people.py
    RETRY_MOST), and one request then gets the rest of the wait from Slack; HubSpot's 477
    Migration in Progress asks for "typically up to 24 hours" (HubSpot's "Error handling"
    guide, quoted in bot/domain/retry_after.py), so a wait of two days is held to one."""
    assert slack_retry_after_of("3600") == 15 * 60
    assert slack_retry_after_of("899") == 899
    assert hubspot_retry_after({"Retry-After": str(2 * 24 * 3600)}) == 24 * 3600
    assert hubspot_retry_after({"Retry-After": str(23 * 3600)}) == 23 * 3600

"""Weekly runs over the real store (SQLite and PostgreSQL): recorded once, with their posts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.domain.effects import Send
from bot.domain.policy import WeeklyDigest
from bot.domain.report import Period
from bot.services.digest import digest_time
from storage.reports import RunStore
from storage.repository import Store

NOW = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


async def test_a_run_is_recorded_once_with_its_posts(store: Store) -> None:
    runs = RunStore(store.db)
    posts = [
        Send("C0REVOPS", "digest", "weekly_digest:2026-W48:0"),
        Send("U0MGR1", "alert", "weekly_digest:2026-W48:1"),
    ]
    results = await asyncio.gather(
        *(runs.send_once("weekly_digest", "2026-W48", posts, NOW) for _ in range(6))
    )
    assert sorted(results) == [False] * 5 + [True]
    assert await runs.sent("weekly_digest", "2026-W48")
    assert not await runs.sent("weekly_digest", "2026-W49")
    queued = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT channel, key FROM outbox WHERE kind = 'message' ORDER BY id"
        ).all()
    )
    assert [tuple(row) for row in queued] == [
        ("C0REVOPS", "weekly_digest:2026-W48:0"),
        ("U0MGR1", "weekly_digest:2026-W48:1"),
    ]


def test_the_digest_is_due_on_its_day_in_the_team_zone() -> None:
    week = Period(2026, 48, "Australia/Sydney")
    assert digest_time(week, WeeklyDigest()) == datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    friday = digest_time(week, WeeklyDigest(day="fri", time="16:30"))
    assert friday == datetime(2026, 12, 4, 5, 30, tzinfo=UTC)  # Fri 4 Dec 16:30 AEDT

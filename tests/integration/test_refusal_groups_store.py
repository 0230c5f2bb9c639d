"""Refusals of one channel and error count into ONE managers' alert (SQLite and PostgreSQL),
also when two replicas give up on rows at the same moment: the open group's key is unique in
the database. Once the channel takes messages again, each lead whose post was refused is
posted again once, however many replicas (or unarchive events) find out."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from bot.domain.effects import REJECTION_REVIEW, WEEKLY_DIGEST, ReportPart, Send
from bot.services.leads import Services
from storage import db
from storage.outbox import Kind, OutboxItem, OutboxStore, Refusals
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, statements
from tests.integration.test_erasure_store import downgrade_to_before

LATER = MONDAY + timedelta(minutes=5)
ESCALATIONS, FEEDBACK = "C0ESCALATE", "C0MKTFEED"


async def refused_posts(services: Services, rows: OutboxStore, count: int) -> list[OutboxItem]:
    """`count` leads whose posts to the enterprise channel a worker has taken."""
    taken = []
    for index in range(count):
        result = await services.intake(lead_payload(f"hs-{index}"), MONDAY)
        assert result.lead is not None
    for row in await rows.rows():
        if row["kind"] == Kind.POST_LEAD:
            item = await rows.lease(int(row["id"]), LATER, LATER + timedelta(seconds=30))
            assert item is not None
            taken.append(item)
    assert len(taken) == count
    return taken


async def test_two_replicas_refused_at_once_make_one_alert_counting_every_refusal(
    services: Services, database_url: str
) -> None:
    rows = OutboxStore(services.store.db)
    other = db.Database(database_url)  # a second replica: its own connections
    try:
        items = await refused_posts(services, rows, 8)
        replicas = [rows, OutboxStore(other)]
        await asyncio.gather(
            *(
                replicas[index % 2].refused(item, LATER, "is_archived", ESCALATIONS)
                for index, item in enumerate(items)
            )
        )

        written = await rows.rows()
        alerts = [row for row in written if row["channel"] == ESCALATIONS]
        (alert,) = [row for row in alerts if row["kind"] == Kind.MESSAGE]
        group = await rows.refusals(int(alert["payload"]["group"]))
        assert group is not None and (group.refused, group.channel) == (8, "C0ENT")
        assert all(row["kind"] == Kind.RECOUNT for row in alerts if row is not alert)

        # Unarchived: the event on one replica, a post getting through on the other.
        again = await asyncio.gather(
            rows.mended("C0ENT", LATER), OutboxStore(other).mended("C0ENT", LATER)
        )
        assert sum(again) == 8
        posts = [
            row
            for row in await rows.rows()
            if row["kind"] == Kind.POST_LEAD and row["state"] == "pending"
        ]
        assert sorted(int(row["lead_id"]) for row in posts) == list(range(1, 9))
        group = await rows.refusals(group.id)
        assert group is not None and group.reposted == 8 and group.mended_at == LATER
    finally:
        await other.dispose()


async def test_a_day_later_the_same_refusal_opens_a_new_alert(services: Services) -> None:
    rows = OutboxStore(services.store.db)
    first, second = await refused_posts(services, rows, 2)
    await rows.refused(first, LATER, "is_archived", ESCALATIONS)
    await rows.refused(second, LATER + timedelta(hours=25), "is_archived", ESCALATIONS)

    alerts = [row for row in await rows.rows() if row["kind"] == Kind.MESSAGE]
    assert len(alerts) == 2
    assert {row["key"] for row in alerts} == {"refused:1", "refused:2"}


async def refuse(rows: OutboxStore, key: str, at: datetime) -> None:
    """A worker takes the row keyed `key` and Slack refuses it: its channel is archived."""
    (row,) = [row for row in await rows.rows() if row["key"] == key]
    item = await rows.lease(int(row["id"]), at, at + timedelta(seconds=30))
    assert item is not None
    await rows.refused(item, at, "is_archived", ESCALATIONS)


async def test_a_refused_report_is_sent_again_once_whatever_the_replicas_also_if_refused_again(
    services: Services, database_url: str
) -> None:
    """A week's rejection review refused by marketing's archived channel: two replicas finding
    the channel back at once write ONE row sending it again, as it was; that one refused too
    (archived again before it went) is sent again once more at the next mend, never twice."""
    rows = OutboxStore(services.store.db)
    other = db.Database(database_url)
    review = Send(FEEDBACK, "Rejections in 2026-W48", "weekly_digest:2026-W48:3")
    try:
        await rows.send([review], MONDAY)
        await refuse(rows, review.key, LATER)

        def copies(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [row for row in written if str(row["key"]).startswith(f"{review.key}:again:")]

        for mend in range(2):
            await asyncio.gather(
                rows.mended(FEEDBACK, LATER), OutboxStore(other).mended(FEEDBACK, LATER)
            )
            found = copies(await rows.rows())
            assert len(found) == mend + 1
            latest = found[-1]
            assert latest["state"] == "pending" and latest["lead_id"] is None
            assert latest["payload"] == {"text": "Rejections in 2026-W48"}
            if mend == 0:
                await refuse(rows, str(latest["key"]), LATER)
        # Written unmarked (before the digest marked its messages): told by its place, the
        # run's last message, in both alerts (the copy refused again opened the second).
        for group_id in (1, 2):
            group = await rows.refusals(group_id)
            assert group is not None
            assert group.last_report == ReportPart(REJECTION_REVIEW, "2026-W48")
        assert group.resent.reports == ((REJECTION_REVIEW, "2026-W48"),)
    finally:
        await other.dispose()


async def test_unmarked_reports_sent_again_are_told_in_as_many_statements_however_many(
    services: Services,
) -> None:
    """Weekly runs written before the digest marked its messages, refused by an archived
    channel: each is told by its place (the run's last message is the rejection review). A
    channel with eight of them comes back in as many statements as one with one (before: one
    query per message for its run's last one), and the alert tells the same reports."""
    rows = OutboxStore(services.store.db)
    weeks = ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    one = Send("C0ONE", "Weekly SLA digest", "weekly_digest:2026-W44:1")
    many = [
        Send(FEEDBACK, f"{what} {week}", f"weekly_digest:{week}:{index}")
        for week in weeks
        for index, what in ((1, "Weekly SLA digest"), (2, "Rejections in"))
    ]
    await rows.send([one, *many], MONDAY)
    for message in (one, *many):
        await refuse(rows, message.key, LATER)

    counted = []  # the reads (a recount may or may not be written, as one waits already)
    for channel in ("C0ONE", FEEDBACK):
        with statements("SELECT") as sent:
            await rows.mended(channel, LATER)
        counted.append(len(sent))
    assert counted[0] == counted[1], counted

    assert (await group_of(rows, "C0ONE")).resent.reports == ((REJECTION_REVIEW, "2026-W44"),)
    assert (await group_of(rows, FEEDBACK)).resent.reports == tuple(
        (what, week) for week in weeks for what in (WEEKLY_DIGEST, REJECTION_REVIEW)
    )


async def group_of(rows: OutboxStore, channel: str) -> Refusals:
    """The latest group of refusals to `channel`, as its alert shows it."""
    for row in reversed(await rows.rows()):
        if row["kind"] == Kind.MESSAGE and row["channel"] == ESCALATIONS:
            group = await rows.refusals(int(row["payload"]["group"]))
            if group is not None and group.channel == channel:
                return group
    raise AssertionError(f"no refusals to {channel}")


async def test_a_refused_report_is_told_as_what_the_digest_marked_it_not_by_its_place(
    services: Services,
) -> None:
    """The weekly run marks each message with the report it is (bot/services/digest.py): the
    alert tells the rejection review and the digest by that mark, not by which one the run
    wrote last. Here the review comes first: by place it would be told as the digest."""
    rows = OutboxStore(services.store.db)
    week = "2026-W48"
    review = Send(
        FEEDBACK, "Rejections in 2026-W48", f"weekly_digest:{week}:1",
        report=ReportPart(REJECTION_REVIEW, week),
    )  # fmt: skip
    digest = Send(
        FEEDBACK, "Weekly SLA digest", f"weekly_digest:{week}:2",
        report=ReportPart(WEEKLY_DIGEST, week),
    )  # fmt: skip
    await rows.send([review, digest], MONDAY)

    await refuse(rows, review.key, LATER)
    group = await group_of(rows, FEEDBACK)
    assert group.last_report == ReportPart(REJECTION_REVIEW, week)
    await refuse(rows, digest.key, LATER)
    group = await group_of(rows, FEEDBACK)
    assert group.refused == 2 and group.last_report == ReportPart(WEEKLY_DIGEST, week)

    await rows.mended(FEEDBACK, LATER)
    group = await group_of(rows, FEEDBACK)
    assert group.resent.reports == ((REJECTION_REVIEW, week), (WEEKLY_DIGEST, week))
    copies = [row for row in await rows.rows() if ":again:" in str(row["key"])]
    assert [row["payload"]["report"] for row in copies] == [REJECTION_REVIEW, WEEKLY_DIGEST]


async def test_a_group_from_before_it_recorded_reports_comes_through_the_migration(
    services: Services,
) -> None:
    """Migration 0034 down and up again with a group stored: the group is kept; recorded
    before its report was, it names none (its alert says "a message", as it did), and its
    next refusal records it."""
    rows = OutboxStore(services.store.db)
    week = "2026-W48"
    sends = [
        Send(
            FEEDBACK,
            f"Review {n}",
            f"weekly_digest:{week}:{n}",
            report=ReportPart(WEEKLY_DIGEST, week),
        )
        for n in (1, 2)
    ]
    await rows.send(sends, MONDAY)
    await refuse(rows, sends[0].key, LATER)
    engine = services.store.db.engine
    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(downgrade_to_before("_refused_reports.py"))
        await connection.commit()
    await db.upgrade(engine)

    group = await group_of(rows, FEEDBACK)
    assert group.refused == 1 and group.last_report is None
    await refuse(rows, sends[1].key, LATER)
    group = await group_of(rows, FEEDBACK)
    assert group.refused == 2 and group.last_report == ReportPart(WEEKLY_DIGEST, week)

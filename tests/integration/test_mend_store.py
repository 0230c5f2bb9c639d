"""A channel that refused Handoff takes messages again (unarchived, the app invited back, a
message getting through), over the real store (SQLite and PostgreSQL): everything it refused
comes back once, in the order it was made, written together (not one INSERT per refused row,
seconds of one write transaction with thousands of leads, every ack and intake waiting behind
it on SQLite), and the managers' alert counts it right, however many replicas find out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.effects import WEEKLY_DIGEST, ReportPart, Send
from bot.domain.policy import Policy
from bot.services.erasure import forget
from bot.services.leads import Services
from storage import db
from storage.outbox import Kind, OutboxStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, erased_after, services_on
from tests.integration.test_moved_store import outbox_statements
from tests.integration.test_refusal_groups_store import ESCALATIONS, LATER, group_of, refused_posts

CHANNEL = "C0ENT"  # the enterprise segment's, and here marketing's feedback channel too
LEADS, DISPOSED = 300, 4
HALF = LEADS // 2
NURTURED = range(HALF + 1, HALF + DISPOSED + 1)  # the disposed leads' ids
WEEK = "2026-W48"
REPORT = f"weekly_digest:{WEEK}:2"


async def archived_channel(store: Store, policy: Policy) -> tuple[OutboxStore, list[str]]:
    """The enterprise channel, marketing's too, refused half of `LEADS` leads' posts, then
    `DISPOSED` leads' feedback (their posts refused too: nurtured, they do not come back), a
    week's digest, then the other half's posts. The keys it refused, in the order made."""
    channels = policy.channels.model_copy(update={"marketing_feedback": CHANNEL})
    services = await services_on(store, policy.model_copy(update={"channels": channels}))
    rows = OutboxStore(services.store.db)

    async def intake(indexes: range) -> None:
        for index in indexes:
            result = await services.intake(lead_payload(f"hs-{index}"), MONDAY)
            assert result.lead is not None

    await intake(range(HALF + DISPOSED))
    for lead_id in NURTURED:
        await services.claim(lead_id, "U0REP1", MONDAY + timedelta(minutes=1))
        await services.dispose(lead_id, "U0REP1", "bad_timing", MONDAY + timedelta(minutes=2))
    digest = Send(CHANNEL, "Weekly SLA digest", REPORT, report=ReportPart(WEEKLY_DIGEST, WEEK))
    await rows.send([digest], MONDAY + timedelta(minutes=3))
    await intake(range(HALF + DISPOSED, LEADS + DISPOSED))
    refused = []
    for row in await rows.rows():
        if row["channel"] == CHANNEL and row["kind"] in (Kind.POST_LEAD, Kind.FEEDBACK, "message"):
            item = await rows.lease(int(row["id"]), LATER, LATER + timedelta(seconds=30))
            assert item is not None
            await rows.refused(item, LATER, "is_archived", ESCALATIONS)
            refused.append(str(row["key"]))
    return rows, refused


def copies(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows sending again what the channel refused, in the order they go."""
    return sorted(
        (row for row in written if row["channel"] == CHANNEL and "again" in str(row["key"])),
        key=lambda row: int(row["id"]),
    )


def refused_by(row: dict[str, Any], written: list[dict[str, Any]]) -> str:
    """The key of the refused row a copy sends again."""
    refused_id = int(str(row["key"]).rpartition(":")[2])
    (original,) = [item for item in written if int(item["id"]) == refused_id]
    return str(original["key"])


async def test_a_mended_channel_gets_hundreds_of_refused_leads_back_once_in_order(
    store: Store, policy: Policy, database_url: str
) -> None:
    rows, refused = await archived_channel(store, policy)
    assert len(refused) == 2 * DISPOSED + LEADS + 1
    other = db.Database(database_url)  # a second replica: the unarchive event there
    try:
        again = await asyncio.gather(
            rows.mended(CHANNEL, LATER), OutboxStore(other).mended(CHANNEL, LATER)
        )
        assert sorted(again) == [0, LEADS]
        written = await rows.rows()
        sent = copies(written)
        # The open leads' posts, marketing's feedback, the digest: each once, as they were made.
        kinds = [Kind.POST_LEAD] * HALF + [Kind.FEEDBACK] * DISPOSED + ["message"]
        assert [row["kind"] for row in sent] == kinds + [Kind.POST_LEAD] * HALF
        nurtured = {f"post_lead:{lead_id}" for lead_id in NURTURED}
        assert [refused_by(row, written) for row in sent] == [
            key for key in refused if key not in nurtured
        ]
        posted = sorted(int(row["lead_id"]) for row in sent if row["kind"] == Kind.POST_LEAD)
        assert posted == [
            lead_id for lead_id in range(1, LEADS + DISPOSED + 1) if lead_id not in NURTURED
        ]
        assert sent[HALF + DISPOSED]["payload"]["text"] == "Weekly SLA digest"

        group = await group_of(rows, CHANNEL)
        assert group.refused == len(refused) and group.reposted == LEADS
        assert group.mended_at == LATER
        assert group.resent.dispositions == DISPOSED
        assert group.resent.reports == ((WEEKLY_DIGEST, WEEK),)

        # Found again (a message getting through, the app invited back): nothing comes twice.
        assert await rows.mended(CHANNEL, LATER) == 0
        assert await OutboxStore(other).joined(CHANNEL, LATER) == 0
        assert len(copies(await rows.rows())) == len(sent)
        group = await group_of(rows, CHANNEL)
        assert group.reposted == LEADS and group.resent.dispositions == DISPOSED
    finally:
        await other.dispose()


async def test_a_mend_writes_what_comes_back_together_not_one_insert_per_refused_row(
    store: Store, policy: Policy
) -> None:
    rows, refused = await archived_channel(store, policy)

    with outbox_statements() as sent:
        assert await rows.mended(CHANNEL, LATER) == LEADS

    inserts = [statement for statement in sent if statement.startswith("INSERT")]
    updates = [statement for statement in sent if statement.startswith("UPDATE")]
    assert len(inserts) <= 3  # the copies (one statement), a recount, the leads' re-renders
    assert len(updates) <= 4  # the groups closed, the told rows (one statement), the recount
    assert len(copies(await rows.rows())) == len(refused) - DISPOSED


async def test_a_lead_erased_before_the_mend_is_not_posted_again_nor_counted(
    services: Services,
) -> None:
    """Three leads refused by the archived channel, one of them erased (`handoff forget`)
    before the channel is unarchived: the alert says Handoff posted again the 2 leads, not 3,
    and nothing is written to post the erased person again."""
    rows = OutboxStore(services.store.db)
    items = await refused_posts(services, rows, 3)
    for item in items:
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)
    (gone,) = await forget(services.store, Wakes(), "hs-0@northwind.example", "cli", LATER)
    erased = {gone.lead_id}

    assert await rows.mended(CHANNEL, LATER + timedelta(minutes=1)) == 2
    again = [row for row in copies(await rows.rows()) if row["kind"] == Kind.POST_LEAD]
    assert sorted(int(row["lead_id"]) for row in again) == sorted(
        int(item.lead_id or 0) for item in items if int(item.lead_id or 0) not in erased
    )
    assert (await group_of(rows, CHANNEL)).reposted == 2


async def test_a_lead_erased_while_the_mend_writes_is_not_counted_as_posted_again(
    services: Services, database_url: str
) -> None:
    """The person is forgotten while a replica mends the channel: the erasure commits between
    the mend's look for the refused posts (the lead not erased yet) and its write of their
    copies. The delivery worker posts nothing for an erased lead, so the alert must not count
    it among the leads "posted again" (PostgreSQL, Read Committed: the erasure cannot see the
    copy to come)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs a mend's look and write with no other writer in between")
    rows = OutboxStore(services.store.db)
    items = await refused_posts(services, rows, 3)
    for item in items:
        await rows.refused(item, LATER, "is_archived", ESCALATIONS)
    # Right after the mend's look at the refused posts: the erasure, to its commit.
    with erased_after(services, "hs-0", LATER, "posted_at IS NULL", "FROM outbox") as erased:
        assert await rows.mended(CHANNEL, LATER + timedelta(minutes=1)) == 2
    assert erased and erased[0]  # the erasure ran between the look and the write
    assert (await group_of(rows, CHANNEL)).reposted == 2

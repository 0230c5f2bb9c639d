"""The what-if replay's queries: the stage times of the MQLs received in a range, and every
lead received in a range as the MQL definition's replay scores it.

One query shape, run one slice of time at a time: each slice is a range on
`ix_leads_received_at`, so a long history is read in short transactions and never held at once
(bot/domain/whatif.py folds each batch into its figures). Times are read as seconds since the
epoch, as the report's are (storage/reports.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from bot.domain.report import NOT_ACCEPTED
from bot.domain.whatif import Candidate, History, candidate
from storage.db import Database
from storage.reports import epoch, instant
from storage.repository import LEADS, VIEW_FIELDS, lead_view
from storage.tables import LeadRow

SLICE = timedelta(days=1)


def _query(db: Connection, start: datetime, end: datetime) -> Any:
    instants = (
        LeadRow.received_at,
        func.coalesce(LeadRow.cycle_started_at, LeadRow.received_at),
        LeadRow.claimed_at,
        LeadRow.first_touch_at,
        LeadRow.dispositioned_at,
    )
    return select(
        *[epoch(db, column) for column in instants],
        LeadRow.score,
        LeadRow.source,
        LeadRow.owner_zone,
        LeadRow.stage.in_([stage.value for stage in NOT_ACCEPTED]),
    ).where(LeadRow.received_at >= start, LeadRow.received_at < end, LeadRow.mql.is_(True))


def _history(row: Any) -> History:
    received, started, claimed, touched, closed, score, source, zone, rejected = row
    return History(
        received_at=datetime.fromtimestamp(round(float(received), 3), UTC),
        started_at=datetime.fromtimestamp(round(float(started), 3), UTC),
        claimed_at=instant(claimed),
        first_touch_at=instant(touched),
        dispositioned_at=instant(closed),
        score=int(score),
        source=source,
        owner_zone=zone,
        rejected=bool(rejected),
    )


class WhatIfStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def history(
        self, start: datetime, end: datetime, step: timedelta = SLICE
    ) -> AsyncIterator[list[History]]:
        """The MQLs received in [start, end), one batch per `step` of time (oldest first)."""
        cursor = start
        while cursor < end:
            upto = min(cursor + step, end)

            def work(
                db: Connection, low: datetime = cursor, high: datetime = upto
            ) -> list[History]:
                return [_history(row) for row in db.execute(_query(db, low, high))]

            yield await self.db.run(work)
            cursor = upto

    async def leads(
        self, start: datetime, end: datetime, step: timedelta = SLICE
    ) -> AsyncIterator[list[Candidate]]:
        """Every lead received in [start, end), whatever became of it, as the MQL definition's
        replay reads it (its data and engagement; not its payload), one batch per `step`."""
        columns = [LEADS.c[name] for name in VIEW_FIELDS] + [LEADS.c.stage]
        cursor = start
        while cursor < end:
            upto = min(cursor + step, end)

            def work(
                db: Connection, low: datetime = cursor, high: datetime = upto
            ) -> list[Candidate]:
                query = select(*columns).where(
                    LeadRow.received_at >= low, LeadRow.received_at < high
                )
                rows = db.execute(query.order_by(LeadRow.id)).mappings()
                return [candidate(view) for row in rows if (view := lead_view(row))]

            yield await self.db.run(work)
            cursor = upto

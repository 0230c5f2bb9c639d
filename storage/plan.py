"""The revenue plan's history: what became of the MQLs received over the last weeks, by segment.

One aggregate over a range of `ix_leads_received_at`: the MQLs of those weeks as a cohort, with
the opportunities, wins, losses and won amounts the CRM has reported for them since. The plan
costs the weeks it reads, not the whole history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, case, func, select

from bot.domain.plan import Funnel, History
from storage.db import Database
from storage.tables import LeadRow

_WON_WITH_AMOUNT = and_(LeadRow.won_at.is_not(None), LeadRow.amount.is_not(None))


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _history_query(since: datetime, until: datetime) -> Select[Any]:
    won_amount = func.sum(case((_WON_WITH_AMOUNT, LeadRow.amount), else_=0))
    return (
        select(
            LeadRow.segment,
            func.count().label("mqls"),
            _count(LeadRow.opportunity_at.is_not(None)).label("opportunities"),
            _count(LeadRow.won_at.is_not(None)).label("won"),
            _count(LeadRow.lost_at.is_not(None)).label("lost"),
            _count(_WON_WITH_AMOUNT).label("won_with_amount"),
            func.coalesce(won_amount, 0).label("won_amount"),
        )
        .where(LeadRow.received_at >= since, LeadRow.received_at < until, LeadRow.mql.is_(True))
        .group_by(LeadRow.segment)
    )


class PlanStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def history(self, until: datetime, weeks: int) -> History:
        """The funnel of the MQLs received in the `weeks` weeks before `until`, by segment."""
        query = _history_query(until - timedelta(weeks=weeks), until)

        def work(db: Connection) -> History:
            by_segment = {
                str(row["segment"]): Funnel(
                    mqls=int(row["mqls"]),
                    opportunities=int(row["opportunities"]),
                    won=int(row["won"]),
                    lost=int(row["lost"]),
                    won_with_amount=int(row["won_with_amount"]),
                    won_amount=float(row["won_amount"]),
                )
                for row in db.execute(query).mappings()
            }
            return History(weeks, by_segment)

        return await self.db.run(work)

"""The revenue plan's history: what became of the MQLs received over the last weeks, by segment.

One aggregate over a range of `ix_leads_received_at`: the MQLs of those weeks as a cohort, with
the SALs and SQLs Slack recorded and the opportunities, wins, losses and won amounts the CRM
has reported for them since, and the first MQL's arrival (the pace is measured from it). A lead
counts at every stage up to the furthest it reached. The plan costs the weeks it reads, not
the whole history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, case, func, or_, select

from bot.domain.lead import Stage
from bot.domain.plan import Funnel, History
from storage.db import Database
from storage.tables import LeadRow

_WON_WITH_AMOUNT = and_(LeadRow.won_at.is_not(None), LeadRow.amount.is_not(None))
_OPPORTUNITY = LeadRow.opportunity_at.is_not(None)
# An opportunity was qualified, whatever Slack recorded; a rejected lead was not accepted.
_SQL = or_(LeadRow.stage == Stage.SQL.value, _OPPORTUNITY)
_SAL = or_(and_(LeadRow.claimed_at.is_not(None), LeadRow.stage != Stage.REJECT.value), _SQL)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _history_query(since: datetime, until: datetime) -> Select[Any]:
    won_amount = func.sum(case((_WON_WITH_AMOUNT, LeadRow.amount), else_=0))
    return (
        select(
            LeadRow.segment,
            func.count().label("mqls"),
            _count(_SAL).label("sals"),
            _count(_SQL).label("sqls"),
            _count(_OPPORTUNITY).label("opportunities"),
            _count(LeadRow.won_at.is_not(None)).label("won"),
            _count(LeadRow.lost_at.is_not(None)).label("lost"),
            _count(_WON_WITH_AMOUNT).label("won_with_amount"),
            func.coalesce(won_amount, 0).label("won_amount"),
            func.min(LeadRow.received_at).label("first_mql_at"),
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
            rows = db.execute(query).mappings().all()
            firsts = [_aware(row["first_mql_at"]) for row in rows if row["first_mql_at"]]
            by_segment = {
                str(row["segment"]): Funnel(
                    mqls=int(row["mqls"]),
                    sals=int(row["sals"]),
                    sqls=int(row["sqls"]),
                    opportunities=int(row["opportunities"]),
                    won=int(row["won"]),
                    lost=int(row["lost"]),
                    won_with_amount=int(row["won_with_amount"]),
                    won_amount=float(row["won_amount"]),
                )
                for row in rows
            }
            return History(weeks, by_segment, until, min(firsts) if firsts else None)

        return await self.db.run(work)


def _aware(value: datetime) -> datetime:
    """SQLite gives the aggregate back naive (it is stored as UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)

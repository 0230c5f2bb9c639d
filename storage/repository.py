"""The lead store: every query Handoff runs, each in its own short transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.domain.lead import LeadView, Stage
from storage.db import sessions
from storage.tables import EventRow, LeadRow, RoundRobin, SlaVersion

_VIEW_FIELDS = [name for name in LeadView.__dataclass_fields__ if name != "stage"]


@dataclass(frozen=True)
class EventView:
    lead_id: int
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class NewLead:
    """A routed lead ready to store (the service decided everything in it)."""

    values: dict[str, Any]  # LeadRow columns
    pool: list[str]  # reps to rotate through for the suggested owner; empty: none


def _view(row: LeadRow) -> LeadView:
    values = {name: getattr(row, name) for name in _VIEW_FIELDS}
    return LeadView(stage=Stage(row.stage), **values)


class Store:
    """Repository over the lead tables. Methods are the only way services touch the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = sessions(engine)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    # --- SLA versions -------------------------------------------------------------------------

    async def save_policy(self, version: str, content: dict[str, Any], now: datetime) -> None:
        """Keep a snapshot of an SLA version (once; later calls change nothing)."""
        async with self._transaction() as session:
            if await session.get(SlaVersion, version) is None:
                session.add(SlaVersion(version=version, content=content, loaded_at=now))
        # A concurrent replica may have stored the same version first; that is the same content.

    async def policy_content(self, version: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(SlaVersion, version)
            return None if row is None else dict(row.content)

    # --- intake -------------------------------------------------------------------------------

    async def create_lead(
        self, new: NewLead, events: list[tuple[str, str, dict[str, Any]]], now: datetime
    ) -> tuple[LeadView, bool]:
        """Store a new lead with its events; (existing lead, False) if its external id is known."""
        try:
            async with self._transaction() as session:
                row = LeadRow(**new.values)
                session.add(row)
                await session.flush()
                if new.pool:
                    position = await self._rotate(session, row.segment)
                    row.suggested_owner = new.pool[position % len(new.pool)]
                for kind, actor, data in events:
                    session.add(EventRow(lead_id=row.id, type=kind, actor=actor, at=now, data=data))
                await session.flush()
                return _view(row), True
        except IntegrityError:
            existing = await self.by_external_id(new.values["external_id"])
            if existing is None:
                raise
            return existing, False

    async def _rotate(self, session: AsyncSession, segment: str) -> int:
        """Take the segment's next round-robin position (atomic under concurrent intake)."""
        dialect = session.get_bind().dialect.name
        insert_row = postgresql_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(
            insert_row(RoundRobin).values(segment=segment, position=0).on_conflict_do_nothing()
        )
        moved = await session.execute(
            update(RoundRobin)
            .where(RoundRobin.segment == segment)
            .values(position=RoundRobin.position + 1)
            .returning(RoundRobin.position)
        )
        return int(moved.scalar_one()) - 1

    # --- reads --------------------------------------------------------------------------------

    async def get(self, lead_id: int) -> LeadView | None:
        async with self._sessions() as session:
            row = await session.get(LeadRow, lead_id)
            return None if row is None else _view(row)

    async def by_external_id(self, external_id: str) -> LeadView | None:
        async with self._sessions() as session:
            row = await session.scalar(select(LeadRow).where(LeadRow.external_id == external_id))
            return None if row is None else _view(row)

    async def find(self, query: str) -> LeadView | None:
        """The lead with this external id, else the newest lead with this email."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(LeadRow)
                .where(or_(LeadRow.external_id == query, LeadRow.email == query.lower()))
                .order_by((LeadRow.external_id == query).desc(), LeadRow.id.desc())
                .limit(1)
            )
            return None if row is None else _view(row)

    async def events(self, lead_id: int) -> list[EventView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(EventRow)
                .where(EventRow.lead_id == lead_id)
                .order_by(EventRow.at, EventRow.id)
            )
            return [EventView(r.lead_id, r.type, r.actor, r.at, dict(r.data)) for r in rows]

    async def open_leads_for(self, owner: str, limit: int = 20) -> list[LeadView]:
        """The open leads a rep owns, oldest claim first (their App Home queue)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(LeadRow)
                .where(LeadRow.owner == owner, LeadRow.stage == Stage.SAL.value)
                .order_by(LeadRow.claimed_at, LeadRow.id)
                .limit(limit)
            )
            return [_view(row) for row in rows]

    async def count_leads(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(LeadRow)) or 0)

    # --- state changes: conditional updates, so a race has exactly one winner ------------------

    async def mark_posted(self, lead_id: int, channel: str, ts: str, now: datetime) -> bool:
        async with self._transaction() as session:
            done = await session.execute(
                update(LeadRow)
                .where(LeadRow.id == lead_id, LeadRow.posted_at.is_(None))
                .values(posted_at=now, message_channel=channel, message_ts=ts)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False
            session.add(
                EventRow(
                    lead_id=lead_id,
                    type="posted",
                    actor="handoff",
                    at=now,
                    data={"channel": channel, "ts": ts},
                )
            )
            return True

    async def claim(
        self,
        lead_id: int,
        owner: str,
        disposition_due_at: datetime | None,
        now: datetime,
        *,
        sla_version: str | None = None,
        segments: list[str] | None = None,
    ) -> bool:
        """Make `owner` the owner if nobody is; True for the one caller that won.

        `sla_version` and `segments` narrow the update to leads the caller may claim, so the
        common case is one statement with no read before it (the ack path is latency-bound).
        """
        conditions = [LeadRow.id == lead_id, LeadRow.owner.is_(None), LeadRow.stage == "mql"]
        if sla_version is not None:
            conditions.append(LeadRow.sla_version == sla_version)
        if segments is not None:
            conditions.append(LeadRow.segment.in_(segments))
        async with self.engine.begin() as connection:
            won = await connection.execute(
                update(LeadRow)
                .where(*conditions)
                .values(
                    owner=owner,
                    claimed_at=func.coalesce(LeadRow.claimed_at, now),
                    stage=Stage.SAL.value,
                    disposition_due_at=disposition_due_at,
                )
                .returning(LeadRow.id)
            )
            if won.first() is None:
                return False
            event = {"lead_id": lead_id, "type": "claimed", "actor": owner, "at": now, "data": {}}
            await connection.execute(insert(EventRow).values(**event))
            return True

    async def log_attempt(self, lead_id: int, actor: str, kind: str, now: datetime) -> int | None:
        """Count one contact attempt on an open, owned lead; the new count, or None if closed."""
        async with self._transaction() as session:
            done = await session.execute(
                update(LeadRow)
                .where(LeadRow.id == lead_id, LeadRow.stage == Stage.SAL.value)
                .values(
                    attempts=LeadRow.attempts + 1,
                    first_touch_at=func.coalesce(LeadRow.first_touch_at, now),
                )
                .returning(LeadRow.attempts)
            )
            count = done.scalar_one_or_none()
            if count is None:
                return None
            data = {"kind": kind, "number": int(count)}
            session.add(EventRow(lead_id=lead_id, type="attempt", actor=actor, at=now, data=data))
            if count == 1:
                session.add(
                    EventRow(lead_id=lead_id, type="first_touch", actor=actor, at=now, data={})
                )
            return int(count)

    async def dispose(
        self,
        lead_id: int,
        actor: str,
        *,
        code: str,
        stage: Stage,
        reason: str | None,
        note: str | None,
        now: datetime,
    ) -> bool:
        """Close an open lead with a disposition; True for the one caller that closed it."""
        async with self._transaction() as session:
            done = await session.execute(
                update(LeadRow)
                .where(
                    LeadRow.id == lead_id,
                    LeadRow.stage == Stage.SAL.value,
                    LeadRow.dispositioned_at.is_(None),
                )
                .values(
                    stage=stage.value,
                    disposition_code=code,
                    disposition_reason=reason,
                    disposition_note=note,
                    dispositioned_at=now,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False
            data = {"code": code, "stage": stage.value, "reason": reason, "note": note}
            session.add(
                EventRow(lead_id=lead_id, type="dispositioned", actor=actor, at=now, data=data)
            )
            return True

    async def add_event(
        self, lead_id: int, kind: str, actor: str, now: datetime, data: dict[str, Any]
    ) -> None:
        async with self._transaction() as session:
            session.add(EventRow(lead_id=lead_id, type=kind, actor=actor, at=now, data=data))

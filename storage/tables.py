"""The schema: leads, their append-only event log, round-robin positions and SLA versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no 64-bit autoincrement through BigInteger; PostgreSQL gets a bigint.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass a timezone-aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class SlaVersion(Base):
    """A snapshot of the SLA file: each lead keeps the version it arrived under."""

    __tablename__ = "sla_versions"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    content: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime]


class LeadRow(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(500))
    title: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(100))
    company: Mapped[dict[str, Any]]
    source: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(500))
    engagement: Mapped[list[Any]]
    payload: Mapped[dict[str, Any]]
    score: Mapped[int] = mapped_column(Integer)
    score_reasons: Mapped[list[Any]]
    stage: Mapped[str] = mapped_column(String(16), index=True)
    stage_reason: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(40))
    sla_version: Mapped[str] = mapped_column(ForeignKey("sla_versions.version"))
    suggested_owner: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    disposition_code: Mapped[str | None] = mapped_column(String(64))
    disposition_reason: Mapped[str | None] = mapped_column(String(200))
    disposition_note: Mapped[str | None] = mapped_column(Text)
    message_channel: Mapped[str | None] = mapped_column(String(40))
    message_ts: Mapped[str | None] = mapped_column(String(40))
    # Stage timestamps: each is set once, by a conditional update, and never overwritten.
    received_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    first_touch_at: Mapped[datetime | None]
    dispositioned_at: Mapped[datetime | None]
    first_touch_due_at: Mapped[datetime | None]
    disposition_due_at: Mapped[datetime | None]


class EventRow(Base):
    """The audit trail: one row per state change, never updated or deleted."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_lead_at", "lead_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class RoundRobin(Base):
    """Where each segment's rotation stands, so the next suggested owner survives restarts."""

    __tablename__ = "round_robin"

    segment: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

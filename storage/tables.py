"""The schema: leads, their append-only event log, round-robin positions, SLA versions and
the Slack outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.lead import Pause

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

    def bind_processor(self, dialect: Dialect) -> Any:
        """SQLite: the text SQLAlchemy's DATETIME stores (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), made
        in one call instead of this type's step and then DATETIME's: a lead binds ten times,
        a burst's intake 100,000 (issue 15). tests/integration/test_storage.py holds it to
        the two steps' text."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return sqlite_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Pauses(TypeDecorator[tuple[Pause, ...]]):
    """A lead's answered questions, (asked, answered) pairs of UTC times, as a JSON list of
    ISO pairs: exact for any clock and calendar a window is read on. None is NULL, as on
    every lead stored before them."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def process_bind_param(
        self, value: tuple[Pause, ...] | None, dialect: Dialect
    ) -> list[list[str]] | None:
        if not value:
            return None
        return [[at.astimezone(UTC).isoformat() for at in pause] for pause in value]

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Pause, ...]:
        return tuple(
            (datetime.fromisoformat(asked), datetime.fromisoformat(answered))
            for asked, answered in value or ()
        )


def sqlite_text(value: datetime | None) -> str | None:
    """An aware time as SQLite stores it: UTC, as `YYYY-MM-DD HH:MM:SS.ffffff` (what SQLAlchemy's
    SQLite DATETIME writes; text that sorts as the times do)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # most times are made in UTC: drop the "+00:00", no conversion
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored: pass a timezone-aware UTC time")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class SlaVersion(Base):
    """A snapshot of the SLA file: each lead keeps the version it arrived under."""

    __tablename__ = "sla_versions"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    content: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime]


# App Home reads open leads only, through partial indexes that hold just them. A query repeats
# an index's predicate word for word (storage/home.py): that is what lets SQLite and PostgreSQL
# use it. The outbox's waiting home requests are found by person the same way.
OPEN_MQL = "stage = 'mql'"
OPEN_SAL = "stage = 'sal'"
OPEN = "stage IN ('mql', 'sal')"
UNTOUCHED = "first_touch_at IS NULL"
HOME_PENDING = "kind = 'home' AND state = 'pending'"
RECYCLED = "cycle > 1"  # a lead in its second cycle or later (back from recycling)
# The events that take a lead from the rep who had it: a reassignment, an offer while away,
# and a claim of a lead held for someone else (or for nobody): only such a claim has a `from`
# (JSON null for nobody; a key test, which each dialect writes its own way).
_TAKEN_BY_CLAIM = {
    "postgresql": "(data -> 'from') IS NOT NULL",
    "sqlite": "json_type(data, '$.from') IS NOT NULL",
}
HANDOVERS = {
    dialect: f"type IN ('reassigned', 'offered') OR (type = 'claimed' AND {given})"
    for dialect, given in _TAKEN_BY_CLAIM.items()
}


def _partial_index(name: str, column: str, predicate: str) -> Index:
    where = text(predicate)
    return Index(name, column, sqlite_where=where, postgresql_where=where)


class LeadRow(Base):
    __tablename__ = "leads"
    __table_args__ = (
        _partial_index("ix_leads_owner_open", "owner", OPEN_SAL),
        _partial_index("ix_leads_suggested_open", "suggested_owner", OPEN_MQL),
        _partial_index("ix_leads_claim_due_open", "claim_due_at", OPEN_MQL),
        _partial_index("ix_leads_touch_due_open", "first_touch_due_at", f"{OPEN} AND {UNTOUCHED}"),
        _partial_index("ix_leads_feedback_due_open", "disposition_due_at", OPEN_SAL),
        _partial_index("ix_leads_final_due_open", "final_due_at", OPEN_SAL),
        _partial_index("ix_leads_cycle_started_recycled", "cycle_started_at", RECYCLED),
    )

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
    # Handoff's own score when the lead keeps the one its sender gave (`score`); else `score`.
    handoff_score: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16), index=True)
    stage_reason: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(40))
    sla_version: Mapped[str] = mapped_column(ForeignKey("sla_versions.version"))
    suggested_owner: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(40))
    owner_zone: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    disposition_code: Mapped[str | None] = mapped_column(String(64))
    disposition_reason: Mapped[str | None] = mapped_column(String(200))
    disposition_note: Mapped[str | None] = mapped_column(Text)
    message_channel: Mapped[str | None] = mapped_column(String(40))
    message_ts: Mapped[str | None] = mapped_column(String(40))
    # Report facts fixed at arrival: qualified as an MQL, all required fields, fits the ICP.
    mql: Mapped[bool | None]
    complete: Mapped[bool | None]
    icp: Mapped[bool | None]
    # Stage timestamps: each is set once, by a conditional update, and never overwritten.
    received_at: Mapped[datetime] = mapped_column(index=True)  # a period's leads: a range
    posted_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    first_touch_at: Mapped[datetime | None]
    dispositioned_at: Mapped[datetime | None] = mapped_column(index=True)  # feedback of a week
    first_touch_due_at: Mapped[datetime | None]
    disposition_due_at: Mapped[datetime | None]  # the first feedback's deadline
    # The first feedback (any disposition, "progressing" too; set once) and the final
    # disposition's deadline (by default the follow-up cadence's end).
    feedback_at: Mapped[datetime | None]
    final_due_at: Mapped[datetime | None]
    # Escalation: the cycle, its start and claim deadline; when the sweep looks next.
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    cycle_started_at: Mapped[datetime | None]
    claim_due_at: Mapped[datetime | None]
    # `claim: assigned`: the suggested owner has the lead alone until then (NULL: open to the
    # pool from the post). The claim's conditional update reads it (bot/domain/claim.py).
    claim_opens_at: Mapped[datetime | None]
    next_action_at: Mapped[datetime | None] = mapped_column(index=True)
    snoozed_until: Mapped[datetime | None]
    # "Request more info": the question marketing has (NULL: none waits); its clocks pause.
    info_question: Mapped[str | None] = mapped_column(Text)
    info_asked_at: Mapped[datetime | None]
    info_asked_by: Mapped[str | None] = mapped_column(String(40))
    # The cycle's answered questions (asked, answered), oldest first: the steps of a deadline
    # already passed at a question wait its pause out. NULL: none.
    info_pauses: Mapped[tuple[Pause, ...]] = mapped_column(Pauses, nullable=True)
    # The follow-up cadence: the next touch due (None once the standard is met), the attempts
    # that count towards it, and when it was met (coverage reads it).
    next_touch_due_at: Mapped[datetime | None]
    touches_counted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    follow_up_met_at: Mapped[datetime | None]
    # The deal, as the CRM reports it (POST /leads/{id}/activity): stage times set once.
    opportunity_at: Mapped[datetime | None]
    won_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    amount: Mapped[float | None] = mapped_column(Numeric(14, 2, asdecimal=False))
    # The owner's rating after a disposition, 1–5 each (the "rated" events keep the history).
    fit_rating: Mapped[int | None] = mapped_column(SmallInteger)
    timing_rating: Mapped[int | None] = mapped_column(SmallInteger)
    erased_at: Mapped[datetime | None]  # `handoff forget`: its personal data is gone
    # Routing: why the suggested owner was chosen (rule and figures, rendered on the post), and
    # the company's normalised domain, which lead-to-account matching looks up.
    route_reason: Mapped[dict[str, Any] | None]
    account_domain: Mapped[str | None] = mapped_column(String(255), index=True)
    # The lead's CRM record (HubSpot contact id, Salesforce Lead id): from intake's `crm_id`,
    # or found by email on the first CRM write.
    crm_id: Mapped[str | None] = mapped_column(String(64), index=True)


class EventRow(Base):
    """The audit trail: one row per state change, never updated or deleted (an erasure only
    empties the personal data in `data`)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_lead_at", "lead_id", "at"),
        # Who had a lead when each of its deadlines ran (storage/reports.py): the handovers
        # since a period began, a small share of the events (migrations 0029, 0032).
        Index(
            "ix_events_handovers",
            "at",
            "lead_id",
            sqlite_where=text(HANDOVERS["sqlite"]),
            postgresql_where=text(HANDOVERS["postgresql"]),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class LeadCycleRow(Base):
    """A cycle a lead has ended (recycled or nurtured, then back as a new cycle): its report
    facts as they stood when the next cycle began, never updated. The lead's row holds its
    current cycle; a week's report reads each cycle in the week it began (`started_at`), so a
    lead coming back never rewrites a past week (storage/reports.py). No personal data: the
    same anonymous facts an erased lead keeps."""

    __tablename__ = "lead_cycles"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    cycle: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Where the report counts it: the first cycle at the lead's arrival (`received_at`), a
    # later one when it began; and whether it began by coming back from recycling or nurture
    # (storage/cycles.py `came_back`; the reports work it out again rather than read it: it
    # said only whether the sweep had brought the lead back when older cycles were kept).
    started_at: Mapped[datetime] = mapped_column(index=True)
    recycled: Mapped[bool]
    segment: Mapped[str] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(500))
    owner: Mapped[str | None] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(16))
    mql: Mapped[bool | None]
    complete: Mapped[bool | None]
    icp: Mapped[bool | None]
    attempts: Mapped[int] = mapped_column(Integer)
    touches_counted: Mapped[int] = mapped_column(Integer)
    disposition_code: Mapped[str | None] = mapped_column(String(64))
    disposition_reason: Mapped[str | None] = mapped_column(String(200))
    posted_at: Mapped[datetime | None]
    claim_due_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    first_touch_due_at: Mapped[datetime | None]
    first_touch_at: Mapped[datetime | None]
    follow_up_met_at: Mapped[datetime | None]
    disposition_due_at: Mapped[datetime | None]
    feedback_at: Mapped[datetime | None]
    final_due_at: Mapped[datetime | None]
    dispositioned_at: Mapped[datetime | None]
    opportunity_at: Mapped[datetime | None]
    won_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    amount: Mapped[float | None] = mapped_column(Numeric(14, 2, asdecimal=False))
    fit_rating: Mapped[int | None] = mapped_column(SmallInteger)
    timing_rating: Mapped[int | None] = mapped_column(SmallInteger)


FIRED = "status = 'fired'"  # literal, so the partial index below serves queries that say it


class EscalationRow(Base):
    """A ladder step of one lead's cycle, fired or skipped: once, under the unique key."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("lead_id", "cycle", "ladder", "step"),
        # A period's fired steps (the report) by a range; skipped steps never enter it, so a
        # sweep after downtime, which records many, pays for none of them here.
        Index(
            "ix_escalations_fired_at",
            "at",
            postgresql_where=text(FIRED),
            sqlite_where=text(FIRED),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    cycle: Mapped[int] = mapped_column(Integer)
    ladder: Mapped[str] = mapped_column(String(20))
    step: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # fired, skipped
    at: Mapped[datetime]


class Person(Base):
    """A workspace member as Slack's users.info describes them: the name people know them by
    (shown where a mention would ping), and their time zone (for `clock: owner`)."""

    __tablename__ = "people"
    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    guest: Mapped[bool | None]  # a Slack guest (is_restricted, is_ultra_restricted)
    deactivated: Mapped[bool | None]  # deleted in Slack


class TimeAway(Base):
    """A rep who is away: new leads skip them, escalations go past them to the pool and the
    managers. One row per rep: set by hand (`/handoff away`, `set_by` the person who set it)
    or read from their Slack status (`set_by` = `slack:status`); `until` None is "until they
    are back" (a Slack status with no expiration). A row whose `until` has passed is ignored."""

    __tablename__ = "time_away"
    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(200))
    set_by: Mapped[str] = mapped_column(String(40))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportRun(Base):
    """A weekly digest or compliance alert sent for a period: once, under the primary key."""

    __tablename__ = "report_runs"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime]


class HomeOpener(Base):
    """A member who has opened Handoff's App Home: only their homes are re-published."""

    __tablename__ = "home_openers"
    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_opened_at: Mapped[datetime]
    last_opened_at: Mapped[datetime]


class HandledEvent(Base):
    """An Events API event Handoff has taken on, by Slack's `event_id`: a retry of it (HTTP's
    `X-Slack-Retry-Num`, Socket Mode's `retry_attempt`) is acknowledged and not run again."""

    __tablename__ = "handled_events"
    __table_args__ = (Index("ix_handled_events_at", "handled_at"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime]


class RoundRobin(Base):
    """Where each segment's rotation stands, so the next suggested owner survives restarts."""

    __tablename__ = "round_robin"

    segment: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Moves on with every change to the segment's rotation (a turn, a lead leaving a rep's
    # counts, a reassignment): the write that takes the row's lock, which every writer of the
    # segment's rep rows holds. Nothing reads it (a count of changes, for a person looking).
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The weighted rotation's clock (bot/domain/rotation.py): the shares handed out so far.
    clock: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class RotationRep(Base):
    """One rep's place in a segment's weighted rotation (bot/domain/rotation.py `RepLoad`): what
    they are owed, and the leads suggested this business day and this week (each with its
    period, so a new day starts from 0). Changed only under the lock of the segment's
    `round_robin` row."""

    __tablename__ = "rotation_reps"

    segment: Mapped[str] = mapped_column(String(100), primary_key=True)
    rep: Mapped[str] = mapped_column(String(40), primary_key=True)
    settled: Mapped[float] = mapped_column(Float, default=0.0)  # see RepLoad
    since: Mapped[float | None] = mapped_column(Float)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    day: Mapped[str] = mapped_column(String(10))  # the business day (team zone), ISO date
    today: Mapped[int] = mapped_column(Integer, default=0)
    week: Mapped[str] = mapped_column(String(10))  # the week's Monday, ISO date
    this_week: Mapped[int] = mapped_column(Integer, default=0)


class OutboxRow(Base):
    """A Slack side effect, written in the transaction of the change that causes it.

    A worker delivers it after the commit (see bot/slack/outbox.py). `unknown` is set while a
    request is in flight: if the process dies then, nobody knows whether Slack accepted it,
    so the next delivery looks in the channel's history before posting again.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "not_before", "id"),
        Index("ix_outbox_lead", "lead_id", "kind", "state"),
        _partial_index("ix_outbox_home_pending", "channel", HOME_PENDING),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))  # post_lead, update_lead, feedback, message
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    channel: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)  # one effect, once
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending, done, failed
    created_at: Mapped[datetime]  # the change's time (the injected clock)
    # Delivery bookkeeping, in wall-clock time (Slack's timestamps are wall-clock too):
    not_before: Mapped[datetime | None]  # None: at once
    lease_until: Mapped[datetime | None]  # the last request is surely over by then
    first_try_at: Mapped[datetime | None]
    tried_until: Mapped[datetime | None]  # lease_until of the previous attempt
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[bool] = mapped_column(Boolean, default=False)  # may have reached Slack
    unknown_before: Mapped[bool] = mapped_column(Boolean, default=False)  # before this lease
    done_at: Mapped[datetime | None]
    result_ts: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)


class RefusalGroup(Base):
    """Deliveries Slack refused for good to one channel with one error, told to the managers
    in ONE alert (outbox key `refused:<id>`) re-rendered in place as the count grows. It is
    open (`open_key` = "<channel>:<error>", unique: one open group per channel and error,
    whichever replica takes the refusal) until a message gets through to the channel again,
    the channel is unarchived, or a day has passed since it opened; a refusal then opens a
    new one, and a new alert."""

    __tablename__ = "refusal_groups"
    __table_args__ = (Index("ix_refusal_groups_channel", "channel", "error"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(40))  # as the refused rows had it
    error: Mapped[str] = mapped_column(String(100))  # what Slack said
    open_key: Mapped[str | None] = mapped_column(String(160), unique=True)  # None: closed
    alert_channel: Mapped[str] = mapped_column(String(40))  # the escalations channel
    opened_at: Mapped[datetime]
    refused: Mapped[int] = mapped_column(Integer, default=0)
    last_kind: Mapped[str | None] = mapped_column(String(24))  # the latest refused row's
    last_lead_id: Mapped[int | None] = mapped_column(Integer)
    # The report it was part of (bot/domain/effects.py `ReportPart`): what, and its period.
    last_report: Mapped[str | None] = mapped_column(String(24))
    last_period: Mapped[str | None] = mapped_column(String(40))
    mended_at: Mapped[datetime | None]  # the channel took messages again
    reposted: Mapped[int] = mapped_column(Integer, default=0)  # leads posted again since
    # sla.yaml moved the segments of leads refused there: they were posted in the segments'
    # channels now (the refused posts record where: `storage/outbox.py` MOVED_IN).
    moved_at: Mapped[datetime | None]
    recount_waiting: Mapped[bool] = mapped_column(Boolean, default=False)  # a re-render waits


class CrmOutboxRow(Base):
    """A CRM write (bot/domain/crm.py), written in the transaction of the change that causes
    it and delivered by the CRM worker (bot/crm/worker.py), in order per lead. A `crm_sync`
    row carries nothing: the record's state is rendered from the lead when it is sent."""

    __tablename__ = "crm_outbox"
    __table_args__ = (
        Index("ix_crm_outbox_due", "state", "not_before", "id"),
        Index("ix_crm_outbox_lead", "lead_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))  # crm_sync, crm_note, crm_event
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)  # our idempotency key
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending, done, failed
    created_at: Mapped[datetime]  # the change's time (the injected clock)
    not_before: Mapped[datetime | None]  # wall clock; None: at once
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[bool] = mapped_column(Boolean, default=False)  # may have reached the CRM
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class CrmInboxRow(Base):
    """A CRM notification handled: each of the CRM's event ids once (they retry)."""

    __tablename__ = "crm_inbox"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)  # hubspot, salesforce
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)  # retention: a range delete
    # The CRM record the notification is about (an erasure drops the rows of the person's).
    crm_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # When its change was applied; NULL while it is being applied (taken at `received_at`).
    done_at: Mapped[datetime | None] = mapped_column()
    # When it first arrived, kept when a retry takes it again (`received_at` is that retry's):
    # the time of a change the CRM gives none. NULL: a row from before 0037 (or of a replica
    # from before it), which first arrived at its `received_at` unless such a replica took it
    # again.
    first_received_at: Mapped[datetime | None] = mapped_column()


class CrmMergeRow(Base):
    """A CRM record merged away, and the record it lives on in (ids only): merges may be told
    out of order, so a merge into a record already merged away follows it to the end."""

    __tablename__ = "crm_merges"

    merged_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(64), index=True)
    merged_at: Mapped[datetime]


class ErasureKeyRow(Base):
    """Each erasure key that has made digests (its key id, never the key): what a start with
    another key, or none, is checked against (bot/app.py `keyed_store`), without reading the
    leads. Written in the erasure's own transaction; the first erasure of a key writes it."""

    __tablename__ = "erasure_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # When its first digest was made (NULL: a digest the migration found without one).
    first_erased_at: Mapped[datetime | None]


def table(model: type[Base]) -> Table:
    """A model's Core table: statements on it skip the ORM's per-execution bookkeeping (the
    hot paths run thousands a second)."""
    return cast(Table, model.__table__)

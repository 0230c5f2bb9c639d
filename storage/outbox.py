"""The Slack outbox: side effects written with the change that causes them, delivered later.

`write_effects` writes the effects a use case decided (`bot/domain/effects.py`) inside the
caller's transaction (the stores' units of work), so a lead and the row that will post it are
committed together or not at all. `OutboxStore` is what the delivery worker uses: find due
rows, lease one, record its outcome.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from bot.domain.effects import (
    ALERT_KEYS,
    LATE_REPORTS,
    MONTHLY_DIGEST,
    REJECTION_REVIEW,
    WEEKLY_DIGEST,
    Effect,
    Moved,
    Refresh,
    RefreshHomes,
    Render,
    ReportPart,
    Resent,
    RetirePost,
    Send,
    Settle,
    Upload,
)
from storage.crm import insert_events
from storage.db import Database, insert_many, upsert_insert
from storage.queue import (
    DONE,
    FAILED,
    PENDING,
    all_rows,
    backlog,
    is_due,
    prune,
    release_leases,
)
from storage.tables import HOME_PENDING, HomeOpener, LeadRow, OutboxRow, RefusalGroup, table

OUTBOX = OutboxRow.__table__


class Kind:
    POST_LEAD = "post_lead"  # the lead's message in its segment channel
    UPDATE_LEAD = "update_lead"  # re-render that message from the lead's current state
    FEEDBACK = "feedback"  # a disposition told to marketing
    NURTURE_NOTICE = "nurture_notice"  # a lead that did not qualify, told to marketing
    MESSAGE = "message"  # a ready-made message (alerts): payload {"text", "blocks"?}
    # A file (report charts) for a channel id, or a user id for that person's DM: payload
    # {"filename", "title", "alt_text"?, "initial_comment"?, "content_b64"}
    UPLOAD = "upload"
    # A person's App Home (channel: their user id), rendered when it is sent: payload
    # {"notice"?: the answer to their last press in it}
    HOME = "home"
    # A message Handoff sent about a lead, emptied in place after an erasure (`handoff forget`):
    # payload {"ts"}; channel as the message's row had it (a user id: their DM).
    REDACT = "redact"
    # A managers' escalation alert replaced in place by what was done about it (chat.update):
    # payload {"of": the alert's row id, "text"}; channel as the alert's row has it.
    SETTLE = "settle_alert"
    # The managers' alert about deliveries Slack refused (a `RefusalGroup`) re-rendered in place
    # from its group as it is then (chat.update): payload {"group"}; channel: the alert's.
    RECOUNT = "recount_alert"
    # The post of a lead's ended cycle replaced in place once the lead came back (chat.update):
    # payload {"ts", "text", "blocks"}, rendered when the new cycle began; channel: the post's.
    RETIRE = "retire_post"


KINDS = tuple(v for k, v in vars(Kind).items() if k.isupper() and isinstance(v, str))


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    lead_id: int | None
    channel: str
    payload: dict[str, Any]
    attempts: int
    unknown: bool  # an earlier request may have reached Slack
    first_try_at: datetime | None  # wall clock
    tried_until: datetime | None  # every earlier request was over by then (wall clock)
    created_at: datetime  # the change's time (the injected clock)
    key: str | None  # once per effect (`enqueue`); None: a row without one


def outbox_row(
    kind: str,
    channel: str,
    now: datetime,
    *,
    lead_id: int | None = None,
    key: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of a new side effect (for `enqueue`, or many at once with executemany)."""
    return {
        "kind": kind,
        "lead_id": lead_id,
        "channel": channel,
        "key": key,
        "payload": payload or {},
        "state": PENDING,
        "created_at": now,
        "not_before": None,
        "attempts": 0,
        "unknown": False,
        "unknown_before": False,
    }


def enqueue(
    db: Connection,
    kind: str,
    channel: str,
    now: datetime,
    *,
    lead_id: int | None = None,
    key: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Add a side effect; a second one with the same `key` is ignored (once per effect)."""
    row = outbox_row(kind, channel, now, lead_id=lead_id, key=key, payload=payload)
    db.execute(upsert_insert(db)(table(OutboxRow)).values(**row).on_conflict_do_nothing())


MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # files ride in the outbox row: charts, not archives


def enqueue_upload(
    db: Connection,
    channel: str,
    now: datetime,
    *,
    filename: str,
    title: str,
    content: bytes,
    initial_comment: str | None = None,
    alt_text: str | None = None,
    key: str | None = None,
) -> None:
    """Add a file upload to `channel` (a channel id, or a user id: their DM with the app); a
    second one with the same `key` is ignored. Raises ValueError for an empty or oversized
    file, or one without a name."""
    write_effects(
        db,
        [Upload(channel, filename, title, content, key, initial_comment, alt_text)],
        now,
    )


_WAITING_UPDATE = exists().where(
    OutboxRow.lead_id == LeadRow.id,
    OutboxRow.kind == Kind.UPDATE_LEAD,
    OutboxRow.state == PENDING,
    OutboxRow.unknown.is_(False),  # not in flight: it will render the state as it is then
)
_UPDATE_COLUMNS = [
    "kind",
    "lead_id",
    "channel",
    "payload",
    "state",
    "created_at",
    "attempts",
    "unknown",
    "unknown_before",
]


def _requests(kind: str, lead_id: Any, channel: Any, *where: Any) -> Any:
    """INSERT … SELECT of a pending `kind` request for each row the SELECT finds: the
    re-render requests (a lead's message, a person's App Home), which collapse while one
    waits."""
    return insert(table(OutboxRow)).from_select(
        _UPDATE_COLUMNS,
        select(
            bindparam("p_kind", kind),
            lead_id,
            channel,
            bindparam("p_payload", {}, type_=OUTBOX.c.payload.type),
            bindparam("p_state", PENDING),
            bindparam("p_now", type_=OUTBOX.c.created_at.type),
            bindparam("p_zero", 0),
            bindparam("p_false", False),
            bindparam("p_false2", False),
        ).where(*where),
    )


def _updates_of(lead_id: Any, which: Any) -> Any:
    """An update request for each lead `which` selects with none waiting."""
    return _requests(Kind.UPDATE_LEAD, lead_id, LeadRow.channel, which, ~_WAITING_UPDATE)


# A lead's message re-rendered, unless a request not yet started is waiting already: that one
# will render the latest state (repeated updates collapse).
_ENQUEUE_UPDATE = _updates_of(bindparam("p_lead_id"), LeadRow.id == bindparam("p_lead_id"))


_HOME_WAITING = exists().where(
    OutboxRow.channel == HomeOpener.user_id,
    text(HOME_PENDING),
    OutboxRow.unknown.is_(False),  # not in flight: it will render the state as it is then
)
_HOME_LEADS: Any = bindparam("p_lead_ids", expanding=True)


def home_requests(who: Any) -> Any:
    """A home request for each opener `who` selects with none waiting."""
    return _requests(Kind.HOME, null(), HomeOpener.user_id, who, ~_HOME_WAITING)


_ENQUEUE_HOMES = home_requests(
    or_(
        HomeOpener.user_id.in_(bindparam("p_users", expanding=True)),
        HomeOpener.user_id.in_(select(LeadRow.owner).where(LeadRow.id.in_(_HOME_LEADS))),
        HomeOpener.user_id.in_(select(LeadRow.suggested_owner).where(LeadRow.id.in_(_HOME_LEADS))),
    )
)
_ONE_LEAD = LeadRow.id == bindparam("p_lead_id")
_ENQUEUE_LEAD_HOMES = home_requests(
    or_(
        HomeOpener.user_id == select(LeadRow.owner).where(_ONE_LEAD).scalar_subquery(),
        HomeOpener.user_id == select(LeadRow.suggested_owner).where(_ONE_LEAD).scalar_subquery(),
    )
)


def _enqueue_homes(db: Connection, now: datetime, users: set[str], leads: set[int]) -> None:
    """Ask for the App Homes of `users` and of the owners and suggested owners of `leads` (as
    they are in this transaction) to be re-published: only of people who have opened App
    Home, and not while a request not yet started waits for theirs (it will render the latest
    state, as for lead messages)."""
    if users:
        params = {"p_users": sorted(users), "p_lead_ids": sorted(leads), "p_now": now}
        db.execute(_ENQUEUE_HOMES, params)
    elif leads:  # a claim or an attempt: a statement prepared once, no list to expand into
        # its SQL on every press (a burst's claims: executed for each lead at once)
        rows = [{"p_lead_id": lead, "p_now": now} for lead in sorted(leads)]
        insert_many(db, _ENQUEUE_LEAD_HOMES, rows)


def write_effects(db: Connection, effects: Sequence[Effect], now: datetime) -> None:
    """Write the effects a use case decided, in its transaction: one statement per kind of
    effect, whatever their number. Storage only writes them; what a change causes in Slack
    is the use case's decision."""
    rows: list[dict[str, Any]] = []
    refreshed: list[int] = []
    users: set[str] = set()
    leads: set[int] = set()
    settles: list[Settle] = []
    for effect in effects:
        match effect:
            case Render():
                payload = {} if effect.cycle is None else {"cycle": effect.cycle}
                rows.append(
                    outbox_row(
                        str(effect.what),
                        effect.channel,
                        now,
                        lead_id=effect.lead_id,
                        key=effect.key,
                        payload=payload,
                    )
                )
            case Send():
                rows.append(
                    outbox_row(
                        Kind.MESSAGE,
                        effect.channel,
                        now,
                        lead_id=effect.lead_id,
                        key=effect.key,
                        payload=_message_payload(effect),
                    )
                )
            case Upload():
                rows.append(_upload_row(effect, now))
            case Refresh():
                refreshed.append(effect.lead_id)
            case RefreshHomes():
                users.update(user for user in effect.users if user)
                leads.update(effect.leads)
            case Settle():
                settles.append(effect)
            case RetirePost():
                shown = {"ts": effect.ts, "text": effect.text, "blocks": list(effect.blocks)}
                rows.append(
                    outbox_row(
                        Kind.RETIRE,
                        effect.channel,
                        now,
                        lead_id=effect.lead_id,
                        key=effect.key,
                        payload=shown,
                    )
                )
    if settles:
        rows += _settle_rows(db, settles, now)
    if rows:
        insert_many(db, _insert_effects(db.dialect.name), rows)
    if refreshed:
        insert_many(db, _ENQUEUE_UPDATE, [{"p_lead_id": lead, "p_now": now} for lead in refreshed])
    _enqueue_homes(db, now, users, leads)


@cache
def _insert_keyed(dialect: str) -> Any:
    """New outbox rows; the keys of those written (one whose key is taken is left out)."""
    return _insert_effects(dialect).returning(OutboxRow.key)


@cache
def _insert_effects(dialect: str) -> Any:
    """New outbox rows; one whose key is taken already is left out (the effect was written)."""
    insert_row = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert_row(table(OutboxRow)).on_conflict_do_nothing()


_OTHERS = select(OutboxRow.id, OutboxRow.channel).where(
    OutboxRow.lead_id == bindparam("p_lead_id"),
    OutboxRow.kind == Kind.MESSAGE,
    OutboxRow.state != FAILED,
    OutboxRow.key.like(bindparam("p_keys")),
)
_SETTLED = aliased(OutboxRow)
# The escalation alerts of some leads (any cycle) that no settle row replaces yet: sent or
# still on the way. A settle row's key ends with `:<the alert's row id>` (`_settle_row`).
_OPEN_ALERTS = select(OutboxRow.id, OutboxRow.channel, OutboxRow.lead_id, OutboxRow.key).where(
    OutboxRow.lead_id.in_(bindparam("p_lead_ids", expanding=True)),
    OutboxRow.kind == Kind.MESSAGE,
    OutboxRow.state != FAILED,
    OutboxRow.key.like(ALERT_KEYS),
    ~exists().where(
        _SETTLED.lead_id == OutboxRow.lead_id,
        _SETTLED.kind == Kind.SETTLE,
        _SETTLED.key.like(literal("%:") + cast(OutboxRow.id, String)),
    ),
)


_ALERT_SENT_AS = select(OutboxRow.id).where(
    OutboxRow.lead_id == bindparam("p_lead_id"),
    OutboxRow.kind == Kind.MESSAGE,
    OutboxRow.key.like(ALERT_KEYS),
    OutboxRow.result_ts == bindparam("p_ts"),
)
_SETTLED_AS = (
    select(OutboxRow.payload)
    .where(
        OutboxRow.lead_id == bindparam("p_lead_id"),
        OutboxRow.kind == Kind.SETTLE,
        OutboxRow.key.like(bindparam("p_of")),
    )
    .order_by(OutboxRow.id)
    .limit(1)
)


def settled_alert(db: Connection, lead_id: int, ts: str) -> str | None:
    """The words that replaced (or are on their way to replace) the managers' escalation alert
    about `lead_id` that Slack holds as message `ts`; None while it is live, or when `ts` is
    no alert about the lead."""
    for alert_id in db.execute(_ALERT_SENT_AS, {"p_lead_id": lead_id, "p_ts": ts}).scalars():
        params = {"p_lead_id": lead_id, "p_of": f"%:{alert_id}"}
        payload = db.execute(_SETTLED_AS, params).scalar()
        if payload is not None:
            return str(payload.get("text") or "")
    return None


def _settle_rows(db: Connection, settles: list[Settle], now: datetime) -> list[dict[str, Any]]:
    """A row replacing each message the settles name: the leads' open alerts of each settle's
    cycle and clocks (one statement for them all: a burst of claims settles with one), and each
    message an `of` pattern names (one statement each: answers to marketing, one at a time)."""
    rows = []
    alerts = [settle for settle in settles if settle.of is None]
    if alerts:
        leads = sorted({settle.lead_id for settle in alerts})
        found = db.execute(_OPEN_ALERTS, {"p_lead_ids": leads}).all()
        for settle in alerts:
            rows += [
                _settle_row(settle, alert_id, channel, now)
                for alert_id, channel, lead_id, key in found
                if lead_id == settle.lead_id and settle.settles(str(key))
            ]
    for settle in settles:
        if settle.of is not None:
            params = {"p_lead_id": settle.lead_id, "p_keys": settle.of}
            rows += [
                _settle_row(settle, alert_id, channel, now)
                for alert_id, channel in db.execute(_OTHERS, params).all()
            ]
    return rows


def _settle_row(settle: Settle, of: int, channel: str, now: datetime) -> dict[str, Any]:
    """The row replacing the message outbox row `of` sent with the settle's text."""
    return outbox_row(
        Kind.SETTLE,
        channel,
        now,
        lead_id=settle.lead_id,
        key=f"{settle.key}:{of}",
        payload={"of": of, "text": settle.text if isinstance(settle.text, str) else settle.text()},
    )


def _message_payload(message: Send) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": message.text}
    if message.blocks:
        payload["blocks"] = list(message.blocks)
    if message.thread_ts:
        payload["thread_ts"] = message.thread_ts
    if message.asks_claim:
        payload["asks_claim"] = True
    return {**payload, **_marked(message.report)}


# A report's message or chart records which report it is (`ReportPart`) in its payload: the
# managers' alert names one Slack refused, and what came back once its channel took messages
# again (`_report_of`). Kept in a copy sending it again.
REPORT, PERIOD = "report", "period"


def _marked(report: ReportPart | None) -> dict[str, str]:
    return {} if report is None else {REPORT: report.what, PERIOD: report.period}


def _upload_row(upload: Upload, now: datetime) -> dict[str, Any]:
    """The outbox row of a file upload; ValueError for an empty or oversized file, or one
    without a name."""
    if not upload.filename.strip():
        raise ValueError("an upload needs a file name")
    if not upload.content or len(upload.content) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"an upload is 1 byte to {MAX_UPLOAD_BYTES} bytes, not {len(upload.content)}"
        )
    payload: dict[str, Any] = {
        "filename": upload.filename,
        "title": upload.title,
        "content_b64": base64.b64encode(upload.content).decode("ascii"),
    }
    if upload.alt_text:
        payload["alt_text"] = upload.alt_text
    if upload.comment:
        payload["initial_comment"] = upload.comment
    payload.update(_marked(upload.report))
    return outbox_row(Kind.UPLOAD, upload.channel, now, key=upload.key, payload=payload)


_MARK_POSTED = (
    update(table(LeadRow))
    .where(LeadRow.id == bindparam("p_lead_id"), LeadRow.posted_at.is_(None))
    .values(
        posted_at=bindparam("p_now"),
        message_channel=bindparam("p_channel"),
        message_ts=bindparam("p_ts"),
    )
)


def mark_posted(db: Connection, lead_id: int, channel: str, ts: str, now: datetime) -> bool:
    """Record where the lead's message is (once); False if it was recorded already."""
    params = {"p_lead_id": lead_id, "p_channel": channel, "p_ts": ts, "p_now": now}
    if db.execute(_MARK_POSTED, params).rowcount != 1:
        return False
    event = {
        "lead_id": lead_id,
        "type": "posted",
        "actor": "handoff",
        "at": now,
        "data": {"channel": channel, "ts": ts},
    }
    insert_events(db, event)
    return True


_MARK_REPOSTED = (
    update(table(LeadRow))
    .where(LeadRow.id == bindparam("p_lead_id"), LeadRow.message_ts == bindparam("p_replaces"))
    .values(message_channel=bindparam("p_channel"), message_ts=bindparam("p_ts"))
)


def mark_reposted(
    db: Connection, lead_id: int, replaces: str, channel: str, ts: str, now: datetime
) -> bool:
    """Record the lead's new post in place of its post `replaces` (deleted in Slack); False if
    the lead's message is another one by now. Its stage times stay as they were."""
    params = {"p_lead_id": lead_id, "p_replaces": replaces, "p_channel": channel, "p_ts": ts}
    if db.execute(_MARK_REPOSTED, params).rowcount != 1:
        return False
    data = {"channel": channel, "ts": ts, "deleted_ts": replaces}
    insert_events(
        db, {"lead_id": lead_id, "type": "reposted", "actor": "handoff", "at": now, "data": data}
    )
    return True


def repost_key(lead_id: int, ts: str) -> str:
    """The key of the row posting a lead again after its post `ts` was deleted in Slack: once
    per deleted post, whichever update (or replica) finds it gone."""
    return f"repost:{lead_id}:{ts}"


# views.publish's refusals about the app or its token, not the person (its reference's error
# list): `not_enabled`, "a `home` view is published but the Home tab isn't enabled for the app",
# and `not_allowed_token_type`, "The type of token your app used when requesting this method is
# not allowed". Every person's home is refused alike until someone fixes the app: the homes wait,
# one each, and are published once Slack takes one. Its other errors are about the one view, so
# the one person: `view_too_large` (their home's size), `not_implemented` ("…not enabled for this
# user"), `hash_conflict`, `duplicate_external_id` and `missing_profile_id` (a hash, an external
# id or a profile view, which Handoff never sends).
HOMES_REFUSED = ("not_enabled", "not_allowed_token_type")
# How long homes held stay not due unless a replica asks about them sooner (the worker asks
# every few minutes, and holds them again each time Slack refuses).
HOMES_HELD_FOR = timedelta(minutes=10)
_HOMES_HELD = aliased(OutboxRow, name="held")
# Slack refuses App Homes for the whole app: a home waiting says so (every waiting one does,
# once one is refused). Then the homes waiting are no delivery falling behind.
_APP_REFUSES_HOMES = exists().where(
    text("held.kind = 'home' AND held.state = 'pending'"),
    _HOMES_HELD.last_error.in_(HOMES_REFUSED),
)


# --- refusals: one managers' alert per channel and error --------------------------------------

GROUPS = table(RefusalGroup)
ALERT_AGAIN_AFTER = timedelta(days=1)  # a refusal that lasts is told again once a day
# What Slack said of a channel that a person can mend (unarchive it, invite the app, fix its
# id): once a message gets through there again, the leads whose posts it refused are posted.
# A refusal of the message itself (invalid_blocks, msg_too_long) would only be refused again.
MENDABLE = ("is_archived", "is_inactive", "not_in_channel", "channel_not_found")


# The refused row's payload records, once it was sent again, which group's alert told it and
# as what (`Resent`): the refused rows are kept (not pruned), and the copies' keys (once per
# refused row) would not say which group told them. An erasure empties a lead's rows, marks
# included: its alerts no longer count it.
TOLD_IN, TOLD_AS, TOLD_OF = "told_in", "told_as", "told_of"
# A lead's refused post records which group's alert counted it (`REFUSED_IN`), and, once
# sla.yaml moved its segment and a start posted it in the segment's channel, which group's
# alert tells that (`MOVED_IN`: the one that counted it), in which channel and for which
# segment (`MOVED_TO`, `MOVED_AS`): the old channel's alert says where its leads went.
REFUSED_IN, MOVED_IN, MOVED_TO, MOVED_AS = "refused_in", "moved_in", "moved_to", "moved_as"


@dataclass(frozen=True)
class Refusals:
    """The deliveries Slack refused to `channel` with `error`, as their alert shows them."""

    id: int
    channel: str
    error: str
    refused: int
    last_kind: str | None
    last_lead_id: int | None
    last_report: ReportPart | None  # the report the latest refused row was part of
    mended_at: datetime | None
    reposted: int
    resent: Resent = field(default_factory=Resent)  # what else came back, once mended
    moved_at: datetime | None = None  # sla.yaml moved segments of leads refused there
    moved: tuple[Moved, ...] = ()  # where those leads are posted now, by segment


_REFUSALS = select(
    RefusalGroup.id, RefusalGroup.channel, RefusalGroup.error, RefusalGroup.refused,
    RefusalGroup.last_kind, RefusalGroup.last_lead_id, RefusalGroup.last_report,
    RefusalGroup.last_period, RefusalGroup.mended_at, RefusalGroup.reposted,
    RefusalGroup.moved_at,
).where(RefusalGroup.id == bindparam("p_id"))  # fmt: skip


def _as_refusals(row: Sequence[Any]) -> Refusals:
    """A group as `_REFUSALS` reads it."""
    group_id, channel, error, refused, kind, lead_id, what, period, mended_at, reposted = row[:10]
    report = ReportPart(str(what), str(period)) if what is not None and period else None
    return Refusals(
        group_id, channel, error, refused, kind, lead_id, report, mended_at, reposted,
        moved_at=row[10],
    )  # fmt: skip


def _refusals(db: Connection, group_id: int) -> Refusals | None:
    row = db.execute(_REFUSALS, {"p_id": group_id}).first()
    return None if row is None else _shown(db, _as_refusals(row))


def _shown(db: Connection, refusals: Refusals) -> Refusals:
    """The group as its alert shows it: with what came back once mended, and where its leads
    went once sla.yaml moved their segments."""
    return _with_moved(db, _with_resent(db, refusals))


# The leads a group's alert counted whose posts a start made in their segments' channels once
# sla.yaml moved them (`MOVED_IN`), but for those erased since: their segment and channel now.
_MOVED = (
    select(OutboxRow.payload[MOVED_AS].as_string(), OutboxRow.payload[MOVED_TO].as_string())
    .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
    .where(
        OutboxRow.state == FAILED,
        OutboxRow.kind == Kind.POST_LEAD,
        OutboxRow.channel == bindparam("p_channel"),
        OutboxRow.payload[MOVED_IN].as_integer() == bindparam("p_group"),
        LeadRow.erased_at.is_(None),
    )
)


def _with_moved(db: Connection, refusals: Refusals) -> Refusals:
    """The group with where its leads are posted now, by segment, once sla.yaml moved any."""
    if refusals.moved_at is None:
        return refusals
    counts: dict[tuple[str, str], int] = {}
    for segment, channel in db.execute(
        _MOVED, {"p_channel": refusals.channel, "p_group": refusals.id}
    ):
        counts[(str(segment), str(channel))] = counts.get((str(segment), str(channel)), 0) + 1
    moved = tuple(
        Moved(segment, channel, leads) for (segment, channel), leads in sorted(counts.items())
    )
    return replace(refusals, moved=moved)


_TOLD = (
    select(OutboxRow.payload[TOLD_AS].as_string(), OutboxRow.payload[TOLD_OF].as_string())
    .where(
        OutboxRow.state == FAILED,
        OutboxRow.channel == bindparam("p_channel"),
        OutboxRow.payload[TOLD_IN].as_integer() == bindparam("p_group"),
    )
    .order_by(OutboxRow.id)
)


def _with_resent(db: Connection, refusals: Refusals) -> Refusals:
    """The group as its alert shows it, with what else its mended channel got again."""
    if refusals.mended_at is None:
        return refusals
    counts: dict[str, int] = {}
    reports: list[tuple[str, str]] = []
    for what, period in db.execute(_TOLD, {"p_channel": refusals.channel, "p_group": refusals.id}):
        counts[str(what)] = counts.get(str(what), 0) + 1
        if period is not None and (str(what), str(period)) not in reports:
            reports.append((str(what), str(period)))
    resent = Resent(
        rejections=counts.get("rejection", 0),
        dispositions=counts.get("disposition", 0),
        notices=counts.get(Kind.NURTURE_NOTICE, 0),
        reports=tuple(reports),
        charts=counts.get(Kind.UPLOAD, 0),
        retired=counts.get(Kind.RETIRE, 0),
    )
    return replace(refusals, resent=resent)


def _group_refusal(db: Connection, item: OutboxItem, error: str, alert: str, now: datetime) -> None:
    """Count the refused row into the open group of its channel and error, opening one (and
    its alert in `alert`, a channel) if none is open or the open one is a day old. The group's
    key is unique: concurrent refusals on several replicas count into one group."""
    key = f"{item.channel}:{error[:100]}"
    db.execute(
        update(GROUPS)
        .where(RefusalGroup.open_key == key, RefusalGroup.opened_at <= now - ALERT_AGAIN_AFTER)
        .values(open_key=None)
    )
    opened = db.execute(
        upsert_insert(db)(GROUPS)
        .values(
            channel=item.channel, error=error[:100], open_key=key, alert_channel=alert,
            opened_at=now, refused=0, reposted=0, recount_waiting=False,
        )
        .on_conflict_do_nothing()
    ).rowcount == 1  # fmt: skip
    report = None if item.lead_id is not None else _report_of(db, item.kind, item.key, item.payload)
    group_id = db.execute(
        update(GROUPS)
        .where(RefusalGroup.open_key == key)
        .values(
            refused=RefusalGroup.refused + 1,
            last_kind=item.kind,
            last_lead_id=item.lead_id,
            last_report=None if report is None else report.what,
            last_period=None if report is None else report.period[:40],
        )
        .returning(RefusalGroup.id)
    ).scalar_one()
    if item.kind == Kind.POST_LEAD:  # its lead may follow its segment: the alert will say so
        marked = {**item.payload, REFUSED_IN: group_id}
        db.execute(_MARK_TOLD, {"p_id": item.id, "p_payload": marked})
    if opened:  # its alert, rendered from the group when it is sent
        row = outbox_row(
            Kind.MESSAGE, alert, now, key=f"refused:{group_id}", payload={"group": group_id}
        )
        db.execute(upsert_insert(db)(table(OutboxRow)).values(**row).on_conflict_do_nothing())
    else:
        _recount(db, group_id, now)


def _recount(db: Connection, group_id: int, now: datetime) -> None:
    """Ask for the group's alert to be re-rendered, unless a re-render not yet started waits
    (it will show the group as it is then: repeated recounts collapse)."""
    waiting = db.execute(
        update(GROUPS)
        .where(RefusalGroup.id == group_id, RefusalGroup.recount_waiting.is_(False))
        .values(recount_waiting=True)
        .returning(RefusalGroup.alert_channel)
    ).scalar()
    if waiting is not None:
        row = outbox_row(Kind.RECOUNT, waiting, now, payload={"group": group_id})
        db.execute(insert(table(OutboxRow)).values(**row))


# The open leads whose deliveries to a channel were refused for a reason a person can mend.
_MENDABLE_REFUSALS = (
    OutboxRow.state == FAILED,
    OutboxRow.channel == bindparam("p_channel"),
    OutboxRow.last_error.in_(MENDABLE),
    LeadRow.erased_at.is_(None),
    LeadRow.stage.in_(("mql", "sal")),
)
_GIVEN_UP_POSTS = (
    select(OutboxRow.id, OutboxRow.lead_id, OutboxRow.payload, OutboxRow.last_error)
    .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
    .where(*_MENDABLE_REFUSALS, OutboxRow.kind == Kind.POST_LEAD, LeadRow.posted_at.is_(None))
    .order_by(OutboxRow.id)
)


# The open leads of a segment whose posts Slack refused, for a reason a person can mend, in
# another channel than the segment's now (sla.yaml moved the segment): they follow it there.
# One query for every segment, at every start: the segments' channels now come as a CASE on the
# lead's segment (a segment no longer in the file: NULL, never moved). It reads the given-up
# rows through ix_outbox_due (`state`), never the whole outbox, and finds nothing when nothing
# moved (SQLite without statistics, as Handoff leaves it, and PostgreSQL both read it so).
# With each, the group whose alert counted it (`_COUNTED_IN`).
def _moved_posts(channels: Mapping[str, str]) -> Any:
    return (
        select(
            OutboxRow.id,
            OutboxRow.lead_id,
            OutboxRow.payload,
            OutboxRow.channel,
            LeadRow.segment,
            _COUNTED_IN,
        )
        .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
        .where(
            OutboxRow.state == FAILED,
            OutboxRow.kind == Kind.POST_LEAD,
            OutboxRow.last_error.in_(MENDABLE),
            OutboxRow.channel != case(dict(channels), value=LeadRow.segment),
            LeadRow.erased_at.is_(None),
            LeadRow.stage.in_(("mql", "sal")),
            LeadRow.posted_at.is_(None),
        )
        .order_by(OutboxRow.id)
    )


# Which of the leads bound as `p_lead_ids` (one array) are erased: on PostgreSQL (Read Committed)
# an erasure may commit between a start's look (`_moved_posts`) and its write of their posts, and
# cannot see the posts to come, so it drops none; the delivery worker posts nothing for them.
# Read after the write, it finds every erasure that will not see the posts: the posts' foreign
# keys lock their leads (FOR KEY SHARE) until the commit, and an erasure rewrites the lead's
# external id (FOR UPDATE), so one not committed yet waits, then drops the posts.
_ERASED_AMONG = select(LeadRow.id).where(
    LeadRow.id == any_(bindparam("p_lead_ids", type_=ARRAY(BigInteger))),
    LeadRow.erased_at.is_not(None),
)


# The group whose alert counted a refused post: as the post records it (`REFUSED_IN`; 0: given
# up with no group's alert, as when sla.yaml named no escalations channel), or, for one refused
# before posts recorded it, the latest group of its channel and error opened by the time it
# was given up (None: refused before groups existed, or with no alert to tell).
_COUNTED_IN = func.nullif(
    func.coalesce(
        OutboxRow.payload[REFUSED_IN].as_integer(),
        select(RefusalGroup.id)
        .where(
            RefusalGroup.channel == OutboxRow.channel,
            RefusalGroup.error == OutboxRow.last_error,
            RefusalGroup.opened_at <= OutboxRow.done_at,
        )
        .order_by(RefusalGroup.id.desc())
        .limit(1)
        .scalar_subquery(),
    ),
    0,
)


# _LEADS_HELD: a mend reads refused rows about a lead (rendered with the person), then writes
# a copy and that payload back into the refused row. On PostgreSQL (Read Committed) an erasure
# committed in between would find neither row, and the person would come back in both. So the
# read locks the leads' rows (FOR KEY SHARE, the lock the copy's foreign key check takes later
# anyway): an erasure under way (it locks the lead FOR UPDATE) is waited for, and the row read
# again finds the lead erased (PostgreSQL's docs, "Read Committed Isolation Level"); one to come
# waits for the mend, and its later statements see and empty what it wrote. SQLite: one writer.
# What marketing was to hear of a lead (`Kind.FEEDBACK`: a disposition; `Kind.NURTURE_NOTICE`:
# not an MQL at intake), refused for a reason a person can mend, and still what the lead is:
# the disposition it told is the lead's latest (not one of a cycle since ended), the intake
# notice of a lead never handed to sales since. Oldest first: marketing reads them in order.
_GIVEN_UP_FEEDBACK = (
    select(
        OutboxRow.id,
        OutboxRow.lead_id,
        OutboxRow.kind,
        OutboxRow.payload,
        OutboxRow.last_error,
        LeadRow.stage,
    )
    .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
    .where(
        OutboxRow.state == FAILED,
        OutboxRow.channel == bindparam("p_channel"),
        OutboxRow.last_error.in_(MENDABLE),
        LeadRow.erased_at.is_(None),
        or_(
            and_(
                OutboxRow.kind == Kind.FEEDBACK,
                LeadRow.stage.in_(("reject", "nurture", "recycle")),
                LeadRow.dispositioned_at <= OutboxRow.created_at,
            ),
            and_(
                OutboxRow.kind == Kind.NURTURE_NOTICE,
                LeadRow.stage == "nurture",
                LeadRow.dispositioned_at.is_(None),
            ),
        ),
    )
    .order_by(OutboxRow.id)
    .with_for_update(of=LeadRow, read=True, key_share=True)  # see _LEADS_HELD
)
# The reports it refused there for a reason a person can mend (`LATE_REPORTS`: the weekly and
# monthly digests with their charts, the week's rejection review), each refused row: the one
# the run wrote, or a copy of it refused again. Oldest first: a report's post before its charts.
_GIVEN_UP_REPORTS = (
    select(OutboxRow.id, OutboxRow.kind, OutboxRow.key, OutboxRow.payload, OutboxRow.last_error)
    .where(
        OutboxRow.state == FAILED,
        OutboxRow.channel == bindparam("p_channel"),
        OutboxRow.last_error.in_(MENDABLE),
        OutboxRow.lead_id.is_(None),
        OutboxRow.kind.in_((Kind.MESSAGE, Kind.UPLOAD)),
        or_(*(OutboxRow.key.like(f"{run}:%") for run in LATE_REPORTS)),
    )
    .order_by(OutboxRow.id)
)
# The edits retiring the posts of leads' ended cycles (`Kind.RETIRE`) it refused there for a
# reason a person can mend (chat.update answers `is_inactive` in an archived channel), each
# refused row: the one the comeback wrote, or a copy of it refused again. Whatever the lead
# is now (open, closed, back once more): the post it retires is still of an ended cycle.
_GIVEN_UP_RETIRES = (
    select(OutboxRow.id, OutboxRow.lead_id, OutboxRow.key, OutboxRow.payload, OutboxRow.last_error)
    .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
    .where(
        OutboxRow.state == FAILED,
        OutboxRow.channel == bindparam("p_channel"),
        OutboxRow.last_error.in_(MENDABLE),
        OutboxRow.kind == Kind.RETIRE,
        LeadRow.erased_at.is_(None),
    )
    .order_by(OutboxRow.id)
    .with_for_update(of=LeadRow, read=True, key_share=True)  # see _LEADS_HELD
)
_REFUSED_UPDATES = (
    select(OutboxRow.lead_id)
    .join(LeadRow, LeadRow.id == OutboxRow.lead_id)
    .where(
        *_MENDABLE_REFUSALS,
        OutboxRow.kind == Kind.UPDATE_LEAD,
        LeadRow.message_channel == OutboxRow.channel,
    )
    .distinct()
)


# A refused row sent again records which group's alert tells it, and as what (`TOLD_IN`, …).
_MARK_TOLD = (
    update(table(OutboxRow))
    .where(OutboxRow.id == bindparam("p_id"))
    .values(payload=bindparam("p_payload"))
)


@dataclass(frozen=True)
class _Copy:
    """A row sending again one Slack refused (`order`: the refused row's id, or a lead's first
    refused post) with `error`. `told`: what the alert calls it (None: a lead's post, counted in
    its group's `reposted`), recorded with `refused_payload` in the refused row once sent."""

    order: int
    row: dict[str, Any]
    error: str
    refused_payload: dict[str, Any] = field(default_factory=dict)
    told: dict[str, str] | None = None


def _latest_group(db: Connection, channel: str, error: str) -> int | None:
    """The group whose alert tells what comes back of the refusals there with `error`."""
    return db.execute(
        select(RefusalGroup.id)
        .where(RefusalGroup.channel == channel, RefusalGroup.error == error)
        .order_by(RefusalGroup.id.desc())
        .limit(1)
    ).scalar()


def _report_of(
    db: Connection, kind: str, key: str | None, payload: dict[str, Any]
) -> ReportPart | None:
    """Which report a message or chart (an outbox row keyed `key`) is part of: as
    bot/services/digest.py marked it in its payload; None if it is no report's."""
    return _reports_of(db, [(kind, key, payload)])[0]


def _reports_of(
    db: Connection, parts: Sequence[tuple[str, str | None, Mapping[str, Any]]]
) -> list[ReportPart | None]:
    """`_report_of` of each (kind, key, payload), in order: at most one query for them all,
    however many were written before the digest marked its messages."""
    found: list[ReportPart | None] = []
    weekly: dict[int, tuple[str, str]] = {}  # an unmarked weekly message: place → period, index
    for kind, key, payload in parts:
        what, period = payload.get(REPORT), payload.get(PERIOD)
        if what is not None and period is not None:
            found.append(ReportPart(str(what), str(period)))
            continue
        # Unmarked: a row written before the digest marked its messages (or a copy of one),
        # told by its run's key (`<run>:<period>:<n>`, or a copy's `<that>:again:<row>`).
        run, period, index = [*str(key or "").partition(":again:")[0].split(":"), "", ""][:3]
        if kind not in (Kind.MESSAGE, Kind.UPLOAD) or run not in LATE_REPORTS or not period:
            found.append(None)
            continue
        what = MONTHLY_DIGEST if run == "monthly_digest" else WEEKLY_DIGEST
        if what == WEEKLY_DIGEST and kind == Kind.MESSAGE:
            weekly[len(found)] = (period, index)
        found.append(ReportPart(what, period))
    if weekly:
        # The old rule, kept only as the fallback for those rows: a weekly run's last message
        # is marketing's rejection review (the digest wrote it after the report and charts).
        last = _last_weekly_messages(db, {period for period, _ in weekly.values()})
        for place, (period, index) in weekly.items():
            if index.isdigit() and int(index) == last.get(period, 0):
                found[place] = ReportPart(REJECTION_REVIEW, period)
    return found


def _last_weekly_messages(db: Connection, periods: Collection[str]) -> dict[str, int]:
    """The number of each weekly run's last message (`weekly_digest:<period>:<n>`, not a copy
    sent again), by period; one query for all the `periods`."""
    keys = db.execute(
        select(OutboxRow.key).where(
            or_(*(OutboxRow.key.like(f"weekly_digest:{period}:%") for period in sorted(periods)))
        )
    ).scalars()
    last: dict[str, int] = {}
    for key in keys:
        if key and ":again:" not in key:
            _, period, index = key.split(":")[:3]
            last[period] = max(last.get(period, 0), int(index))
    return last


def _copy_of(
    kind: str,
    channel: str,
    now: datetime,
    key: str,
    row_id: int,
    payload: dict[str, Any] | None,
    lead_id: int | None = None,
) -> dict[str, Any]:
    """The row sending again the refused row `row_id` (keyed `key`), as it was rendered: keyed
    by the first row's key and this one, and without what a group's alert recorded in it (a
    copy refused again says nothing of its own)."""
    shown = {
        name: value
        for name, value in dict(payload or {}).items()
        if name not in (TOLD_IN, TOLD_AS, TOLD_OF)
    }
    again = f"{key.partition(':again:')[0]}:again:{row_id}"
    return outbox_row(kind, channel, now, lead_id=lead_id, key=again, payload=shown)


def _post_again(
    lead_id: int, row_id: int, payload: Mapping[str, Any], channel: str, now: datetime
) -> dict[str, Any]:
    """A lead's post Slack refused (row `row_id`), posted again in `channel`, for the same
    cycle; keyed by that row, so it is written once whichever mend or start writes it."""
    cycle = {"cycle": payload["cycle"]} if payload.get("cycle") is not None else {}
    key = f"again:{lead_id}:{row_id}"
    return outbox_row(Kind.POST_LEAD, channel, now, lead_id=lead_id, key=key, payload=cycle)


def _mend(db: Connection, channel: str, now: datetime, *, told: bool, shared: bool = False) -> int:
    """`channel` takes messages again (`told`: Slack said it was unarchived; else a message just
    got through, `shared`: a file): its open groups close, and, if any was open, Slack told or a
    file got through, every open lead whose post there was refused is posted again (once per
    refused post, whichever replica or event finds it), every message to marketing refused
    there that still tells what the lead is (a disposition, a "not an MQL" notice) is sent
    again, once, so is every report refused there (a weekly or monthly digest and its charts, a
    week's rejection review), as it was rendered, so is every edit retiring the post of a lead's
    ended cycle there, and every lead whose message there could not be updated is re-rendered.
    A chart refused for want of membership (`not_in_channel`) comes back only once a file got
    through: a post does not need membership (chat:write.public), so one getting through does
    not say the app is in the channel, and the chart sent again would be refused again, then
    sent again at the next post, and so on.
    The groups' alerts say so. Returns how many leads will be posted again."""
    closed = (
        db.execute(
            update(GROUPS)
            .where(RefusalGroup.channel == channel, RefusalGroup.open_key.is_not(None))
            .values(open_key=None, mended_at=now)
            .returning(RefusalGroup.id)
        )
        .scalars()
        .all()
    )
    if not closed and not told and not shared:
        return 0
    latest: dict[int, tuple[int, dict[str, Any], str]] = {}  # lead → its last refused post
    first: dict[int, int] = {}  # lead → its first refused post: where it comes back in order
    for row_id, lead_id, payload, error in db.execute(_GIVEN_UP_POSTS, {"p_channel": channel}):
        latest[int(lead_id)] = (int(row_id), dict(payload or {}), str(error))
        first.setdefault(int(lead_id), int(row_id))
    # Written in the refused rows' order, so each channel gets them back as they were made (a
    # week's review before the rejections after it, a lead's post before marketing hears of it).
    copies: list[_Copy] = []
    for lead_id, (row_id, payload, error) in latest.items():
        row = _post_again(lead_id, row_id, payload, channel, now)
        copies.append(_Copy(first[lead_id], row, error))
    # Marketing's feedback it could not post there: each refused message once.
    given_up = db.execute(_GIVEN_UP_FEEDBACK, {"p_channel": channel})
    for row_id, lead_id, kind, payload, error, stage in given_up:
        key = f"again:{lead_id}:{row_id}"
        row = outbox_row(str(kind), channel, now, lead_id=lead_id, key=key, payload={})
        what = str(kind)
        if kind == Kind.FEEDBACK:
            what = "rejection" if stage == "reject" else "disposition"
        copies.append(_Copy(int(row_id), row, str(error), dict(payload or {}), {TOLD_AS: what}))
    # The reports it could not post there: each refused row once, as it was rendered for its
    # week or month (its payload), keyed by the run's key and the refused row.
    reports = [
        (int(row_id), str(kind), str(key), payload, str(error))
        for row_id, kind, key, payload, error in db.execute(
            _GIVEN_UP_REPORTS, {"p_channel": channel}
        )
        # a file shared there says the app is in the channel, a post does not
        if not (kind == Kind.UPLOAD and error == "not_in_channel" and not shared)
    ]
    resent = [
        _copy_of(kind, channel, now, key, row_id, payload)
        for row_id, kind, key, payload, _ in reports
    ]
    # Which report each message is: one read for them all (a chart is counted as one).
    messages = [
        (kind, key.partition(":again:")[0], row["payload"])
        for (_, kind, key, _, _), row in zip(reports, resent, strict=True)
        if kind != Kind.UPLOAD
    ]
    reported = iter(_reports_of(db, messages))
    for (row_id, kind, _, payload, error), row in zip(reports, resent, strict=True):
        report = None if kind == Kind.UPLOAD else next(reported)
        what_is = {TOLD_AS: kind}
        if report is not None:  # a report's message: told by what it is and its period
            what_is = {TOLD_AS: report.what, TOLD_OF: report.period}
        copies.append(_Copy(row_id, row, error, dict(payload or {}), what_is))
    # The earlier cycles' posts it could not retire there: each refused row once, as it was
    # rendered when the lead came back, keyed by the comeback's key and the refused row.
    for row_id, lead_id, key, payload, error in db.execute(
        _GIVEN_UP_RETIRES, {"p_channel": channel}
    ):
        row = _copy_of(Kind.RETIRE, channel, now, str(key), int(row_id), payload, lead_id)
        if not row["payload"].get("ts"):
            continue  # emptied: nothing left to show
        copies.append(
            _Copy(int(row_id), row, str(error), dict(payload or {}), {TOLD_AS: Kind.RETIRE})
        )
    copies.sort(key=lambda copy: copy.order)
    # One statement for them all (SQLAlchemy sends it as multi-row INSERTs of 1,000 rows), in
    # that order: their ids follow it, and replicas writing the same keys at once wait for
    # each other, key by key, and each key is written once (a taken one is left out).
    rows = [copy.row for copy in copies]
    written = set(db.execute(_insert_keyed(db.dialect.name), rows).scalars()) if rows else set()
    erased: set[int] = set()  # SQLite: one writer, none between the look and the write
    if written and latest and db.dialect.name == "postgresql":
        # A lead erased since the look: the delivery worker posts nothing for it, so the
        # alert does not count it as posted again.
        erased = set(db.execute(_ERASED_AMONG, {"p_lead_ids": list(latest)}).scalars())
    again: dict[str, int] = {}  # what Slack said of the leads' posts → how many posted again
    groups: dict[str, int | None] = {}  # what Slack said → its latest group there
    told_groups = set(closed)
    marks: list[dict[str, Any]] = []  # the refused rows sent again: which alert tells them
    for copy in copies:
        if copy.row["key"] not in written:
            continue  # sent again already
        if copy.told is None:
            if copy.row["lead_id"] not in erased:
                again[copy.error] = again.get(copy.error, 0) + 1
            continue
        if copy.error not in groups:
            groups[copy.error] = _latest_group(db, channel, copy.error)
        group_id = groups[copy.error]
        if group_id is None:  # refused before groups existed: it comes back untold
            continue
        marked = {**copy.refused_payload, **copy.told, TOLD_IN: group_id}
        marks.append({"p_id": copy.order, "p_payload": marked})
        told_groups.add(group_id)
    if marks:
        db.execute(_MARK_TOLD, marks)
    refreshed = db.execute(_REFUSED_UPDATES, {"p_channel": channel}).scalars().all()
    write_effects(db, [Refresh(lead_id) for lead_id in refreshed if lead_id is not None], now)
    for error, count in again.items():
        if error not in groups:
            groups[error] = _latest_group(db, channel, error)
        group_id = groups[error]
        if group_id is None:  # refused before groups existed: the leads come back untold
            continue
        db.execute(
            update(GROUPS)
            .where(RefusalGroup.id == group_id)
            .values(reposted=RefusalGroup.reposted + count)
        )
        told_groups.add(group_id)
    for group_id in sorted(told_groups):
        db.execute(
            update(GROUPS)
            .where(RefusalGroup.id == group_id)
            .values(mended_at=func.coalesce(RefusalGroup.mended_at, now))
        )
        _recount(db, group_id, now)
    return sum(again.values())


_IS_DUE = is_due(OutboxRow)
_IN_FLIGHT = aliased(OutboxRow, name="in_flight")
_DUE = (
    select(OutboxRow.id, OutboxRow.channel, OutboxRow.kind)
    .where(*_IS_DUE, OutboxRow.id > bindparam("p_after"))
    .order_by(OutboxRow.id)
    .limit(bindparam("p_limit"))
)


@cache
def _lease(sqlite: bool) -> Any:
    """Take one due row. Slack keeps whichever views.publish arrives last: a person's home is
    not taken while another replica's publish of it is on its way, or an older render could
    land on top of a newer one."""
    # SQLite without statistics reads every pending row (ix_outbox_due) for `state = …`; said
    # to hold for most rows, it reads the person's pending homes (ix_outbox_home_pending).
    pending = (
        "likelihood(in_flight.state = 'pending', 0.9)" if sqlite else "in_flight.state = 'pending'"
    )
    home_in_flight = exists().where(
        _IN_FLIGHT.channel == OutboxRow.channel,
        text(f"in_flight.kind = 'home' AND {pending}"),
        _IN_FLIGHT.id != OutboxRow.id,
        _IN_FLIGHT.lease_until >= bindparam("p_wall"),
    )
    return (
        update(table(OutboxRow))
        .where(
            OutboxRow.id == bindparam("p_id"),
            *_IS_DUE,
            or_(OutboxRow.kind != Kind.HOME, ~home_in_flight),
        )
        .values(
            # SET sees the row as it was: keep what the previous attempt left.
            tried_until=OutboxRow.lease_until,
            unknown_before=OutboxRow.unknown,
            unknown=True,  # until this request's outcome is known
            lease_until=bindparam("p_until"),
            attempts=OutboxRow.attempts + 1,
            first_try_at=func.coalesce(
                OutboxRow.first_try_at, bindparam("p_wall2", type_=OUTBOX.c.first_try_at.type)
            ),
        )
        .returning(
            OutboxRow.id,
            OutboxRow.kind,
            OutboxRow.lead_id,
            OutboxRow.channel,
            OutboxRow.payload,
            OutboxRow.attempts,
            OutboxRow.unknown_before,
            OutboxRow.first_try_at,
            OutboxRow.tried_until,
            OutboxRow.created_at,
            OutboxRow.key,
        )
    )


_FINISH = (
    update(table(OutboxRow))
    .where(OutboxRow.id == bindparam("p_id"))
    .values(
        state=bindparam("p_state"),
        done_at=bindparam("p_now"),
        result_ts=bindparam("p_ts"),
        last_error=bindparam("p_error"),
        lease_until=None,
        unknown=False,
    )
)
_RETRY = (
    update(table(OutboxRow))
    .where(OutboxRow.id == bindparam("p_id"))
    .values(
        not_before=bindparam("p_not_before"),
        last_error=bindparam("p_error"),
        unknown=bindparam("p_unknown"),
        lease_until=bindparam("p_wall"),  # this attempt is over
    )
)
_PENDING_COUNT = select(func.count()).where(OutboxRow.state == PENDING)
_PENDING_NOT_HOMES = _PENDING_COUNT.where(OutboxRow.kind != Kind.HOME)
_HOMES_PENDING = select(func.count()).select_from(OUTBOX).where(text(HOME_PENDING))
# What Slack last said to a home still waiting (ix_outbox_home_pending holds them).
_HOME_REFUSED = (
    select(OutboxRow.last_error)
    .where(text(HOME_PENDING), OutboxRow.last_error.in_(HOMES_REFUSED))
    .limit(1)
)
_NOT_IN_FLIGHT = or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < bindparam("p_wall"))
# The homes waiting, not in flight, marked as held by what Slack said of them all, and not due
# until `p_until`: the dispatcher's reads (the oldest due rows) leave them out meanwhile, and
# reach the other rows coming due, however many homes wait.
_HOLD_HOMES = (
    update(table(OutboxRow))
    .where(text(HOME_PENDING), _NOT_IN_FLIGHT)
    .values(last_error=bindparam("p_error"), not_before=bindparam("p_until"))
)
_HOLD_THOSE = _HOLD_HOMES.where(OutboxRow.id.in_(bindparam("p_ids", expanding=True)))
_HELD = and_(text(HOME_PENDING), OutboxRow.last_error.in_(HOMES_REFUSED))
_PROBED = aliased(OutboxRow, name="probed")
# The oldest home held, due now: the one that asks Slack whether it takes homes again.
_PROBE_HOME = (
    update(table(OutboxRow))
    .where(
        OutboxRow.id
        == select(_PROBED.id)
        .where(
            text("probed.kind = 'home' AND probed.state = 'pending'"),
            _PROBED.last_error.in_(HOMES_REFUSED),
            or_(_PROBED.lease_until.is_(None), _PROBED.lease_until < bindparam("p_wall")),
        )
        .order_by(_PROBED.id)
        .limit(1)
        .scalar_subquery()
    )
    .values(not_before=bindparam("p_wall2", type_=OUTBOX.c.not_before.type))
)
# Every home held, due now (Slack takes them again).
_RELEASE_HOMES = (
    update(table(OutboxRow))
    .where(_HELD, OutboxRow.not_before > bindparam("p_wall"))
    .values(not_before=bindparam("p_wall2", type_=OUTBOX.c.not_before.type))
)
_HELD_HOME = and_(OutboxRow.kind == Kind.HOME, _APP_REFUSES_HOMES)
# The pending rows by kind, and the oldest's time, but for homes held while Slack refuses
# them for the whole app (the oldest waiting delivery pages people and fails /readyz).
_PENDING_BY_KIND = (
    select(
        OutboxRow.kind,
        func.count(),
        func.min(case((_HELD_HOME, null()), else_=OutboxRow.created_at)),
    )
    .where(OutboxRow.state == PENDING)
    .group_by(OutboxRow.kind)
)
_SENT = select(OutboxRow.state, OutboxRow.result_ts).where(OutboxRow.id == bindparam("p_id"))
_POSTED_TS = select(LeadRow.message_ts).where(LeadRow.id == bindparam("p_lead_id"))
_POST_WAITING = select(OutboxRow.id).where(
    OutboxRow.lead_id == bindparam("p_lead_id"),
    OutboxRow.kind == Kind.POST_LEAD,
    OutboxRow.state == PENDING,
)


_OUTCOME = select(OutboxRow.unknown, OutboxRow.lease_until, OutboxRow.result_ts).where(
    OutboxRow.id == bindparam("p_id")
)
_REDACTIONS = (
    select(
        OutboxRow.lead_id, OutboxRow.kind, OutboxRow.channel, OutboxRow.state,
        OutboxRow.last_error,
    )
    .where(
        OutboxRow.lead_id.in_(bindparam("p_leads", expanding=True)),
        OutboxRow.kind.in_([Kind.REDACT, Kind.UPDATE_LEAD]),
        OutboxRow.created_at >= bindparam("p_since", type_=OUTBOX.c.created_at.type),
    )
    .order_by(OutboxRow.id)
)  # fmt: skip


@dataclass(frozen=True)
class Redaction:
    """One change emptying an erased lead's Slack message (`redact`), or showing its post as
    the erased lead (`update_lead`), and how it went."""

    lead_id: int
    kind: str
    channel: str
    state: str  # pending, done, failed
    error: str | None


KIND_SENT = (Kind.POST_LEAD, Kind.FEEDBACK, Kind.NURTURE_NOTICE, Kind.MESSAGE)  # about a lead

_ERASED_AT = select(LeadRow.erased_at).where(LeadRow.id == bindparam("p_lead_id"))
_MESSAGE_OF = select(LeadRow.message_ts, LeadRow.erased_at).where(
    LeadRow.id == bindparam("p_lead_id")
)


# The groups whose alerts count the lead among those moved to its segment's channel.
_MOVED_IN = select(OutboxRow.payload[MOVED_IN].as_integer()).where(
    OutboxRow.lead_id == bindparam("p_lead_id"),
    OutboxRow.kind == Kind.POST_LEAD,
    OutboxRow.state == FAILED,
)


def redact_lead(db: Connection, lead_id: int, now: datetime) -> int:
    """After an erasure, in its transaction: every message Handoff sent about the lead gets a
    row that empties it in Slack (its current post is re-rendered instead, as the erased lead;
    the posts of its earlier cycles are emptied), and no row still to deliver keeps the
    person's data (each is dropped, done with nothing sent). A row whose request may have
    reached Slack (in flight, or its answer lost) gets a redaction that looks for its message
    by its metadata key. A retirement of an earlier cycle's post under way (rendered with the
    person, dropped here like the rest) gets a redaction of that post that waits until its
    request is over: however that request ends (delivered, its answer lost, its worker gone),
    it may land after the erasure's own edit of the post (chat.update has no version check).
    Keyed as the one `_edit_late` writes for it: once, whichever comes first. Returns how many
    messages will be emptied."""
    outbox = table(OutboxRow)
    unsure = db.execute(
        select(
            OutboxRow.id, OutboxRow.kind, OutboxRow.channel, OutboxRow.payload,
            OutboxRow.first_try_at,
        ).where(
            OutboxRow.lead_id == lead_id,
            OutboxRow.state == PENDING,
            OutboxRow.kind.in_([*KIND_SENT, Kind.RETIRE]),
            OutboxRow.unknown.is_(True),
        )
    ).all()  # fmt: skip
    retiring = [row for row in unsure if row.kind == Kind.RETIRE]
    unsure = [row for row in unsure if row.kind != Kind.RETIRE]
    db.execute(
        update(outbox)
        .where(
            OutboxRow.lead_id == lead_id,
            OutboxRow.state == PENDING,
            OutboxRow.kind.in_([*KIND_SENT, Kind.UPLOAD, Kind.SETTLE, Kind.RETIRE]),
        )
        .values(state=DONE, payload={}, done_at=now, last_error="erased before it was sent")
    )
    current_post = db.execute(_POSTED_TS, {"p_lead_id": lead_id}).scalar() or ""
    sent = db.execute(
        select(OutboxRow.id, OutboxRow.channel, OutboxRow.result_ts).where(
            OutboxRow.lead_id == lead_id,
            OutboxRow.state == DONE,
            OutboxRow.kind.in_(KIND_SENT),
            OutboxRow.result_ts.is_not(None),
            or_(OutboxRow.kind != Kind.POST_LEAD, OutboxRow.result_ts != current_post),
        )
    ).all()
    rows = [_redaction(lead_id, row_id, channel, now, {"ts": ts}) for row_id, channel, ts in sent]
    rows += [
        _redaction(lead_id, row_id, channel, now, _lookup(kind, row_id, payload, tried), "look")
        for row_id, kind, channel, payload, tried in unsure
    ]
    emptied = len(rows)  # a retired post is an earlier cycle's, counted among these already
    rows += [
        _redaction(lead_id, row_id, channel, now, {"ts": ts, "of": row_id})
        for row_id, _, channel, payload, _ in retiring
        if (ts := (payload or {}).get("ts"))
    ]
    if rows:
        db.execute(upsert_insert(db)(outbox).on_conflict_do_nothing(), rows)
    # The managers' alerts about refused deliveries that name the lead as the latest, or count
    # it among the leads moved to their segment's channel: shown again without it.
    told = set(
        db.execute(select(RefusalGroup.id).where(RefusalGroup.last_lead_id == lead_id)).scalars()
    )
    told.update(group for group in db.execute(_MOVED_IN, {"p_lead_id": lead_id}).scalars() if group)
    for group_id in sorted(told):
        _recount(db, group_id, now)
    # Emptied like a pruned row: the person's words are gone, the keys still refuse a copy.
    db.execute(
        update(outbox)
        .where(OutboxRow.lead_id == lead_id, OutboxRow.kind != Kind.REDACT)
        .values(payload={})
    )
    return emptied


def _redaction(
    lead_id: int, of: int, channel: str, now: datetime, payload: dict[str, Any], how: str = ""
) -> dict[str, Any]:
    """The row emptying the message outbox row `of` sent (each message once per way)."""
    key = f"redact:{of}:{how}" if how else f"redact:{of}"
    return outbox_row(Kind.REDACT, channel, now, lead_id=lead_id, key=key, payload=payload)


def _lookup(
    kind: str, row_id: int, payload: dict[str, Any] | None, first_try_at: datetime | None
) -> dict[str, Any]:
    """What finds the message of a row whose outcome is unknown: its row (whose metadata key
    the worker knows), the thread it went to, and when its first request was made."""
    found: dict[str, Any] = {"of": row_id, "kind": kind}
    for name in ("cycle", "thread_ts", "replaces"):
        if (payload or {}).get(name) is not None:
            found[name] = (payload or {})[name]
    if first_try_at is not None:
        found["since"] = first_try_at.isoformat()
    return found


# The lead `p_lead_id` as an edit of its post (outbox row `p_id`) ends: when it was erased,
# with each post of its ended cycles retired since that edit was written (the retire rows
# written after it: a comeback's, a mend's copy, or one `_retire_again` wrote), oldest first;
# one row without a retire (its id None) if none was.
_SINCE_EDIT = (
    select(
        LeadRow.erased_at, OutboxRow.id, OutboxRow.key, OutboxRow.channel, OutboxRow.state,
        OutboxRow.unknown, OutboxRow.payload,
    )
    .select_from(LeadRow)
    .outerjoin(
        OutboxRow,
        and_(
            OutboxRow.lead_id == LeadRow.id,
            OutboxRow.kind == Kind.RETIRE,
            OutboxRow.id > bindparam("p_id"),
        ),
    )
    .where(LeadRow.id == bindparam("p_lead_id"))
    .order_by(OutboxRow.id)
)  # fmt: skip


def _since_edit(db: Connection, item: OutboxItem) -> tuple[bool, list[Any]]:
    """Whether the lead of the edit `item` is erased, and the retire rows written after `item`,
    oldest first: one read."""
    found = db.execute(_SINCE_EDIT, {"p_lead_id": item.lead_id, "p_id": item.id}).all()
    erased = bool(found) and found[0].erased_at is not None
    return erased, [row for row in found if row.id is not None]


def _retire_again(
    db: Connection,
    item: OutboxItem,
    now: datetime,
    retired: Sequence[Any],
    updated: str | None = None,
) -> None:
    """After the request(s) of the lead's update `item` ended (`updated`: the post its request
    edited): retire once more each post of an ended cycle that it may have shown live again. An
    update renders the lead as the worker reads it, and one written before the lead came back
    may have read the ended cycle and its post before the comeback committed: chat.update has
    no version check, so its request, landing after the retire's (another replica's), shows
    that cycle live again on its post, rating menus and all. Such a post is one a retire row
    written after `item` retires, and `updated`, or any one if `item` was tried before: an
    earlier request of it may have reached Slack, on a post not known (its answer lost, a 5xx,
    its worker died). `retired`: the retire rows written after `item` (`_since_edit`). A row
    written now is delivered after this update's requests ended, so it lands last; none is
    needed while that retire waits (not under way: it lands after this one by itself), and one
    refused comes back when its channel is mended. Keyed by the comeback and this update:
    once, whichever replica."""
    tried_before = item.attempts > 1
    if updated is None and not tried_before:
        return
    latest: dict[str, Any] = {}  # the retired post's ts → its latest retire row
    for row in retired:
        ts = dict(row.payload or {}).get("ts")
        if ts and (tried_before or ts == updated):  # not emptied (an erasure, retention)
            latest[str(ts)] = row
    rows = []
    for row in latest.values():
        if row.state == FAILED or (row.state == PENDING and not row.unknown):
            continue
        shown = {name: row.payload.get(name) for name in ("ts", "text", "blocks")}
        base = str(row.key).partition(":again:")[0].partition(":after:")[0]
        key = f"{base}:after:{item.id}"
        rows.append(
            outbox_row(Kind.RETIRE, row.channel, now, lead_id=item.lead_id, key=key, payload=shown)
        )
    if rows:
        insert_many(db, _insert_effects(db.dialect.name), rows)


def _redact_late(db: Connection, item: OutboxItem, ts: str, posted: bool, now: datetime) -> None:
    """A message about a lead whose person was erased while its request was under way: its
    post, now recorded, is re-rendered as the erased lead; anything else is emptied."""
    if posted:
        write_effects(db, [Refresh(int(item.lead_id or 0))], now)
        return
    row = _redaction(int(item.lead_id or 0), item.id, item.channel, now, {"ts": ts})
    db.execute(upsert_insert(db)(table(OutboxRow)).values(**row).on_conflict_do_nothing())


# The lead's posts in Slack but its current one `p_current` (its earlier cycles', one deleted
# and posted again): the posts an erasure empties (`redact_lead`).
_EARLIER_POSTS = select(OutboxRow.id, OutboxRow.channel, OutboxRow.result_ts).where(
    OutboxRow.lead_id == bindparam("p_lead_id"),
    OutboxRow.kind == Kind.POST_LEAD,
    OutboxRow.state == DONE,
    OutboxRow.result_ts.is_not(None),
    OutboxRow.result_ts != bindparam("p_current"),
)


def _edit_late(db: Connection, item: OutboxItem, updated: str | None, now: datetime) -> None:
    """An edit of a post of a lead erased while its request was under way (chat.update has no
    version check, so it may land after the erasure's own edit of that post, another
    replica's): an update that rendered the person (`updated`: the post it edited; or tried
    before, an earlier request's post not known) has the lead's post rendered again, as the
    erased lead, and the post it edited emptied if it is an earlier cycle's (tried before:
    each earlier cycle's post, as an earlier request may have edited any of them after the
    erasure emptied it); a retirement (rendered with the person when the lead came back) has
    its post emptied again. An update that rendered the erased lead (no `updated`, at its one
    try) needs nothing. Written now, each lands after this edit's requests ended; keyed by this
    row: once, whichever replica."""
    lead_id = int(item.lead_id or 0)
    earlier: list[tuple[int, str, str]] = []  # posts an earlier request may have edited
    if item.kind == Kind.RETIRE:
        shown = item.payload.get("ts")
    elif updated is not None or item.attempts > 1:
        write_effects(db, [Refresh(lead_id)], now)
        current = db.execute(_POSTED_TS, {"p_lead_id": item.lead_id}).scalar()
        shown = updated if updated != current else None
        if item.attempts > 1:
            params = {"p_lead_id": lead_id, "p_current": current or ""}
            earlier = [
                (int(row_id), str(channel), str(ts))
                for row_id, channel, ts in db.execute(_EARLIER_POSTS, params)
                if ts != shown
            ]
    else:
        return
    rows = [
        _redaction(lead_id, item.id, channel, now, {"ts": ts}, str(of))
        for of, channel, ts in earlier
    ]
    if shown:
        rows.append(_redaction(lead_id, item.id, item.channel, now, {"ts": str(shown)}))
    if rows:
        db.execute(upsert_insert(db)(table(OutboxRow)).on_conflict_do_nothing(), rows)


# The edits of a lead's post that may land after another replica's edit of it (chat.update has
# no version check): an update rendered from the lead as its worker read it, and the retirement
# of an earlier cycle's post rendered when the lead came back.
EDITS = (Kind.UPDATE_LEAD, Kind.RETIRE)


def _edited(db: Connection, item: OutboxItem, now: datetime, updated: str | None = None) -> None:
    """After the requests of an edit of a lead's post ended (`updated`: the post an update
    edited, if one did): the posts it may have shown out of date are retired once more
    (`_retire_again`) or, the lead erased meanwhile, rendered again as the erased lead or
    emptied once more (`_edit_late`)."""
    # Read after this row's outcome was written: an erasure committed meanwhile is seen, and
    # one still to come (it empties the lead's outbox rows: this one too) waits for this
    # transaction, then finds this row over and empties the lead's posts itself.
    erased, retired = _since_edit(db, item)
    if item.kind == Kind.UPDATE_LEAD:
        _retire_again(db, item, now, retired, updated)
    if erased:
        _edit_late(db, item, updated, now)


def _given_up_edit(db: Connection, item: OutboxItem, now: datetime) -> None:
    """An edit of a lead's post given up (Slack refused it for good) after an earlier try:
    this request edited nothing, but an earlier one may have reached Slack, on a post not known
    (its answer lost, a 5xx, its worker died), and landed after a retirement or an erasure's
    edit of that post. So it is followed up as one delivered without a post known (`_edited`
    with no `updated`; keyed by this row: once, whichever replica). Refused at its one try,
    it edited nothing: nothing is needed."""
    if item.kind in EDITS and item.lead_id is not None and item.attempts > 1:
        _edited(db, item, now)


class OutboxStore:
    """The delivery worker's queries: each one short transaction."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def due(
        self, wall: datetime, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, str, str]]:
        """(id, channel, kind) of rows that may be delivered now, oldest first; `after` skips
        the ids up to it (the rows a worker has seen already)."""
        params = {"p_wall": wall, "p_after": after, "p_limit": limit}
        return await self.db.run(
            lambda db: [(int(r[0]), str(r[1]), str(r[2])) for r in db.execute(_DUE, params)]
        )

    async def lease(self, row_id: int, wall: datetime, until: datetime) -> OutboxItem | None:
        """Take the row until `until`; None if it is done, not due, or another worker has it."""
        params = {"p_id": row_id, "p_wall": wall, "p_wall2": wall, "p_until": until}

        def work(db: Connection) -> OutboxItem | None:
            row = db.execute(_lease(db.dialect.name == "sqlite"), params).mappings().first()
            if row is None:
                return None
            return OutboxItem(
                id=int(row["id"]),
                kind=str(row["kind"]),
                lead_id=row["lead_id"],
                channel=str(row["channel"]),
                payload=dict(row["payload"] or {}),
                attempts=int(row["attempts"]),
                unknown=bool(row["unknown_before"]),
                first_try_at=row["first_try_at"],
                tried_until=row["tried_until"],
                created_at=row["created_at"],
                key=row["key"],
            )

        return await self.db.run(work)

    async def delivered(
        self,
        item: OutboxItem,
        now: datetime,
        ts: str | None = None,
        channel: str | None = None,
        *,
        updated: str | None = None,
    ) -> None:
        """The effect happened; a lead's first post also records where its message is. An
        update of a lead's message says which post it edited (`updated`): if it was one of
        an ended cycle, retired meanwhile, it is retired again (`_retire_again`)."""

        def work(db: Connection) -> None:
            params = {"p_id": item.id, "p_state": DONE, "p_now": now, "p_ts": ts, "p_error": None}
            db.execute(_FINISH, params)
            posted = False
            replaces = item.payload.get("replaces")
            if item.kind == Kind.POST_LEAD and item.lead_id is not None and ts and replaces:
                where = channel or item.channel
                posted = mark_reposted(db, item.lead_id, str(replaces), where, ts, now)
            elif item.kind == Kind.POST_LEAD and item.lead_id is not None and ts:
                posted = mark_posted(db, item.lead_id, channel or item.channel, ts, now)
            elif item.kind in (Kind.FEEDBACK, Kind.NURTURE_NOTICE) and item.lead_id is not None:
                event = {
                    "lead_id": item.lead_id,
                    "type": "feedback_posted",
                    "actor": "handoff",
                    "at": now,
                    "data": {"channel": channel or item.channel, "ts": ts},
                }
                insert_events(db, event)
            if ts and item.kind != Kind.HOME:  # a message got through: the channel is mended
                _mend(db, item.channel, now, told=False, shared=item.kind == Kind.UPLOAD)
            # Read after the writes above: an erasure committed meanwhile is seen, and one
            # still to come finds this row done with its ts (and empties it itself).
            if ts and item.lead_id is not None and item.kind in KIND_SENT:
                if db.execute(_ERASED_AT, {"p_lead_id": item.lead_id}).scalar() is not None:
                    _redact_late(db, item, ts, posted, now)
            elif item.kind in EDITS and item.lead_id is not None:
                _edited(db, item, now, updated)

        await self.db.run(work)

    async def retry(
        self, item: OutboxItem, wall: datetime, not_before: datetime, error: str, *, unknown: bool
    ) -> None:
        """Try again at `not_before`; `unknown`: a request so far may have reached Slack."""
        params = {
            "p_id": item.id,
            "p_wall": wall,
            "p_not_before": not_before,
            "p_error": error[:1000],
            "p_unknown": unknown,
        }
        await self.db.run(lambda db: db.execute(_RETRY, params))

    async def failed(
        self,
        item: OutboxItem,
        now: datetime,
        error: str,
        alert: tuple[str, str] | None,
        alert_key: str | None = None,
        *,
        notices: Sequence[Send] = (),
    ) -> None:
        """Give up on the row; `alert` (channel, text) tells people, in the same transaction,
        once per `alert_key` (default: once per row), and so do `notices` (each once per its
        own key). An edit of a lead's post tried before is followed up as one delivered
        (`_given_up_edit`)."""

        def work(db: Connection) -> None:
            params = {"p_id": item.id, "p_state": FAILED, "p_now": now, "p_ts": None}
            db.execute(_FINISH, {**params, "p_error": error[:1000]})
            _given_up_edit(db, item, now)
            if item.kind == Kind.POST_LEAD:  # no group's alert counted it (`_COUNTED_IN`)
                db.execute(
                    _MARK_TOLD, {"p_id": item.id, "p_payload": {**item.payload, REFUSED_IN: 0}}
                )
            told = list(notices)
            if alert is not None:
                channel, text = alert
                told.append(Send(channel, text, alert_key or f"alert:{item.id}", item.lead_id))
            if told:
                write_effects(db, told, now)

        await self.db.run(work)

    async def home_waits(
        self,
        item: OutboxItem,
        now: datetime,
        wall: datetime,
        error: str,
        alert: tuple[str, str, str] | None,
        until: datetime | None = None,
    ) -> None:
        """Slack refused a home for the whole app (its Home tab is off): the row waits as it
        is, pending and not in flight, so later changes to the person add nothing to it, and
        every home waiting is held with it: not due until `until` (default: `wall` plus
        `HOMES_HELD_FOR`), unless `probe_home` or `homes_back` makes it due sooner. `alert`
        (channel, text, key) tells people, in the same transaction, once per key."""
        held = {"p_until": until or wall + HOMES_HELD_FOR, "p_error": error[:1000]}

        def work(db: Connection) -> None:
            params = {"p_id": item.id, "p_wall": wall, "p_not_before": held["p_until"]}
            db.execute(_RETRY, {**params, "p_error": held["p_error"], "p_unknown": False})
            db.execute(_HOLD_HOMES, {"p_wall": wall, **held})
            if alert is not None:
                channel, message, key = alert
                write_effects(db, [Send(channel, message, key)], now)

        await self.db.run(work)

    async def hold_homes(
        self, ids: Sequence[int], wall: datetime, error: str, until: datetime
    ) -> None:
        """Hold the homes `ids` (written after Slack refused them all) with the others, as
        `home_waits` does, but for one in flight."""
        params = {"p_ids": sorted(ids), "p_wall": wall, "p_until": until, "p_error": error[:1000]}
        await self.db.run(lambda db: db.execute(_HOLD_THOSE, params))

    async def probe_home(self, wall: datetime) -> None:
        """Make the oldest home held due at `wall`, to ask Slack whether it takes homes again."""
        params = {"p_wall": wall, "p_wall2": wall}
        await self.db.run(lambda db: db.execute(_PROBE_HOME, params))

    async def homes_back(self, wall: datetime) -> None:
        """Slack takes homes again: every home held is due at `wall` (one statement), for
        whichever replica reads it first."""
        params = {"p_wall": wall, "p_wall2": wall}
        await self.db.run(lambda db: db.execute(_RELEASE_HOMES, params))

    async def homes_waiting(self) -> int:
        """How many people's homes wait to be published."""
        return await self.db.run(lambda db: int(db.execute(_HOMES_PENDING).scalar() or 0))

    async def home_refused(self) -> str | None:
        """What Slack said of a home still waiting if it refused it for the whole app."""
        return await self.db.run(lambda db: db.execute(_HOME_REFUSED).scalar())

    async def refused(self, item: OutboxItem, now: datetime, error: str, alert: str | None) -> None:
        """Give up on the row Slack refused for good; the managers hear it in `alert` (a
        channel) in the one alert of its channel and error, opened or counted in the same
        transaction. An edit of a lead's post tried before is followed up as one delivered
        (`_given_up_edit`)."""

        def work(db: Connection) -> None:
            params = {"p_id": item.id, "p_state": FAILED, "p_now": now, "p_ts": None}
            db.execute(_FINISH, {**params, "p_error": error[:1000]})
            _given_up_edit(db, item, now)
            if alert is not None:
                _group_refusal(db, item, error, alert, now)

        await self.db.run(work)

    async def refusals(self, group_id: int) -> Refusals | None:
        """The refusals an alert shows (its first post renders them)."""
        return await self.db.run(lambda db: _refusals(db, group_id))

    async def recount(self, group_id: int) -> tuple[Refusals | None, str, str | None]:
        """For a re-render of the group's alert: its alert's state and message ts, and, once
        the alert is no longer pending, the group as it is now (a refusal from then on asks
        for another re-render)."""

        def work(db: Connection) -> tuple[Refusals | None, str, str | None]:
            sent = db.execute(
                select(OutboxRow.state, OutboxRow.result_ts).where(
                    OutboxRow.key == f"refused:{group_id}"
                )
            ).first()
            state, ts = (str(sent[0]), sent[1]) if sent is not None else (FAILED, None)
            if state == PENDING:
                return None, state, ts
            db.execute(
                update(GROUPS).where(RefusalGroup.id == group_id).values(recount_waiting=False)
            )
            return _refusals(db, group_id), state, ts

        return await self.db.run(work)

    async def recheck(self, group_id: int) -> tuple[Refusals | None, bool]:
        """After an update of the group's alert landed in Slack: the group as it is now, and
        whether a re-render not yet started waits (it reads the group later, so its update
        lands after that one)."""
        query = select(RefusalGroup.recount_waiting, *_REFUSALS.selected_columns).where(
            RefusalGroup.id == group_id
        )

        def work(db: Connection) -> tuple[Refusals | None, bool]:
            row = db.execute(query).first()
            if row is None:
                return None, False
            return _shown(db, _as_refusals(row[1:])), bool(row[0])

        return await self.db.run(work)

    async def mended(self, channel: str, now: datetime) -> int:
        """Slack says `channel` was unarchived: post again every open lead whose post there was
        refused, and every message to marketing, report and retirement of an earlier cycle's
        post refused there, once, and tell the managers in the alert about it. How many
        leads."""
        return await self.db.run(lambda db: _mend(db, channel, now, told=True))

    async def moved(self, channels: Mapping[str, str], now: datetime) -> dict[tuple[str, str], int]:
        """The segments' channels now (segment → channel, from sla.yaml): every open lead of a
        segment whose post Slack refused in another channel (archived, the app out of it,
        deleted) is posted in its segment's channel, once per refused post (the key a mend of
        the old channel would write: it is not posted there again either). The managers'
        alert that counted each refused post is re-rendered, once, to say where its leads
        went (the refused post records it, by whichever replica wrote its new post). How many
        leads go from each old channel to each new one (not one erased as its post is written:
        the delivery worker posts nothing for it)."""
        if not channels:
            return {}

        def work(db: Connection) -> dict[tuple[str, str], int]:
            latest: dict[int, tuple[int, dict[str, Any], str, str, int | None]] = {}
            # A lead moved before (sla.yaml changed twice, its post refused in each channel):
            # its earlier refused posts that an alert tells as moved (lead → row, payload).
            earlier: dict[int, list[tuple[int, dict[str, Any]]]] = {}
            for row_id, lead_id, payload, old, segment, group in db.execute(
                _moved_posts(channels)
            ):  # each lead's last refused post
                if int(lead_id) in latest and MOVED_IN in latest[int(lead_id)][1]:
                    before = latest[int(lead_id)]
                    earlier.setdefault(int(lead_id), []).append((before[0], before[1]))
                found = (int(row_id), dict(payload or {}), str(old), str(segment), group)
                latest[int(lead_id)] = found
            if not latest:
                return {}
            moves: dict[str, tuple[int, str, str]] = {}  # the new row's key → (lead, old, new)
            marks: dict[str, dict[str, Any]] = {}  # the new row's key → its refused post's mark
            rows = []
            for lead_id, (row_id, payload, old, segment, group) in latest.items():
                row = _post_again(lead_id, row_id, payload, channels[segment], now)
                moves[row["key"]] = (lead_id, old, channels[segment])
                if group is not None:  # refused before groups existed: moved untold
                    mark = {MOVED_IN: int(group), MOVED_TO: channels[segment], MOVED_AS: segment}
                    marks[row["key"]] = {"p_id": row_id, "p_payload": {**payload, **mark}}
                rows.append(row)
            # One statement for them all (SQLAlchemy sends it as multi-row INSERTs of 1,000
            # rows), in the rows' order: replicas writing the same keys at once wait for each
            # other, key by key, and each key is written once (a taken one is left out).
            keys = list(db.execute(_insert_keyed(db.dialect.name), rows).scalars())
            written = [moves[key] for key in keys]
            erased: set[int] = set()  # SQLite: one writer, none between the look and the write
            if written and db.dialect.name == "postgresql":
                lead_ids = [lead_id for lead_id, _, _ in written]
                erased = set(db.execute(_ERASED_AMONG, {"p_lead_ids": lead_ids}).scalars())
            sent: dict[tuple[str, str], int] = {}
            for lead_id, old, new in written:
                if lead_id not in erased:  # an erased lead's post is never posted: not counted
                    sent[(old, new)] = sent.get((old, new), 0) + 1
            told = [marks[key] for key in keys if key in marks]
            # The alerts telling a lead's earlier move say where it is posted now, not in the
            # channel that refused it since (each re-rendered, by the replica that wrote it).
            for key in keys:
                lead_id, _, new = moves[key]
                for row_id, payload in earlier.get(lead_id, []):
                    told.append({"p_id": row_id, "p_payload": {**payload, MOVED_TO: new}})
            if told:  # written by the one replica that wrote the posts: each alert told once
                db.execute(_MARK_TOLD, told)
                groups = sorted({int(mark["p_payload"][MOVED_IN]) for mark in told})
                db.execute(
                    update(GROUPS)
                    .where(RefusalGroup.id.in_(groups))
                    .values(moved_at=func.coalesce(RefusalGroup.moved_at, now))
                )
                for group_id in groups:
                    _recount(db, group_id, now)
            return sent

        return await self.db.run(work)

    async def joined(self, channel: str, now: datetime) -> int:
        """Slack says the app joined `channel` (invited back): as `mended`, and the charts
        refused there for want of membership come back too. How many leads."""
        return await self.db.run(lambda db: _mend(db, channel, now, told=True, shared=True))

    async def repost(
        self,
        item: OutboxItem,
        channel: str,
        ts: str,
        now: datetime,
        alert: tuple[str, str] | None,
    ) -> bool:
        """The lead's post `ts` in `channel` is gone from Slack (deleted there), as the update
        `item` found: write a row posting the lead again and `alert` (channel, text), once per
        deleted post. True: `item` is done (the new post shows the lead as it is when sent);
        False: it waits, since a post replacing `ts` is on its way, or has just replaced it."""

        def work(db: Connection) -> bool:
            lead_id = int(item.lead_id or 0)
            done = {"p_id": item.id, "p_state": DONE, "p_now": now, "p_ts": None, "p_error": None}
            found = db.execute(_MESSAGE_OF, {"p_lead_id": lead_id}).first()
            if found is None or found.erased_at is not None:  # erased meanwhile: never again
                db.execute(_FINISH, done)
                # This request edited nothing, but an earlier one (tried before) may have
                # landed after the erasure's edit: followed up as an update delivered without
                # a post known.
                _edited(db, item, now)
                return True
            if found.message_ts != ts:
                return False  # replaced meanwhile: update the new post
            key = repost_key(lead_id, ts)
            payload = {"replaces": ts}
            row = outbox_row(
                Kind.POST_LEAD, channel, now, lead_id=lead_id, key=key, payload=payload
            )
            insert_row = upsert_insert(db)(table(OutboxRow)).values(**row).on_conflict_do_nothing()
            if db.execute(insert_row).rowcount == 1:
                if alert is not None:
                    told = Send(alert[0], alert[1], f"deleted:{lead_id}:{ts}", lead_id)
                    write_effects(db, [told], now)
            elif (
                db.execute(select(OutboxRow.state).where(OutboxRow.key == key)).scalar() == PENDING
            ):
                return False  # it may have rendered the lead before this change
            db.execute(_FINISH, done)
            # An earlier request of it may have gone astray, and the lead may have been erased
            # since it was read above (`_edited` reads it again).
            _edited(db, item, now)
            return True

        return await self.db.run(work)

    async def send(self, effects: Sequence[Effect], now: datetime) -> None:
        """Write effects the delivery worker decided (an alert to the operator)."""
        await self.db.run(lambda db: write_effects(db, effects, now))

    async def sent(self, row_id: int) -> tuple[str, str | None]:
        """A row's state, and the ts of the message it sent (None: none, or not yet)."""
        params = {"p_id": row_id}
        row = await self.db.run(lambda db: db.execute(_SENT, params).first())
        return (str(row[0]), row[1]) if row is not None else (FAILED, None)

    async def outcome(self, row_id: int, wall: datetime) -> tuple[bool, str | None]:
        """Whether a request of the row may still be under way at `wall` (leased, its outcome
        not known), and the ts of the message it sent (None: none, or not known)."""
        params = {"p_id": row_id}
        row = await self.db.run(lambda db: db.execute(_OUTCOME, params).first())
        if row is None:
            return False, None
        unknown, lease_until, ts = row
        return bool(unknown) and lease_until is not None and lease_until > wall, ts

    async def redactions(self, lead_ids: Sequence[int], since: datetime) -> list[Redaction]:
        """What became of the changes emptying the leads' Slack messages written at or after
        `since` (an erasure's): each redaction and re-render of their posts."""
        params = {"p_leads": list(lead_ids), "p_since": since}
        found = await self.db.run(lambda db: db.execute(_REDACTIONS, params).all())
        return [
            Redaction(int(lead or 0), kind, channel, state, error)
            for lead, kind, channel, state, error in found
        ]

    async def message_ts(self, lead_id: int) -> str | None:
        params = {"p_lead_id": lead_id}
        return await self.db.run(lambda db: db.execute(_POSTED_TS, params).scalar())

    async def post_waiting(self, lead_id: int) -> bool:
        """Is the lead's first post still to be delivered?"""
        params = {"p_lead_id": lead_id}
        return await self.db.run(lambda db: db.execute(_POST_WAITING, params).first() is not None)

    async def pending(self, *, homes: bool = True) -> int:
        """How many rows wait to be delivered (`homes`: counting App Homes)."""
        count = _PENDING_COUNT if homes else _PENDING_NOT_HOMES
        return await self.db.run(lambda db: int(db.execute(count).scalar() or 0))

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Retention: empty the delivered rows done before `before`; how many were pruned.

        A row without a key is deleted. A row with a key (an effect that must happen once: a
        lead's post, a digest, a reminder) is never deleted: only its payload is emptied, so
        its unique key keeps refusing a second copy of that effect for ever, whatever decides
        it again and however late (deleting it would let that copy in, a second delivery).
        Rows pending or given up are kept. In batches, each its own short transaction."""
        return await prune(self.db, OutboxRow, before, batch)

    async def oldest_pending(self) -> datetime | None:
        """When the oldest row still to deliver was written (None: none waits)."""
        return (await self.backlog())[1]

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """The pending rows by kind, and when the oldest of them was written."""

        return await self.db.run(lambda db: backlog(db, _PENDING_BY_KIND))

    async def release_leases(self, wall: datetime) -> int:
        """End every lease now (at start-up, when this process is the database's only user):
        their requests died with the previous process, so their outcome stays unknown."""
        return await self.db.run(lambda db: release_leases(db, OutboxRow, wall))

    async def rows(self) -> list[dict[str, Any]]:
        """Every row, in id order (tests and `handoff outbox`)."""
        return await self.db.run(lambda db: all_rows(db, OutboxRow))

"""The lead store: every query Handoff runs, each unit of work in one short transaction.

Statements are SQLAlchemy Core, built once with bound parameters: the claim runs on the
button-press path, where the ORM's per-call cost would be most of the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    String,
    Update,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from bot.domain.activity import Deal, DealStage, apply_stage
from bot.domain.cadence import Attempt, Cadence, reminder_due_at
from bot.domain.crm import OwnerChanged
from bot.domain.effects import Effect, RefreshHomes
from bot.domain.erasure import TOMBSTONE, ErasureKey, digest_key_id
from bot.domain.escalation import HANDED_DEADLINES
from bot.domain.lead import EventView, LeadView, Stage, evolve
from bot.domain.rotation import RepLoad
from bot.domain.routing import BY_MANAGER, COUNTED_ON, AccountLead, counted_to
from storage.away import AWAY_AT, everyone_away
from storage.crm import forget_crm, insert_events
from storage.crm_inbox import Notification, finish, forget_records
from storage.cycles import keep_ended
from storage.db import Database, GroupCommit, fetch_driven, insert_many, upsert_insert
from storage.outbox import mark_posted, redact_lead, settled_alert, write_effects
from storage.rotation import (
    RotationAsk,
    account_lead,
    account_lead_pg,
    account_leads_pg,
    count_reassignment,
    read_standing,
    suggest,
    suggest_all,
    take_all,
)
from storage.tables import (
    OPEN_MQL,
    OPEN_SAL,
    CrmMergeRow,
    ErasureKeyRow,
    EventRow,
    LeadRow,
    OutboxRow,
    Person,
    SlaVersion,
    table,
)

LEADS = LeadRow.__table__
EVENTS = EventRow.__table__
_VIEW_FIELDS = [name for name in LeadView.__dataclass_fields__ if name != "stage"]
VIEW_FIELDS = tuple(_VIEW_FIELDS)  # the columns a LeadView reads (the stage aside)
# A new lead's columns, from its view: not its id, nor its answered questions (a new lead has
# none: the column stays NULL, one value fewer to encode a lead).
_ROW_FIELDS = tuple(name for name in _VIEW_FIELDS if name not in ("id", "info_pauses"))
_ROW_OF = attrgetter(*_ROW_FIELDS)  # their values, read at C speed


@dataclass(frozen=True)
class Member:
    """What Slack says of a workspace member (None: it did not say)."""

    time_zone: str | None = None
    display_name: str | None = None
    guest: bool | None = None  # a Slack guest (single- or multi-channel)
    deactivated: bool | None = None


Events = list[tuple[str, str, dict[str, Any]]]  # (type, actor, data) of one lead's change


@dataclass(frozen=True)
class AccountAsk:
    """Lead-to-account matching, looked up in the intake's own transaction (one round trip,
    not a transaction of its own): the lead's account domain, since when a closed lead of it
    counts, and the lead as the use case routes it when an owned lead of the account is found."""

    domain: str
    since: datetime
    routed: Callable[[AccountLead], NewLead]


@dataclass(frozen=True)
class OwnerCheck:
    """The rep a routing rule chose (a named account's owner, the same account's, the partner
    manager, the fallback owner), to be read in the intake's own transaction: if they are
    away, the lead as the use case routes it again past everyone away (`rerouted(away=…)`)."""

    rep: str
    rerouted: Callable[..., NewLead]


@dataclass(frozen=True)
class NewLead:
    """A routed lead ready to store: the use case decided everything in it."""

    lead: LeadView  # as it will be stored (the database gives it its id)
    payload: dict[str, Any]  # the request as it arrived
    mql: bool  # report facts fixed at arrival: qualified, all required fields, fits the ICP
    complete: bool
    icp: bool | None  # None: the SLA defines no ICP
    rotation: RotationAsk | None = None  # a turn of its pool's rotation picks its owner
    account: AccountAsk | None = None  # its account's owned lead to look for first
    owner_check: OwnerCheck | None = None  # the rep a rule chose, unless they are away
    events: Events = field(default_factory=list)
    # Its side effects, decided by the use case from the lead as stored (with its id; the
    # suggestion of its rotation turn, taken last, aside).
    effects: Callable[[LeadView], list[Effect]] = lambda lead: []

    def columns(self) -> dict[str, Any]:
        """The lead's row, but for its id."""
        values = dict(zip(_ROW_FIELDS, _ROW_OF(self.lead), strict=True))
        values |= {"stage": self.lead.stage.value, "payload": self.payload}
        return values | {"mql": self.mql, "complete": self.complete, "icp": self.icp}


def lead_view(row: RowMapping | None) -> LeadView | None:
    if row is None:
        return None
    return LeadView(stage=Stage(row["stage"]), **{name: row[name] for name in _VIEW_FIELDS})


def lead_views(rows: Any) -> list[LeadView]:
    return [view for row in rows.mappings() if (view := lead_view(row))]


def _event(lead_id: int, kind: str, actor: str, at: datetime, /, **data: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "type": kind, "actor": actor, "at": at, "data": data}


# The key of a `reassigned` event's data holding when the CRM made the change of owner it
# applies (HubSpot's `occurredAt`, Salesforce's `at`; without one, when the notification first
# arrived: storage/crm_inbox.py `Notification.arrived_at`).
OCCURRED_AT = "occurred_at"

# The PostgreSQL advisory lock merges and erasures take (any constant of our own: "HOMR").
_MERGE_LOCK = 0x484F4D52


def _surviving(db: Connection, crm_id: str) -> str:
    """The record `crm_id` lives on in, through the merges remembered (each stored at its end
    already, so one step; a loop in the CRM's data ends where it comes back)."""
    seen = {crm_id}
    step = select(CrmMergeRow.crm_id).where(CrmMergeRow.merged_id == bindparam("p_id"))
    while (onto := db.execute(step, {"p_id": crm_id}).scalar()) is not None and onto not in seen:
        seen.add(onto)
        crm_id = onto
    return crm_id


_SELECT_LEAD = select(LEADS)
_BY_ID = _SELECT_LEAD.where(LeadRow.id == bindparam("p_lead_id"))
_BY_EXTERNAL_ID = _SELECT_LEAD.where(LeadRow.external_id == bindparam("p_external_id"))
_EVENTS_OF = (
    select(EVENTS)
    .where(EventRow.lead_id == bindparam("p_lead_id"))
    .order_by(EventRow.at, EventRow.id)
)
_LOG_ATTEMPT = (
    update(table(LeadRow))
    .where(LeadRow.id == bindparam("p_lead_id"), LeadRow.stage == Stage.SAL.value)
    .values(
        attempts=LeadRow.attempts + 1,
        first_touch_at=func.coalesce(
            LeadRow.first_touch_at, bindparam("p_now", type_=LEADS.c.first_touch_at.type)
        ),
    )
    .returning(LeadRow.attempts)
)
_RECENT_ATTEMPTS = select(EventRow.data).where(
    EventRow.lead_id == bindparam("p_lead_id"),
    EventRow.type == "attempt",
    EventRow.actor == bindparam("p_actor"),
    EventRow.at >= bindparam("p_since"),
)
_ATTEMPTS_OF = select(LeadRow.attempts, LeadRow.stage).where(LeadRow.id == bindparam("p_lead_id"))
# The attempts of the lead's current cycle: its last `attempts` attempt events (a new cycle
# starts the count again at 0, and each counted attempt writes one event).
_CYCLE_ATTEMPTS = (
    select(EventRow.at, EventRow.data)
    .where(EventRow.lead_id == bindparam("p_lead_id"), EventRow.type == "attempt")
    .order_by(EventRow.id.desc())
    .limit(bindparam("p_count"))
)
_REMIND = bindparam("p_remind", type_=LEADS.c.next_action_at.type)
_KEEP_CADENCE = (
    update(table(LeadRow))
    .where(LeadRow.id == bindparam("p_lead_id"))
    .values(
        next_touch_due_at=bindparam("p_next_touch", type_=LEADS.c.next_touch_due_at.type),
        touches_counted=bindparam("p_counted"),
        follow_up_met_at=bindparam("p_met", type_=LEADS.c.follow_up_met_at.type),
        # The sweep looks no later than the reminder of the next touch.
        next_action_at=case(
            (_REMIND.is_(None), LeadRow.next_action_at),
            (LeadRow.next_action_at.is_(None), _REMIND),
            (LeadRow.next_action_at > _REMIND, _REMIND),
            else_=LeadRow.next_action_at,
        ),
    )
)
# The service's cadence rule for one lead: its attempts of this cycle → where it stands.
Follow = Callable[[list[Attempt]], Cadence]
_LOCK_LEAD = select(LeadRow.id).where(LeadRow.id == bindparam("p_lead_id")).with_for_update()
_CRM_EVENTS_OF = select(EventRow.data).where(
    EventRow.lead_id == bindparam("p_lead_id"),
    EventRow.type.in_(["attempt", "opportunity", "won", "lost"]),
)
_DEAL_OF = (
    select(*(LEADS.c[name] for name in Deal.__dataclass_fields__))
    .where(LeadRow.id == bindparam("p_lead_id"))
    .with_for_update()
)
_DISPOSE = (
    update(table(LeadRow))
    .where(
        LeadRow.id == bindparam("p_lead_id"),
        LeadRow.stage == Stage.SAL.value,
        LeadRow.dispositioned_at.is_(None),
    )
    .values(
        stage=bindparam("p_stage"),
        disposition_code=bindparam("p_code"),
        disposition_reason=bindparam("p_reason"),
        disposition_note=bindparam("p_note"),
        dispositioned_at=bindparam("p_now"),
        feedback_at=func.coalesce(
            LeadRow.feedback_at, bindparam("p_now", type_=LEADS.c.feedback_at.type)
        ),
        # Qualified is "confirmed fit and interest through direct conversation" (seed 002): a
        # touch, if none was logged (it read as a first-touch miss, and left speed to lead).
        first_touch_at=case(
            (
                bindparam("p_stage") == Stage.SQL.value,
                func.coalesce(
                    LeadRow.first_touch_at, bindparam("p_now", type_=LEADS.c.first_touch_at.type)
                ),
            ),
            else_=LeadRow.first_touch_at,
        ),
        next_action_at=bindparam("p_next", type_=LEADS.c.next_action_at.type),
    )
)
# "Contacted – progressing": the first feedback on an open lead, once; it stays open and owned.
_PROGRESS = (
    update(table(LeadRow))
    .where(
        LeadRow.id == bindparam("p_lead_id"),
        LeadRow.stage == Stage.SAL.value,
        LeadRow.feedback_at.is_(None),
    )
    .values(
        feedback_at=bindparam("p_now"),
        # "Contacted": a touch, if none was logged.
        first_touch_at=func.coalesce(
            LeadRow.first_touch_at, bindparam("p_now", type_=LEADS.c.first_touch_at.type)
        ),
    )
)


@cache
def _claim_statement(by_version: bool, by_segment: str | None, windowed: bool = True) -> Update:
    conditions = [
        LeadRow.id == bindparam("p_lead_id"),
        LeadRow.owner.is_(None),
        LeadRow.stage == Stage.MQL.value,
        LeadRow.erased_at.is_(None),  # a stale Claim on an erased lead is refused (`allowed`)
    ]
    if windowed:  # bot/domain/claim.py: a lead held for its suggested owner is theirs alone
        conditions.append(
            or_(
                LeadRow.claim_opens_at.is_(None),
                LeadRow.claim_opens_at <= bindparam("p_now", type_=LEADS.c.claim_opens_at.type),
                LeadRow.suggested_owner == bindparam("p_owner"),
                LeadRow.suggested_owner.is_(None),  # held for nobody: open to the pool
            )
        )
    if by_version:
        conditions.append(LeadRow.sla_version == bindparam("p_sla_version"))
    if by_segment == "one":  # the usual rep: one pool, and a statement prepared once
        conditions.append(LeadRow.segment == bindparam("p_segment"))
    elif by_segment == "many":
        conditions.append(LeadRow.segment.in_(bindparam("p_segments", expanding=True)))
    check = bindparam("p_check", type_=LEADS.c.next_action_at.type)
    return (
        update(table(LeadRow))
        .where(*conditions)
        .values(
            owner=bindparam("p_owner"),
            owner_zone=bindparam("p_owner_zone", type_=LEADS.c.owner_zone.type),
            claimed_at=func.coalesce(
                LeadRow.claimed_at, bindparam("p_now", type_=LEADS.c.claimed_at.type)
            ),
            stage=Stage.SAL.value,
            disposition_due_at=bindparam("p_due"),
            final_due_at=bindparam("p_final", type_=LEADS.c.final_due_at.type),
            # The cadence's first touch is the tier's first-touch deadline (cadence.follow).
            next_touch_due_at=LeadRow.first_touch_due_at,
            # The feedback clocks start: look no later than the first step of either.
            next_action_at=case(
                (LeadRow.next_action_at.is_(None), check),
                (LeadRow.next_action_at > check, check),
                else_=LeadRow.next_action_at,
            ),
        )
        # The lead as claimed, for the effects decided from it: no read of its own.
        .returning(*(LEADS.c[name] for name in (*_VIEW_FIELDS, "stage")))
    )


Decided = Callable[[LeadView], Sequence[Effect]]  # a change's effects, from the lead as changed


@dataclass(frozen=True)
class _Claim:
    statement: Update
    params: dict[str, Any]
    effects: Decided


def _keep_merged(db: Connection, digests: set[str], crm_id: str, now: datetime) -> None:
    """CRM records merged with an erased lead's record (`crm_id`, its digest), kept as digests
    only (`by_erased_id` finds the lead by them); each once, whoever writes it first. The keys
    they were made with are recorded as an erasure's are, for the start-up check: a merge told
    after an erasure made before the key may leave the only digests of this one."""
    insert_row = upsert_insert(db)
    made = {key_id for d in digests if (key_id := digest_key_id(d))}
    if made:
        keys = [{"key_id": key_id, "first_erased_at": now} for key_id in sorted(made)]
        db.execute(insert_row(table(ErasureKeyRow)).values(keys).on_conflict_do_nothing())
    rows = [{"merged_id": d, "crm_id": crm_id, "merged_at": now} for d in sorted(digests)]
    db.execute(insert_row(table(CrmMergeRow)).values(rows).on_conflict_do_nothing())


def _claimed(lead: LeadView, owner: str, now: datetime) -> dict[str, Any]:
    """A claim's event. Of a lead held for someone else (its suggested owner, which a claim
    leaves as it was) or for nobody, with that rep as `from` (None: nobody): the claim takes it
    from them, and the report charges them a first touch whose clock ran while they had it
    (storage/reports.py `handed_over`). A claim by the rep it was held for has no `from`, nor
    has any claim written before claims said so."""
    if lead.suggested_owner == owner:
        return _event(lead.id, "claimed", owner, now)
    return _event(lead.id, "claimed", owner, now, **{"from": lead.suggested_owner})


def _claim_all(db: Connection, claims: list[_Claim]) -> list[bool]:
    """Each claim's conditional update (in lead order, so replicas lock leads in the same
    order), then the winners' events and effects, one statement per kind for all of them."""
    claimed: list[LeadView | None] = [None] * len(claims)
    for index in sorted(range(len(claims)), key=lambda i: claims[i].params["p_lead_id"]):
        claim = claims[index]
        claimed[index] = lead_view(db.execute(claim.statement, claim.params).mappings().first())
    winners = [(claim, lead) for claim, lead in zip(claims, claimed, strict=True) if lead]
    if winners:
        events = [_claimed(lead, c.params["p_owner"], c.params["p_now"]) for c, lead in winners]
        insert_events(db, events)
        # A burst's presses share `now` closely; each effect is keyed by its own lead.
        effects = [effect for c, lead in winners for effect in c.effects(lead)]
        write_effects(db, effects, winners[0][0].params["p_now"])
    return [lead is not None for lead in claimed]


@dataclass(frozen=True)
class Intaken:
    """What storing a routed lead came to: the lead as stored, whether this request created
    it, and whether it was `known` before (the use case then sees what changed)."""

    lead: LeadView
    created: bool
    known: bool = False


_INSERT_LEAD = insert(table(LeadRow))
# PostgreSQL: the rows inserted answer with their ids (one round trip: SQLAlchemy sends a batch
# as one multi-row INSERT … RETURNING); SQLite's driver executemany cannot, so it reads them.
_INSERT_LEAD_RETURNING = _INSERT_LEAD.returning(LeadRow.external_id, LeadRow.id)
_IDS_OF = select(LeadRow.external_id, LeadRow.id).where(
    LeadRow.external_id.in_(bindparam("p_external_ids", expanding=True))
)
_BY_EXTERNAL_IDS = _SELECT_LEAD.where(
    LeadRow.external_id.in_(bindparam("p_external_ids", expanding=True))
)


def _intake_all(
    key: ErasureKey, db: Connection, batch: list[tuple[NewLead, datetime]]
) -> list[Intaken]:
    """Store a batch of routed leads in one transaction, each answered as if alone: a lead
    whose external id is stored answers that lead (`known`), a second of the same id in the
    batch answers the first's (as a concurrent request would); the others are inserted with
    one statement, their events, outbox rows and App Home requests one statement each, and
    their rotations' turns last, each segment locked once, so the lock is held the least."""
    stored, accounts, away = _stored_and_accounts(db, batch, key)
    fresh: dict[str, int] = {}  # external id → the index of the batch's lead that stores it
    leads: list[tuple[NewLead, datetime]] = []
    for index, (new, now) in enumerate(batch):
        external_id = new.lead.external_id
        if external_id in stored or external_id in fresh:
            continue
        fresh[external_id] = index
        new = _by_account(new, index, accounts)
        if new.owner_check is not None:  # the rule's rep, unless away: then on down the rules
            if new.owner_check.rep in (everyone := away()):
                new = _by_account(new.owner_check.rerouted(away=everyone), index, accounts)
        leads.append((new, now))
    views = _insert_leads(db, leads) if leads else {}
    answers: list[Intaken] = []
    for index, (new, _) in enumerate(batch):
        external_id = new.lead.external_id
        if external_id in stored:
            answers.append(Intaken(stored[external_id], False, known=True))
        else:
            answers.append(Intaken(views[external_id], fresh[external_id] == index))
    return answers


def _by_account(
    new: NewLead, index: int, accounts: Callable[[int, AccountAsk], AccountLead | None]
) -> NewLead:
    """`new` routed again to its account's owner, if it asks and one is found."""
    if new.account is None:
        return new
    found = accounts(index, new.account)
    return new if found is None else new.account.routed(found)


_Accounts = Callable[[int, AccountAsk], AccountLead | None]


def _stored_and_accounts(
    db: Connection, batch: list[tuple[NewLead, datetime]], key: ErasureKey
) -> tuple[dict[str, LeadView], _Accounts, Callable[[], frozenset[str]]]:
    """The batch's leads already stored (by external id), the look-up of the owned lead of a
    batch lead's account (lead-to-account matching: by the lead's place in the batch), and
    everyone away at the batch's time (the routing rules' reps pass over them). PostgreSQL:
    all three in one statement (the account look-ups and who is away joined to the read of
    which leads are stored, which runs anyway: no round trip of their own), the stored leads'
    rows read after, only when there are any; SQLite (in-process): one look-up each, who is
    away read once, when first asked."""
    wanted = sorted({new.lead.external_id for new, _ in batch})
    asks = [(index, new.account) for index, (new, _) in enumerate(batch) if new.account]
    at = batch[0][1]  # a batch's leads arrive together
    # An erased lead keeps its external id's digest (keyed, or unkeyed from before the key):
    # the same id sent again finds it.
    erased = {
        digest: external_id for external_id in wanted for digest in key.tombstones(external_id)
    }
    if db.dialect.name != "postgresql":
        rows = db.execute(_BY_EXTERNAL_IDS, {"p_external_ids": wanted + sorted(erased)})
        stored = _by_sent_id(lead_views(rows), erased)
        return stored, lambda _, ask: account_lead(db, ask.domain, ask.since), _once(db, at)
    one = len(wanted) == 1 and len(asks) <= 1  # a lead alone: plain parameters
    params: dict[str, Any] = (
        dict(
            zip(
                ("p_external_id", "p_erased_id", "p_unkeyed_id"),
                (wanted[0], *key.tombstones(wanted[0])),
                strict=True,
            )
        )
        if one
        else {"p_external_ids": wanted + sorted(erased)}
    )
    # Who is away, when a rule may name a rep (found now, or by the account look-up).
    with_away = bool(asks) or any(new.owner_check for new, _ in batch)
    if with_away:
        params["p_away_now"] = at
    if asks and one:
        params |= {"p_domain": asks[0][1].domain, "p_since": asks[0][1].since}
    elif asks:
        params |= {
            "p_domains": [ask.domain for _, ask in asks],
            "p_sinces": [ask.since for _, ask in asks],
        }
    known, found, away = [], {}, set()
    statement = _stored_and_accounts_pg(one, bool(asks), with_away)
    for asked, lead_id, owner in fetch_driven(db, statement, params):
        if asked is None:  # `owner` carries the stored lead's external id
            known.append(str(owner))
        elif asked == 0:  # `owner` is away
            away.add(str(owner))
        else:  # the ask's 1-based place in `asks`
            found[asks[asked - 1][0]] = AccountLead(int(lead_id), str(owner))
    stored = {}
    if known:  # a lead sent again (rare): its whole row, read now
        rows = db.execute(_BY_EXTERNAL_IDS, {"p_external_ids": sorted(known)})
        stored = _by_sent_id(lead_views(rows), erased)
    asked = {index for index, _ in asks}
    # A lead routed again in the batch (its named account's owner away) asks anew: alone.
    away_now = frozenset(away)
    return (
        stored,
        lambda index, ask: (
            found.get(index) if index in asked else account_lead(db, ask.domain, ask.since)
        ),
        (lambda: away_now) if with_away else _once(db, at),
    )


def _by_sent_id(views: list[LeadView], erased: dict[str, str]) -> dict[str, LeadView]:
    """The stored leads by the external id the batch sent: an erased one by the id its
    digest stands for."""
    return {erased.get(view.external_id, view.external_id): view for view in views}


def _once(db: Connection, at: datetime) -> Callable[[], frozenset[str]]:
    """Everyone away at `at`, read at the first call only."""
    read: list[frozenset[str]] = []

    def away() -> frozenset[str]:
        if not read:
            read.append(everyone_away(db, at))
        return read[0]

    return away


@cache
def _stored_and_accounts_pg(one: bool, accounts: bool = True, away: bool = False) -> Any:
    """PostgreSQL: which of `p_external_ids` are stored (`asked` null, the external id in
    `owner`) and the accounts' owned leads (`asked`: the account's place in `p_domains`), as
    one result of three narrow columns (the stored leads' whole rows are read after, when
    there are any). `one`: a lead alone, in plain parameters (`p_external_id`, `p_domain`,
    `p_since`), a statement PostgreSQL plans once and keeps; the array form's plan depends on
    the arrays' lengths, so PostgreSQL plans it at every execution (worth it for a batch).
    `away`: everyone away at `p_away_now` too (`asked` 0, the user in `owner`)."""
    is_stored: ColumnElement[bool]
    if one:  # the id, or a digest an erasure left of it: `= ANY (ARRAY[…])`, an index scan
        is_stored = LeadRow.external_id.in_(
            [
                bindparam("p_external_id", type_=String),
                bindparam("p_erased_id", type_=String),
                bindparam("p_unkeyed_id", type_=String),
            ]
        )
    else:  # one array parameter: an expanding list is rendered again at every execution
        is_stored = LeadRow.external_id == any_(bindparam("p_external_ids", type_=ARRAY(String)))
    stored = select(
        cast(null(), BigInteger).label("asked"), LeadRow.id, LeadRow.external_id.label("owner")
    ).where(is_stored)
    parts: list[Any] = [stored]
    if accounts:  # a lead of the batch asks for its account
        parts.append(account_lead_pg() if one else account_leads_pg())
    if away:
        users = AWAY_AT.subquery("away")
        parts.append(select(literal(0, BigInteger), cast(null(), BigInteger), users.c.user_id))
    return union_all(*parts) if len(parts) > 1 else stored


# Columns a new lead may leave out when NULL: nullable, no default, and not JSON (a JSON
# column's None binds as JSON 'null', not SQL NULL). Left out, they are stored NULL all the same.
_NULL_WHEN_LEFT = frozenset(
    column.name
    for column in LEADS.c
    if column.nullable
    and column.default is None
    and column.server_default is None
    and not isinstance(column.type, JSON)
)


def _unbound_nulls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` without the columns NULL in all of them (a new lead leaves ~25 of its ~60 NULL):
    binding each value costs more than the insert's own work on SQLite (issue 15)."""
    first = rows[0]
    null = [
        name
        for name in _NULL_WHEN_LEFT
        if first.get(name, 0) is None and all(row[name] is None for row in rows)
    ]
    if not null:
        return rows
    keep = [name for name in first if name not in null]
    kept = itemgetter(*keep)
    return [dict(zip(keep, kept(row), strict=True)) for row in rows]


_BY_EXTERNAL_ID_KEY = itemgetter("external_id")


def _insert_leads(db: Connection, leads: list[tuple[NewLead, datetime]]) -> dict[str, LeadView]:
    """Insert `leads` (of new external ids) with their events and effects, the rotations'
    turns last on PostgreSQL (first on SQLite: `_turned_first`); each lead as stored, by its
    external id."""
    if db.dialect.name != "postgresql":
        leads = _turned_first(db, leads)
    # In external id order: replicas inserting the same leads at once (a load balancer
    # retrying) take the unique index's locks in one order, so one waits and none deadlocks.
    rows = _unbound_nulls(sorted((new.columns() for new, _ in leads), key=_BY_EXTERNAL_ID_KEY))
    wanted = [new.lead.external_id for new, _ in leads]
    if db.dialect.name == "postgresql":
        given = {str(e): int(i) for e, i in db.execute(_INSERT_LEAD_RETURNING, rows)}
    else:
        insert_many(db, _INSERT_LEAD, rows)
        # The ids, read back by external id (new and unique), whatever the order they came in.
        given = {str(e): int(i) for e, i in db.execute(_IDS_OF, {"p_external_ids": wanted})}
    ids = [given[external_id] for external_id in wanted]
    # Each lead as stored: its row is the view the use case built, but for its id.
    found = {
        lead_id: evolve(new.lead, id=lead_id) for (new, _), lead_id in zip(leads, ids, strict=True)
    }
    events = [
        _event(lead_id, kind, who, now, **data)
        for (new, now), lead_id in zip(leads, ids, strict=True)
        for kind, who, data in new.events
    ]
    insert_events(db, events)
    now = leads[0][1]  # a batch's leads arrive together: their effects share its time
    effects = [
        effect
        for (new, _), lead_id in zip(leads, ids, strict=True)
        for effect in new.effects(found[lead_id])
    ]
    # App Homes are asked for once the suggested owners are stored (they read the leads).
    homes = [effect for effect in effects if isinstance(effect, RefreshHomes)]
    write_effects(db, [effect for effect in effects if not isinstance(effect, RefreshHomes)], now)
    turns = [
        (lead_id, new.rotation)
        for (new, _), lead_id in zip(leads, ids, strict=True)
        if new.rotation is not None
    ]
    asked: set[int] = set()  # leads whose suggested rep's App Home the turn asked for
    if turns:  # late: each segment's lock is held to the commit
        for (lead_id, _), suggestion in zip(turns, suggest_all(db, turns, now), strict=True):
            found[lead_id] = evolve(
                found[lead_id], suggested_owner=suggestion.rep, route_reason=suggestion.reason
            )
            if suggestion.home_asked and found[lead_id].owner is None:
                asked.add(lead_id)
    write_effects(db, _homes_left(homes, asked), now)
    return {view.external_id: view for view in found.values()}


def _homes_left(homes: list[RefreshHomes], asked: set[int]) -> list[RefreshHomes]:
    """The App Home requests still to write: of `asked` leads (no owner, their suggested
    rep's asked for with the turn) there is nothing left to ask."""
    if not asked:
        return homes
    left = []
    for effect in homes:
        leads = tuple(lead for lead in effect.leads if lead not in asked)
        if leads or effect.users:
            left.append(replace(effect, leads=leads))
    return left


def _turned_first(
    db: Connection, leads: list[tuple[NewLead, datetime]]
) -> list[tuple[NewLead, datetime]]:
    """SQLite: the batch's rotation turns, taken before its leads are inserted, each lead
    carrying its pick (suggested owner and why) into its own row. SQLite's one writer holds
    the whole file to the commit whenever the turns are taken, so first holds nothing longer,
    and every lead is written once instead of inserted and then updated. The same turns as
    `suggest_all`: each segment held once, in name order, the turns in the batch's order."""
    asks = [new.rotation for new, _ in leads if new.rotation is not None]
    if not asks:
        return leads
    picks = iter(take_all(db, asks))
    turned = []
    for new, now in leads:
        if new.rotation is not None:
            pick = next(picks)
            lead = evolve(new.lead, suggested_owner=pick.rep, route_reason=pick.reason)
            new = replace(new, lead=lead, rotation=None)
        turned.append((new, now))
    return turned


class Store:
    """Repository over the lead tables. Methods are the only way services touch the database."""

    def __init__(self, database: Database, erasure_key: ErasureKey | None = None) -> None:
        self.db = database
        self._erasure_key = erasure_key
        self._claims = GroupCommit(database, _claim_all)  # presses of a burst: one commit
        # Leads of a burst: one commit, gathered over one more loop turn (`GroupCommit`).
        self._intakes: GroupCommit[tuple[NewLead, datetime], Intaken] = GroupCommit(
            database, lambda db, batch: _intake_all(self.erasure_key, db, batch), gather=True
        )

    @property
    def erasure_key(self) -> ErasureKey:
        """The key of erased ids' digests; a store made without one (a report, a benchmark)
        takes no lead in and erases none."""
        if self._erasure_key is None:
            raise RuntimeError("this Store has no erasure key (HANDOFF_ERASURE_KEY)")
        return self._erasure_key

    async def ping(self) -> bool:
        return await self.db.run(lambda db: db.execute(text("SELECT 1")).scalar() == 1)

    # --- SLA versions -------------------------------------------------------------------------

    async def save_policy(self, version: str, content: dict[str, Any], now: datetime) -> None:
        """Keep a snapshot of an SLA version (once; later calls change nothing)."""

        def work(db: Connection) -> None:
            insert_row = upsert_insert(db)
            row = {"version": version, "content": content, "loaded_at": now}
            db.execute(insert_row(table(SlaVersion)).values(**row).on_conflict_do_nothing())

        await self.db.run(work)

    async def policy_content(self, version: str) -> dict[str, Any] | None:
        statement = select(SlaVersion.content).where(SlaVersion.version == version)
        content = await self.db.run(lambda db: db.execute(statement).scalar())
        return None if content is None else dict(content)

    # --- intake -------------------------------------------------------------------------------

    async def create_lead(self, new: NewLead, now: datetime) -> tuple[LeadView, bool]:
        """Store a new lead with its events and effects; (existing lead, False) if its
        external id is known."""
        taken = await self.intake(new, now)
        return taken.lead, taken.created

    async def intake(self, new: NewLead, now: datetime) -> Intaken:
        """Store a routed lead with its events and effects, unless its external id is known:
        then the lead stored, `known` if it was stored before this lead arrived. Leads arriving
        together are stored together (`GroupCommit`, `_intake_all`): a burst pays for one
        transaction, not one each; a lead that fails its batch is retried alone."""
        try:
            return await self._intakes((new, now))
        except IntegrityError:  # another process stored the same external id meanwhile
            existing = await self.by_external_id(new.lead.external_id)
            if existing is None:
                raise
            return Intaken(existing, False)

    # --- routing ------------------------------------------------------------------------------

    async def account_lead(
        self, domain: str, recent_since: datetime, exclude: int | None = None
    ) -> AccountLead | None:
        """The owned lead of account `domain` a new lead of it goes to (lead-to-account), other
        than lead `exclude` (a lead coming back)."""
        return await self.db.run(lambda db: account_lead(db, domain, recent_since, exclude))

    async def rotation_standing(
        self, segment: str, reps: Sequence[str], day: str, week: str
    ) -> tuple[float, dict[str, RepLoad]]:
        """The segment's rotation as stored: its clock, and each rep's load (owed, today's and
        this week's leads, open leads), for `/handoff routing` and App Home."""
        return await self.db.run(lambda db: read_standing(db, segment, day, week, reps))

    # --- reads --------------------------------------------------------------------------------

    async def get(self, lead_id: int) -> LeadView | None:
        return await self.db.run(
            lambda db: lead_view(db.execute(_BY_ID, {"p_lead_id": lead_id}).mappings().first())
        )

    async def by_external_id(self, external_id: str) -> LeadView | None:
        params = {"p_external_id": external_id}
        return await self.db.run(
            lambda db: lead_view(db.execute(_BY_EXTERNAL_ID, params).mappings().first())
        )

    async def by_erased_id(
        self, external_id: str | None = None, crm_id: str | None = None
    ) -> LeadView | None:
        """The erased lead that had this external id or CRM id, found by the digests an
        erasure leaves (this key's, or the unkeyed one of an erasure made before the key): its
        own, or those of the CRM records merged into its record (`crm_merges` keeps them as
        digests once the person is erased)."""
        key = self.erasure_key
        found = []
        if external_id is not None:
            found.append(LeadRow.external_id.in_(key.tombstones(external_id)))
        if crm_id is not None:
            found.append(LeadRow.crm_id.in_(key.tombstones(crm_id)))
            merged = select(CrmMergeRow.crm_id).where(
                CrmMergeRow.merged_id.in_(key.tombstones(crm_id))
            )
            found.append(LeadRow.crm_id.in_(merged))
        if not found:
            return None
        statement = _SELECT_LEAD.where(or_(*found)).order_by(LeadRow.id.desc()).limit(1)
        return await self.db.run(lambda db: lead_view(db.execute(statement).mappings().first()))

    async def other_erasure_keys(self) -> list[str]:
        """The key ids of erased leads' digests made with another key than this store's. Read
        from the keys each erasure records (`erasure_keys`), not from the leads: every start
        and every replica asks, and no index serves a LIKE prefix on PostgreSQL outside the C
        collation (its docs, "Operator Classes and Operator Families"), so the digests' own
        prefix meant reading the whole leads table."""
        statement = (
            select(ErasureKeyRow.key_id)
            .where(ErasureKeyRow.key_id != self.erasure_key.key_id)
            .order_by(ErasureKeyRow.key_id)
        )
        return await self.db.run(lambda db: [str(k) for k in db.execute(statement).scalars()])

    async def by_crm_id(self, crm_id: str) -> LeadView | None:
        """The newest lead of a CRM record (HubSpot contact / Salesforce Lead id)."""
        statement = _SELECT_LEAD.where(LeadRow.crm_id == crm_id).order_by(LeadRow.id.desc())
        return await self.db.run(
            lambda db: lead_view(db.execute(statement.limit(1)).mappings().first())
        )

    async def last_owner_change(self, lead_id: int) -> OwnerChanged | None:
        """The lead's last change of owner (claimed or reassigned), or None: when Handoff
        applied it, and when it was made: for a change of owner made in the CRM, when the CRM
        says it was made (its `occurred_at`), so a CRM change is ordered against the CRM's
        others by the CRM's time, not by the moment Handoff applied it."""
        statement = (
            select(EventRow.at, EventRow.data)
            .where(EventRow.lead_id == lead_id, EventRow.type.in_(("claimed", "reassigned")))
            .order_by(EventRow.at.desc())
            .limit(1)
        )
        row = await self.db.run(lambda db: db.execute(statement).first())
        if row is None:
            return None
        told = (row.data or {}).get(OCCURRED_AT)
        made = datetime.fromisoformat(told) if isinstance(told, str) else row.at
        return OwnerChanged(at=row.at, made=made)

    async def set_crm_id(self, lead_id: int, crm_id: str) -> None:
        """Tie the lead to its CRM record, unless it is tied to one already."""
        statement = (
            update(table(LeadRow))
            .where(LeadRow.id == lead_id, LeadRow.crm_id.is_(None))
            .values(crm_id=crm_id)
        )
        await self.db.run(lambda db: db.execute(statement))

    async def tie_merged(self, merged: Sequence[str], crm_id: str, now: datetime) -> int:
        """Tie every lead of the CRM records `merged` (merged away in the CRM) to the record the
        merge left, each with a `crm_merged` event (actor `crm`, ids only), in one transaction.
        The merge is remembered, so the result is the same whatever order merges are told in:
        a merge into a record itself merged away goes on to where that one went, and the
        records merged earlier into one merged away now go on to the same end. One conditional
        update: a lead tied already (a retry) is not matched again, and an erased lead, whose
        CRM id is a digest, never is. How many leads moved."""

        def work(db: Connection) -> int:
            if db.dialect.name == "postgresql":  # one merge at a time: each sees the last one's
                db.execute(select(func.pg_advisory_xact_lock(_MERGE_LOCK)))
            end = _surviving(db, crm_id)
            gone = [i for i in dict.fromkeys(merged) if i != end and not i.startswith(TOMBSTONE)]
            if not gone:
                return 0
            merges = table(CrmMergeRow)
            rows = [{"merged_id": i, "crm_id": end, "merged_at": now} for i in gone]
            db.execute(upsert_insert(db)(merges).values(rows).on_conflict_do_nothing())
            db.execute(update(merges).where(CrmMergeRow.crm_id.in_(gone)).values(crm_id=end))
            ended = select(CrmMergeRow.merged_id).where(CrmMergeRow.crm_id == end)
            statement = (
                update(table(LeadRow))
                .where(LeadRow.crm_id.in_(ended), LeadRow.crm_id.not_like(f"{TOMBSTONE}%"))
                .values(crm_id=end)
                .returning(LeadRow.id)
            )
            moved = sorted(db.execute(statement).scalars())
            data = {"crm_id": end, "merged": list(merged)}
            insert_events(db, [_event(lead, "crm_merged", "crm", now, **data) for lead in moved])
            return len(moved)

        return await self.db.run(work)

    async def remember_erased_merge(
        self, merged: Sequence[str], erased_crm_id: str, now: datetime
    ) -> None:
        """CRM records merged with the record of an erased lead (`erased_crm_id`, its digest),
        told after the erasure: those merged into it, or the one it was merged into (one
        person's records, so theirs too). Remembered as digests only, so HubSpot's later events
        about them are known as the erased person's (`by_erased_id`), and no id is kept in
        plain."""
        key = self.erasure_key
        digests = {key.tombstone(i) for i in merged if not i.startswith(TOMBSTONE)}
        digests.discard(erased_crm_id)  # its own record, in a merge told again: kept already
        if digests:
            await self.db.run(lambda db: _keep_merged(db, digests, erased_crm_id, now))

    async def surviving_record(self, crm_id: str) -> str:
        """The CRM record `crm_id` lives on in: the end of the merges it was part of, or
        itself."""
        return await self.db.run(lambda db: _surviving(db, crm_id))

    async def crm_status(
        self,
        lead_id: int,
        status: str | None,
        now: datetime,
        notification: Notification | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """The CRM's lead status changed: recorded as a `crm_status` event (actor `crm`) at
        `at` (else `now`), and the `notification` that told it marked done in the same
        transaction (NotOurs, nothing recorded, when it is not this take's any more): the event
        is its only write, so a kill before a separate done mark would record it again on the
        CRM's retry."""
        event = _event(lead_id, "crm_status", "crm", at or now, status=status)

        def work(db: Connection) -> None:
            insert_events(db, event)
            if notification is not None:
                finish(db, notification, now)

        await self.db.run(work)

    async def find(self, query: str) -> LeadView | None:
        """The lead with this external id, else the newest lead with this email."""
        statement = (
            _SELECT_LEAD.where(or_(LeadRow.external_id == query, LeadRow.email == query.lower()))
            .order_by((LeadRow.external_id == query).desc(), LeadRow.id.desc())
            .limit(1)
        )
        return await self.db.run(lambda db: lead_view(db.execute(statement).mappings().first()))

    async def matching(self, query: str) -> list[LeadView]:
        """Every lead with this external id or this email (a person may have sent several)."""
        statement = _SELECT_LEAD.where(
            or_(LeadRow.external_id == query, LeadRow.email == query.lower())
        ).order_by(LeadRow.id)
        return await self.db.run(lambda db: lead_views(db.execute(statement)))

    async def erase(
        self,
        lead_id: int,
        values: dict[str, Any],
        scrub: Callable[[dict[str, Any] | None], dict[str, Any]],
        actor: str,
        now: datetime,
        effects: Sequence[Effect] = (),
    ) -> int | None:
        """Erase a lead's personal data in one transaction: its columns become `values`, each
        of its events' data goes through `scrub`, its outbox rows are emptied and every message
        sent about it gets a redaction; an `erased` event (no personal data) records it. How
        many Slack messages will be emptied; None if the lead was erased already (a CRM
        deletion beside `handoff forget`, or two replicas, each erasing the lead it read
        before the other wrote): then nothing is written."""

        # The keys of the digests it leaves, recorded for the start-up check (first erasure
        # of a key wins; a replica's erasure at the same time does nothing).
        digests = (values.get("external_id"), values.get("crm_id"))
        made = {key_id for d in digests if isinstance(d, str) and (key_id := digest_key_id(d))}
        keys = [{"key_id": key_id, "first_erased_at": now} for key_id in sorted(made)]
        # One erasure wins: the conditional update on `erased_at IS NULL` (on PostgreSQL, a
        # second one waits for the first's row lock, then finds the row erased and matches
        # nothing: its docs, "Read Committed Isolation Level"). It changes only `erased_at`,
        # so it returns the CRM id as it was, in plain.
        won = (
            update(table(LeadRow))
            .where(LeadRow.id == lead_id, LeadRow.erased_at.is_(None))
            .values(erased_at=now)
            .returning(LeadRow.crm_id)
        )

        def work(db: Connection) -> int | None:
            if db.dialect.name == "postgresql":
                # One merge at a time, an erasure included (`tie_merged`): both take the merges
                # and the lead's row, and would otherwise take them in opposite orders.
                db.execute(select(func.pg_advisory_xact_lock(_MERGE_LOCK)))
            row = db.execute(won).first()
            if row is None:  # erased already, or by the erasure this one raced
                return None
            if keys:
                insert_row = upsert_insert(db)
                db.execute(insert_row(table(ErasureKeyRow)).values(keys).on_conflict_do_nothing())
            crm_id = row.crm_id
            if crm_id is not None:  # the person's merged contacts, named in plain
                merges = table(CrmMergeRow)
                merged = list(
                    db.execute(
                        select(CrmMergeRow.merged_id).where(CrmMergeRow.crm_id == crm_id)
                    ).scalars()
                )
                # The CRM's notifications about them: their keys name the records too.
                forget_records(db, {crm_id, *merged})
                db.execute(
                    delete(merges).where(
                        or_(CrmMergeRow.crm_id == crm_id, CrmMergeRow.merged_id == crm_id)
                    )
                )
                # Kept as digests, beside the lead's own: HubSpot's later events about the
                # merged contacts are then known as the erased person's (answered, ignored),
                # not a 404 it retries for a day. Digests already: kept as they are.
                key = self.erasure_key
                gone = {i if i.startswith(TOMBSTONE) else key.tombstone(i) for i in merged}
                if gone and values.get("crm_id"):
                    _keep_merged(db, gone, values["crm_id"], now)
            db.execute(update(table(LeadRow)).where(LeadRow.id == lead_id).values(**values))
            events = table(EventRow)
            found = db.execute(
                select(EventRow.id, EventRow.data).where(EventRow.lead_id == lead_id)
            ).all()
            for event_id, data in found:
                db.execute(update(events).where(EventRow.id == event_id).values(data=scrub(data)))
            redacted = redact_lead(db, lead_id, now)
            forget_crm(db, lead_id, now)
            insert_events(db, _event(lead_id, "erased", actor, now, messages=redacted))
            write_effects(db, effects, now)
            return redacted

        # On PostgreSQL a delivery writing a row about the lead (`_retire_again`, a repost)
        # may deadlock with it (docs/reliability.md): cancelled, the erasure runs again.
        return await self.db.run_retrying(work, "erasure")

    async def zones(self) -> dict[str, str]:
        """Every known member's Slack time zone."""
        statement = select(Person.user_id, Person.time_zone).where(Person.time_zone.is_not(None))
        rows = await self.db.run(lambda db: db.execute(statement).all())
        return {str(user): str(zone) for user, zone in rows}

    async def names(self) -> dict[str, str]:
        """Every known member's display name."""
        statement = select(Person.user_id, Person.display_name).where(
            Person.display_name.is_not(None)
        )
        rows = await self.db.run(lambda db: db.execute(statement).all())
        return {str(user): str(name) for user, name in rows}

    async def viewed(self, lead_id: int, actor: str, now: datetime) -> None:
        """Record that `actor` looked at the lead's personal data (the audit trail)."""
        event = _event(lead_id, "viewed", actor, now)
        await self.db.run(lambda db: insert_events(db, event))

    async def barred(self) -> set[str]:
        """The members Slack last described as guests or deactivated."""
        statement = select(Person.user_id).where(
            or_(Person.guest.is_(True), Person.deactivated.is_(True))
        )
        return await self.db.run(lambda db: {str(user) for user in db.execute(statement).scalars()})

    async def holders(self, user: str | None = None) -> set[str]:
        """Everyone who holds an open lead (or `user`, if they hold one): its owner, or the rep
        it is suggested to while nobody claimed it, as a hand-on finds them (storage/sweep.py
        `_held_by`). Members are read from Slack for these too, not only for those sla.yaml
        names: a rep moved off the file may still hold leads. Each query repeats a partial
        index's predicate word for word (`ix_leads_owner_open`, `ix_leads_suggested_open`)."""
        kept = LeadRow.erased_at.is_(None)
        owned: list[Any] = [text(OPEN_SAL), LeadRow.owner.is_not(None), kept]
        suggested: list[Any] = [
            text(OPEN_MQL),
            LeadRow.suggested_owner.is_not(None),
            LeadRow.owner.is_(None),
            kept,
        ]
        if user is not None:
            owned.append(LeadRow.owner == user)
            suggested.append(LeadRow.suggested_owner == user)
        statement = union(
            select(LeadRow.owner.label("user_id")).where(*owned),
            select(LeadRow.suggested_owner.label("user_id")).where(*suggested),
        )
        return await self.db.run(lambda db: {str(u) for u in db.execute(statement).scalars()})

    async def save_people(self, people: dict[str, Member], now: datetime) -> set[str]:
        """Remember members as Slack described them as of `now` (the latest answer wins; a zone
        or a name Slack did not give keeps the one known). A row read later than `now` is kept:
        a daily refresh saves answers read over minutes, and a `user_change` saved meanwhile
        (on any replica) is newer. Returns those who are a guest or deactivated now and were
        not as last remembered (or not remembered at all)."""
        rows = [
            {
                "user_id": user,
                "time_zone": member.time_zone,
                "display_name": member.display_name,
                "checked_at": now,
                "guest": member.guest,
                "deactivated": member.deactivated,
            }
            for user, member in people.items()
        ]
        if not rows:
            return set()
        barred = {user for user, member in people.items() if member.guest or member.deactivated}

        def work(db: Connection) -> set[str]:
            was = select(Person.user_id).where(
                Person.user_id.in_(sorted(barred)),
                # Left already, or a newer answer is kept (below): no news either way.
                or_(Person.guest.is_(True), Person.deactivated.is_(True), Person.checked_at > now),
            )
            newly = barred - set(db.execute(was).scalars()) if barred else set()
            insert_row = upsert_insert(db)
            statement = insert_row(table(Person))
            new = statement.excluded
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[Person.user_id],
                    set_={
                        "time_zone": func.coalesce(new.time_zone, Person.time_zone),
                        "display_name": func.coalesce(new.display_name, Person.display_name),
                        "checked_at": new.checked_at,
                        "guest": func.coalesce(new.guest, Person.guest),
                        "deactivated": func.coalesce(new.deactivated, Person.deactivated),
                    },
                    # Conditional: an answer read later (a `user_change` meanwhile) stays.
                    where=Person.checked_at <= new.checked_at,
                ),
                rows,
            )
            return newly

        return await self.db.run(work)

    async def read_after(self, users: Iterable[str], at: datetime) -> set[str]:
        """Those of `users` whose remembered answer was read after `at` (`save_people` kept it
        over an older one)."""
        statement = select(Person.user_id).where(
            Person.user_id.in_(sorted(users)), Person.checked_at > at
        )
        return await self.db.run(lambda db: set(db.execute(statement).scalars()))

    async def events(self, lead_id: int) -> list[EventView]:
        def work(db: Connection) -> list[EventView]:
            rows = db.execute(_EVENTS_OF, {"p_lead_id": lead_id}).mappings()
            return [
                EventView(r["lead_id"], r["type"], r["actor"], r["at"], dict(r["data"]))
                for r in rows
            ]

        return await self.db.run(work)

    async def sent_ts(self, key: str) -> str | None:
        """The Slack ts of the message the outbox sent under `key` (None: not sent yet)."""
        statement = select(OutboxRow.result_ts).where(OutboxRow.key == key)
        return await self.db.run(lambda db: db.execute(statement).scalar())

    async def settled_alert(self, lead_id: int, ts: str) -> str | None:
        """What replaced the managers' alert about `lead_id` sent as Slack message `ts`, once
        something settled it (None: it is live, or it is no such alert)."""
        return await self.db.run(lambda db: settled_alert(db, lead_id, ts))

    async def count_leads(self) -> int:
        statement = select(func.count()).select_from(LEADS)
        return await self.db.run(lambda db: int(db.execute(statement).scalar() or 0))

    # --- state changes: conditional updates, so a race has exactly one winner ------------------

    async def mark_posted(self, lead_id: int, channel: str, ts: str, now: datetime) -> bool:
        return await self.db.run(lambda db: mark_posted(db, lead_id, channel, ts, now))

    async def claim(
        self,
        lead_id: int,
        owner: str,
        disposition_due_at: datetime | None,
        now: datetime,
        *,
        sla_version: str | None = None,
        segments: list[str] | None = None,
        check_at: datetime | None = None,
        owner_zone: str | None = None,
        final_due_at: datetime | None = None,
        manager: bool = False,
        effects: Sequence[Effect] | Decided = (),
    ) -> bool:
        """Make `owner` the owner if nobody is, with its event and `effects` (or the effects
        that function decides from the lead as claimed); True for the one caller that won.
        `disposition_due_at` is the first feedback's deadline, `final_due_at` the final
        disposition's.

        A lead still in its claim window (`claim_opens_at` after `now`) is claimed only by its
        suggested owner, or by a `manager` (one suggested to nobody, by anyone who may claim
        it): the same statement checks it, so a press at the window's edge and a reassignment
        racing a claim are decided by the row, once.

        `sla_version` and `segments` narrow the update to leads the caller may claim, so the
        common case is one statement with no read before it (the ack path is latency-bound).
        Claims arriving together commit together (`GroupCommit`): a burst of presses pays for
        one transaction, not one each.
        """
        pools = None if segments is None else ("one" if len(segments) == 1 else "many")
        statement = _claim_statement(sla_version is not None, pools, not manager)
        params = {
            "p_lead_id": lead_id,
            "p_owner": owner,
            "p_now": now,
            "p_due": disposition_due_at,
            "p_final": final_due_at,
            "p_sla_version": sla_version,
            "p_segments": segments,
            "p_segment": segments[0] if segments else None,
            "p_check": check_at,
            "p_owner_zone": owner_zone,
        }

        decided = effects if callable(effects) else lambda _lead: effects
        return await self._claims(_Claim(statement, params, decided))

    async def log_attempt(
        self,
        lead_id: int,
        actor: str,
        kind: str,
        now: datetime,
        *,
        effects: Sequence[Effect] = (),
        repeat_within: float = 10.0,
        follow: Follow | None = None,
    ) -> int | None:
        """Count one contact attempt on an open, owned lead, with its events and `effects`; the
        new count, or None if closed. `follow`: the lead's cadence, kept in the same transaction.

        The same person logging the same kind again within `repeat_within` seconds is a double
        click (or Slack's retry): it is not counted twice.
        """
        return await self.db.run(
            lambda db: _attempt(
                db, lead_id, actor, kind, now, now, repeat_within, effects, follow=follow
            )[0]
        )

    async def record_attempt(
        self,
        lead_id: int,
        actor: str,
        kind: str,
        at: datetime,
        now: datetime,
        *,
        activity_id: str | None = None,
        effects: Sequence[Effect] = (),
        follow: Follow | None = None,
    ) -> tuple[int | None, bool]:
        """An attempt made in the CRM at `at`, counted like `log_attempt`, with `effects`.

        (the count, or None if the lead is not claimed and open; True if this call counted it).
        The CRM's `activity_id` counts once (a repeat answers the count, whatever the lead's
        stage now); without one, the same kind by the same person within 10 seconds is a
        repeat, as for a button."""

        def work(db: Connection) -> tuple[int | None, bool]:
            if _seen(db, lead_id, activity_id):
                return int(db.execute(_ATTEMPTS_OF, {"p_lead_id": lead_id}).one()[0]), False
            if activity_id is None:
                return _attempt(
                    db, lead_id, actor, kind, at, now, 10.0, effects, follow=follow, source="crm"
                )
            data = {"source": "crm", "activity_id": activity_id}
            return _attempt(db, lead_id, actor, kind, at, now, 0.0, effects, follow=follow, **data)

        return await self.db.run(work)

    async def record_stage(
        self,
        lead_id: int,
        stage: DealStage,
        at: datetime,
        *,
        amount: float | None = None,
        currency: str | None = None,
        activity_id: str | None = None,
        effects: Sequence[Effect] = (),
        now: datetime | None = None,
    ) -> Deal | None:
        """A deal stage change from the CRM at `at` (see `apply_stage`), with its event, in one
        transaction; the deal as changed, or None when nothing changed (a repeat, or an
        `activity_id` recorded before). Raises Refusal for a change that contradicts it."""

        def work(db: Connection) -> Deal | None:
            # Locked first (on PostgreSQL): two changes at once are decided one after the other.
            deal = Deal(**db.execute(_DEAL_OF, {"p_lead_id": lead_id}).mappings().one())
            if _seen(db, lead_id, activity_id):
                return None
            changed = apply_stage(deal, stage, at, amount)
            if changed == deal:
                return None
            db.execute(
                update(table(LeadRow)).where(LeadRow.id == lead_id).values(**asdict(changed))
            )
            data = {"amount": amount, "currency": currency, "source": "crm"}
            if activity_id:
                data["activity_id"] = activity_id
            insert_events(db, _event(lead_id, stage, "crm", at, **data))
            write_effects(db, effects, now or at)
            return changed

        return await self.db.run(work)

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
        next_action_at: datetime | None = None,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Close an open lead with a disposition, its event and `effects`; True for the one
        caller that closed it."""
        params = {
            "p_lead_id": lead_id,
            "p_stage": stage.value,
            "p_code": code,
            "p_reason": reason,
            "p_note": note,
            "p_now": now,
            "p_next": next_action_at,
        }

        data = {"code": code, "stage": stage.value, "reason": reason, "note": note}
        event = _event(lead_id, "dispositioned", actor, now, **data)
        return await self.db.run(_if_changed(_DISPOSE, [event], effects, now, params=params))

    async def again(
        self,
        lead: LeadView,
        values: dict[str, Any],
        events: Events,
        now: datetime,
        *,
        rotation: RotationAsk | None = None,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Change a lead sent again (new engagement; a new cycle when `values` has one) with
        its events and `effects`, if it is still as it was read: same cycle, stage and
        engagement. True for the one caller that changed it (of concurrent duplicates, exactly
        one starts the new cycle). With a `rotation`, its next rep is suggested."""
        unchanged = (
            LeadRow.stage == lead.stage.value,
            func.json_array_length(LeadRow.engagement) == len(lead.engagement),
        )
        statement = _in_cycle(lead).where(*unchanged).values(**values)

        def turn(db: Connection) -> None:  # before the effects: App Homes follow it
            assert rotation is not None
            suggest(db, lead.id, rotation)

        rows = [_event(lead.id, kind, who, now, **data) for kind, who, data in events]
        work = _if_changed(statement, rows, effects, now, then=turn if rotation else None)
        if "cycle" not in values:
            return await self.db.run(work)

        def new_cycle(db: Connection) -> bool:
            # The cycle that ends, kept as it stands, under the update's own conditions.
            keep_ended(db, LeadRow.id == lead.id, LeadRow.cycle == lead.cycle, *unchanged)
            return work(db)

        return await self.db.run(new_cycle)

    async def progress(
        self,
        lead_id: int,
        actor: str,
        *,
        code: str,
        note: str | None,
        now: datetime,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Record the first feedback on an open lead that stays open ("Contacted – progressing"),
        with its event and `effects`; True for the one caller that recorded it."""
        event = _event(lead_id, "feedback", actor, now, code=code, note=note)
        params = {"p_lead_id": lead_id, "p_now": now}
        return await self.db.run(_if_changed(_PROGRESS, [event], effects, now, params=params))

    async def ask_info(
        self,
        lead: LeadView,
        actor: str,
        question: str,
        now: datetime,
        *,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Send a claimed open lead back to marketing with `question`, its clocks paused, with
        its event and `effects`. False if it changed since it was read (closed, reassigned, in
        a new cycle, or asked already)."""
        statement = (
            _in_cycle(lead)
            .where(
                LeadRow.stage == Stage.SAL.value,
                LeadRow.owner.is_not_distinct_from(lead.owner),
                LeadRow.info_asked_at.is_(None),
            )
            .values(
                info_question=question, info_asked_at=now, info_asked_by=actor, next_action_at=None
            )
        )
        event = _event(lead.id, "info_requested", actor, now, question=question, cycle=lead.cycle)
        return await self.db.run(_if_changed(statement, [event], effects, now))

    async def answer_info(
        self,
        lead: LeadView,
        back: LeadView,
        actor: str,
        data: dict[str, Any],
        now: datetime,
        *,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Answer the question `lead` waits on: the lead back with its owner as `back` (its
        deadlines moved on, its pause kept with the cycle's others), with the answer's event
        (`data`) and `effects`. True for the one caller that answered it."""
        statement = (
            update(table(LeadRow))
            .where(LeadRow.id == lead.id, LeadRow.info_asked_at == lead.info_asked_at)
            .values(
                info_question=None,
                info_asked_at=None,
                info_asked_by=None,
                # Read with the question it answers: only this answer can add to them.
                info_pauses=back.info_pauses,
                first_touch_due_at=back.first_touch_due_at,
                disposition_due_at=back.disposition_due_at,
                final_due_at=back.final_due_at,
                next_touch_due_at=back.next_touch_due_at,
                next_action_at=now,  # the sweep looks at its clocks again
            )
        )

        if lead.info_asked_at is None:
            return False
        event = _event(lead.id, "info_answered", actor, now, **data)
        return await self.db.run(_if_changed(statement, [event], effects, now))

    async def rate(
        self,
        lead_id: int,
        actor: str,
        ratings: dict[str, int],
        now: datetime,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Store the owner's ratings (`fit`, `timing`: 1–5) on the dispositioned lead, with a
        "rated" event and `effects`, in one transaction; False when they were already so (a
        double click or Slack's retry changes nothing)."""
        columns = {f"{name}_rating": value for name, value in ratings.items()}
        if not columns:
            return False
        differs = [getattr(LeadRow, column).is_distinct_from(v) for column, v in columns.items()]
        statement = (
            update(table(LeadRow))
            .where(LeadRow.id == lead_id, LeadRow.dispositioned_at.is_not(None), or_(*differs))
            .values(**columns)
        )
        event = _event(lead_id, "rated", actor, now, **ratings)
        return await self.db.run(_if_changed(statement, [event], effects, now))

    async def reassign(
        self,
        lead: LeadView,
        handed: LeadView,
        actor: str,
        now: datetime,
        *,
        look_at: datetime | None = None,
        effects: Sequence[Effect] = (),
        why: str = BY_MANAGER,
        occurred_at: datetime | None = None,
        notification: Notification | None = None,
    ) -> bool:
        """Hand `lead` over as `handed` (`escalation.handed_over`: to its new owner if claimed,
        with their zone and its deadlines on their hours, else to its suggested owner) with
        its event and `effects`, in one transaction; the sweep looks at it next at `look_at`
        if given. False if the lead changed since it was read (claimed, closed, reassigned,
        sent to marketing or answered meanwhile). `why`: manager, or crm (its owner was
        changed in the CRM); `occurred_at`: when the CRM says that change was made (kept on
        the event, for `last_owner_change`). `notification`: the CRM's that told the change,
        marked done in the same transaction (NotOurs, nothing written, when it is not this
        take's any more), so the CRM's retry after a kill does not hand the lead over again."""
        current, rep = lead.owner or lead.suggested_owner, handed.suggested_owner
        if rep is None:
            raise ValueError("a lead is handed over to someone")
        # Why the lead is with `rep` now, for its post's why line (no longer the rotation's).
        reason = {"rule": why, "rep": rep, "by": actor} | ({"from": current} if current else {})
        values: dict[str, Any] = {"suggested_owner": rep, "route_reason": reason}
        unchanged = [
            LeadRow.stage == lead.stage.value,
            LeadRow.owner.is_not_distinct_from(lead.owner),
            LeadRow.suggested_owner.is_not_distinct_from(lead.suggested_owner),
        ]
        if lead.owner is not None:
            values |= {"owner": handed.owner, "owner_zone": handed.owner_zone}
            moved = {
                name: getattr(handed, name)
                for name in HANDED_DEADLINES
                if getattr(handed, name) != getattr(lead, name)
            }
            if moved:  # moved from the deadlines as read: a question or an answer moves them too
                values |= moved
                unchanged.append(LeadRow.info_asked_at.is_not_distinct_from(lead.info_asked_at))
                unchanged += [
                    getattr(LeadRow, name).is_not_distinct_from(getattr(lead, name))
                    for name in moved
                ]
        if look_at is not None:
            values["next_action_at"] = look_at
        statement = _in_cycle(lead).where(*unchanged).values(**values)
        data = {"from": current, "to": rep, "by": actor, "why": why}
        if occurred_at is not None:
            data[OCCURRED_AT] = occurred_at.isoformat()
        event = _event(lead.id, "reassigned", actor, now, **data)

        counted = counted_to(lead.route_reason)  # a claim is not a turn: not always `current`

        def counts(db: Connection) -> None:
            old = counted.rep if counted else None
            periods = counted.periods if counted else None
            counted_in = count_reassignment(db, lead.segment, old, rep, now, old_periods=periods)
            if counted_in is not None:  # the day it counted it in: what its leaving takes off
                kept = reason | {COUNTED_ON: counted_in[0]}
                db.execute(
                    update(table(LeadRow)).where(LeadRow.id == lead.id).values(route_reason=kept)
                )
            if notification is not None:
                finish(db, notification, now)

        return await self.db.run(_if_changed(statement, [event], effects, now, then=counts))

    async def snooze(
        self,
        lead: LeadView,
        actor: str,
        until: datetime,
        now: datetime,
        *,
        effects: Sequence[Effect] = (),
    ) -> bool:
        """Hold an open lead's escalations until `until` (its next look no earlier) with its
        event and `effects`, in one transaction. False if the lead is closed, in a new cycle,
        or snoozed until then already."""
        statement = (
            _in_cycle(lead)
            .where(
                LeadRow.stage.in_([Stage.MQL.value, Stage.SAL.value]),
                or_(LeadRow.snoozed_until.is_(None), LeadRow.snoozed_until < until),
            )
            .values(
                snoozed_until=until,
                next_action_at=case(
                    (
                        LeadRow.next_action_at < until,
                        bindparam("p_until", until, type_=LEADS.c.next_action_at.type),
                    ),
                    else_=LeadRow.next_action_at,
                ),
            )
        )

        event = _event(lead.id, "snoozed", actor, now, by=actor, until=until.isoformat())
        return await self.db.run(_if_changed(statement, [event], effects, now))


def _in_cycle(lead: LeadView) -> Update:
    """An update of `lead`'s row while it is still in the cycle it was read in (add the rest of
    what must not have changed with `.where`)."""
    return update(table(LeadRow)).where(LeadRow.id == lead.id, LeadRow.cycle == lead.cycle)


def _if_changed(
    statement: Any,
    events: list[dict[str, Any]],
    effects: Sequence[Effect],
    now: datetime,
    *,
    params: dict[str, Any] | None = None,
    then: Callable[[Connection], object] | None = None,
) -> Callable[[Connection], bool]:
    """A unit of work: the conditional update `statement` (with `params`), then, only if it
    changed one row, `then`, its `events` and `effects`; True for the one caller whose update
    changed it."""

    def work(db: Connection) -> bool:
        if db.execute(statement, params).rowcount != 1:
            return False
        if then is not None:
            then(db)
        if events:
            insert_events(db, events)
        write_effects(db, effects, now)
        return True

    return work


def _attempt(
    db: Connection,
    lead_id: int,
    actor: str,
    kind: str,
    at: datetime,
    now: datetime,
    repeat_within: float,
    effects: Sequence[Effect],
    follow: Follow | None = None,
    **data: Any,
) -> tuple[int | None, bool]:
    """Count an attempt made at `at` on an open, owned lead, with its events, its cadence
    (`follow`) and `effects`: (the count, or None if the lead is not; True if this call
    counted it)."""
    since = {
        "p_lead_id": lead_id,
        "p_actor": actor,
        "p_since": at - timedelta(seconds=repeat_within),
    }
    if repeat_within > 0:
        recent = db.execute(_RECENT_ATTEMPTS, since).scalars()
        if any((found or {}).get("kind") == kind for found in recent):
            return _attempts(db, lead_id), False
    count = db.execute(_LOG_ATTEMPT, {"p_lead_id": lead_id, "p_now": at}).scalar()
    if count is None:
        return None, False
    rows = [_event(lead_id, "attempt", actor, at, kind=kind, number=int(count), **data)]
    if count == 1:
        rows.append(_event(lead_id, "first_touch", actor, at, **data))
    insert_events(db, rows)
    if follow is not None:
        _keep_cadence(db, lead_id, int(count), follow)
    write_effects(db, effects, now)
    return int(count), True


def _keep_cadence(db: Connection, lead_id: int, count: int, follow: Follow) -> None:
    """The lead's cadence from its attempts of this cycle, written with the attempt."""
    found = db.execute(_CYCLE_ATTEMPTS, {"p_lead_id": lead_id, "p_count": count})
    cadence = follow([Attempt(at, str((data or {}).get("kind", ""))) for at, data in found])
    params = {
        "p_lead_id": lead_id,
        "p_next_touch": cadence.next_touch_due_at,
        "p_counted": cadence.counted,
        "p_met": cadence.met_at,
        "p_remind": reminder_due_at(cadence),
    }
    db.execute(_KEEP_CADENCE, params)


def _attempts(db: Connection, lead_id: int) -> int | None:
    """The lead's attempt count, or None unless it is claimed and open."""
    row = db.execute(_ATTEMPTS_OF, {"p_lead_id": lead_id}).first()
    return int(row[0]) if row is not None and row[1] == Stage.SAL.value else None


def _seen(db: Connection, lead_id: int, activity_id: str | None) -> bool:
    """Whether the CRM activity `activity_id` of the lead was recorded already. Locks the lead
    first (on PostgreSQL), so the same activity sent twice at once is recorded once."""
    if activity_id is None:
        return False
    db.execute(_LOCK_LEAD, {"p_lead_id": lead_id})
    recorded = db.execute(_CRM_EVENTS_OF, {"p_lead_id": lead_id}).scalars()
    return any((data or {}).get("activity_id") == activity_id for data in recorded)

"""What an erased lead keeps of its ids, on SQLite and PostgreSQL: a digest keyed with the
installation's erasure key (HMAC-SHA256), so the same id sent again is still known as erased,
while nobody with the database alone can test a list of guessed emails or ids against it; and
the plain SHA-256 digests erasures made before the key are still recognised."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import Engine

from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey, erased_event_data, erased_values, unkeyed_tombstone
from bot.domain.policy import Policy
from bot.domain.refusal import Refusal
from bot.services.erasure import forget
from bot.services.leads import AlreadyRecorded, Services, Stored
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, services_on

EMAIL = "Priya.Raman@Northwind.example"  # marketing's system sends the email as the id
CRM_ID = "451"
CALL = {"type": "attempt", "kind": "call", "actor": "U0REP1", "id": "crm-call-9"}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def dump(store: Store) -> str:
    """Every row of every table, as text (what a database dump shows)."""

    def work(db: Connection) -> str:
        tables = ("leads", "events", "outbox", "crm_outbox", "lead_cycles")
        return "\n".join(
            str(row) for name in tables for row in db.execute(text(f"SELECT * FROM {name}"))
        )

    return str(await store.db.run(work))


async def erased_lead(services: Services) -> int:
    """A lead whose external id is the person's email, with a CRM id, then forgotten."""
    taken = await services.intake(lead_payload(EMAIL, email=EMAIL, crm_id=CRM_ID), MONDAY)
    assert isinstance(taken, Stored) and taken.created
    (erased,) = await forget(services.store, Wakes(), EMAIL, "cli", MONDAY)
    return erased.lead_id


async def recognised(services: Services, lead_id: int) -> None:
    """The erased id sent again is known: intake stores nothing, CRM activity records
    nothing, and forgetting it again says it was erased already."""
    again = await services.intake(lead_payload(EMAIL, email=EMAIL), MONDAY)
    assert isinstance(again, Stored) and (again.lead.id, again.created) == (lead_id, False)
    assert again.message is not None and "erased at their request" in again.message
    call = await services.activity(EMAIL, CALL, MONDAY)
    assert isinstance(call, AlreadyRecorded) and call.lead_id == lead_id
    assert await services.store.count_leads() == 1
    found = await services.store.by_erased_id(crm_id=CRM_ID)
    assert found is not None and found.id == lead_id
    with pytest.raises(Refusal, match="was erased already: nothing was changed"):
        await forget(services.store, Wakes(), EMAIL, "cli", MONDAY)


def downgrade_to_before(file_end: str) -> Callable[[Connection], None]:
    """Alembic's downgrade, on a connection, to the revision before the migration whose file
    name ends with `file_end` (found by its file: the merger renumbers revisions)."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage import db

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    (before,) = (
        str(script.down_revision)
        for script in ScriptDirectory.from_config(config).walk_revisions()
        if script.path.endswith(file_end)
    )

    def back(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, before)

    return back


async def test_an_erased_email_is_recognised_but_its_digest_cannot_be_tested_against_guesses(
    services: Services,
) -> None:
    lead_id = await erased_lead(services)
    found = await dump(services.store)
    lead = await services.store.get(lead_id)
    assert lead is not None and lead.external_id.startswith("erased:hmac:")
    # Neither the id nor a plain SHA-256 of it (as sent, or lower-cased as an email is
    # compared) is anywhere: a dictionary of emails finds nothing without the key.
    for guess in (EMAIL, EMAIL.lower(), CRM_ID):
        assert guess.lower() not in found.lower()
        assert sha256_hex(guess)[:16] not in found and unkeyed_tombstone(guess) not in found
    await recognised(services, lead_id)


async def test_an_erasure_made_before_the_key_is_still_recognised(services: Services) -> None:
    """A database erased by an earlier Handoff holds plain SHA-256 digests (`erased:<hex>`):
    they cannot be keyed now (the ids are gone), so both kinds are looked for."""
    lead_id = await erased_lead(services)
    before_the_key = {"e": unkeyed_tombstone(EMAIL), "c": unkeyed_tombstone(CRM_ID), "id": lead_id}

    def unkeyed(db: Connection) -> None:
        statement = "UPDATE leads SET external_id = :e, crm_id = :c WHERE id = :id"
        db.execute(text(statement), before_the_key)

    await services.store.db.run(unkeyed)
    await recognised(services, lead_id)


async def test_a_database_erased_with_another_key_refuses_the_wrong_key(
    services: Services, database_url: str
) -> None:
    """A lost or mistyped key would quietly take erased people in again: the server (and
    `handoff forget`, `handoff import`) refuses to start with it, naming the problem."""
    from bot.app import keyed_store
    from bot.settings import ConfigError, Settings
    from storage import db

    await erased_lead(services)
    other: dict[str, Any] = {"DATABASE_URL": database_url, "HANDOFF_ERASURE_KEY": "x" * 40}
    database = db.Database(database_url)
    with pytest.raises(ConfigError) as refused:
        await keyed_store(Settings.from_env(other), database)
    message = str(refused.value)
    assert "HANDOFF_ERASURE_KEY is not the key this database's erased leads were made" in message
    assert f"HANDOFF_ERASURE_KEY_RETIRED={services.store.erasure_key.key_id} " in message
    assert await services.store.count_leads() == 1
    # A key lost for good, said so deliberately: Handoff starts (on the new key).
    lost = {**other, "HANDOFF_ERASURE_KEY_RETIRED": services.store.erasure_key.key_id.upper()}
    database = db.Database(database_url)
    try:
        store = await keyed_store(Settings.from_env(lost), database)
        assert store.erasure_key.secret == "x" * 40
    finally:
        await database.dispose()


async def test_without_a_key_erasures_keep_plain_digests_and_a_dropped_key_is_refused(
    services: Services, database_url: str
) -> None:
    """HANDOFF_ERASURE_KEY is optional (SPEC's settings start Handoff): without it, an erasure
    keeps the plain digest it kept before the key, still recognised. A database whose erasures
    were keyed refuses to start with the key taken away, as with a wrong key."""
    from bot.app import keyed_store
    from bot.settings import ConfigError, Settings
    from storage import db

    await erased_lead(services)  # keyed, with the fixture's key
    keyless: dict[str, Any] = {"DATABASE_URL": database_url}
    database = db.Database(database_url)
    with pytest.raises(ConfigError) as refused:
        await keyed_store(Settings.from_env(keyless), database)
    message = str(refused.value)
    assert "HANDOFF_ERASURE_KEY is not set, and this database's erased leads were made" in message
    retired = {**keyless, "HANDOFF_ERASURE_KEY_RETIRED": services.store.erasure_key.key_id}
    database = db.Database(database_url)
    try:
        store = await keyed_store(Settings.from_env(retired), database)
        plain = Services(store, services.policies, Wakes())
        other = "sam@contoso.example"
        taken = await plain.intake(lead_payload(other, email=other), MONDAY)
        assert isinstance(taken, Stored) and taken.created
        (erased,) = await forget(store, Wakes(), other, "cli", MONDAY)
        lead = await store.get(erased.lead_id)
        assert lead is not None and lead.external_id == unkeyed_tombstone(other)
        again = await plain.intake(lead_payload(other, email=other), MONDAY)
        assert isinstance(again, Stored) and (again.lead.id, again.created) == (lead.id, False)
    finally:
        await database.dispose()


async def refused_keys(database_url: str, key: str | None) -> list[str]:
    """What a start with `key` (None: no key) says of this database: the key ids it names as
    the erased leads' when it refuses, or [] when it starts."""
    from bot.app import keyed_store
    from bot.settings import ConfigError, Settings
    from storage import db

    env: dict[str, Any] = {"DATABASE_URL": database_url}
    if key is not None:
        env["HANDOFF_ERASURE_KEY"] = key
    database = db.Database(database_url)
    try:
        await keyed_store(Settings.from_env(env), database)
    except ConfigError as refused:
        named = str(refused)
        return sorted(named.split("HANDOFF_ERASURE_KEY_RETIRED=")[1].split(" ")[0].split(","))
    finally:
        await database.dispose()
    return []


async def test_a_database_erased_before_the_key_table_still_refuses_the_wrong_key(
    services: Services, database_url: str
) -> None:
    """The erasure keys are recorded by each erasure since migration 0031; an upgrade fills
    them from the digests already stored, so a database erased under an earlier Handoff still
    refuses another key, or none, after the upgrade."""
    from storage import db

    await erased_lead(services)
    ours = services.store.erasure_key.key_id
    back = downgrade_to_before("_erasure_keys.py")  # the schema before the table

    engine = services.store.db.engine
    async with engine.connect() as connection:  # the schema before the table: digests only
        await connection.run_sync(back)  # out of a transaction, as `db.upgrade` runs them
        await connection.commit()
    await db.upgrade(engine)
    assert await refused_keys(database_url, "x" * 40) == [ours]
    assert await refused_keys(database_url, None) == [ours]
    assert await refused_keys(database_url, ERASURE_KEY) == []


async def test_the_key_check_reads_the_keys_not_the_leads(
    services: Services, database_url: str
) -> None:
    """Every start (and every replica) checks the key: it reads the keys erasures recorded,
    whatever the number of leads, never the leads table."""
    await erased_lead(services)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    other = Store(services.store.db, ErasureKey("x" * 40))
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        found = await other.other_erasure_keys()
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert found == [services.store.erasure_key.key_id]
    read = [s for s in statements if "select" in s.lower()]
    assert read and all("erasure_keys" in s for s in read)
    assert not any(re.search(r"\bleads\b", s) for s in statements)


async def test_replicas_erasing_at_once_with_a_new_key_record_it_once(
    database_url: str, policy: Policy
) -> None:
    """Two processes making the first digests of a key at the same moment both erase; the key
    is recorded once, and a start with another key names it once."""
    from storage import db

    first, second = db.Database(database_url), db.Database(database_url)
    await db.upgrade(first.engine)
    try:
        services = await services_on(Store(first, ErasureKey(ERASURE_KEY)), policy)
        people = ("ana@contoso.example", "bo@fabrikam.example")
        for person in people:
            taken = await services.intake(lead_payload(person, email=person), MONDAY)
            assert isinstance(taken, Stored) and taken.created
        stores = (services.store, Store(second, ErasureKey(ERASURE_KEY)))
        pairs = zip(stores, people, strict=True)
        done = await asyncio.gather(*(forget(s, Wakes(), p, "cli", MONDAY) for s, p in pairs))
        assert [len(erased) for erased in done] == [1, 1]
    finally:
        await second.dispose()
        await first.dispose()
    assert await refused_keys(database_url, "x" * 40) == [ErasureKey(ERASURE_KEY).key_id]


async def test_a_lead_erased_twice_at_once_still_knows_the_contacts_merged_into_its_record(
    services: Services,
) -> None:
    """A CRM deletion and `handoff forget` (or two replicas) erasing the same person at once
    both read the lead before either wrote. The second erasure finds the merged contacts kept
    as digests already: it keeps them, so HubSpot's later events about a merged contact are
    still the erased person's (answered, ignored), not a 404 it retries for a day."""
    store = services.store
    taken = await services.intake(lead_payload(EMAIL, email=EMAIL, crm_id=CRM_ID), MONDAY)
    assert isinstance(taken, Stored) and taken.created
    await store.tie_merged(["hs-merged-7"], CRM_ID, MONDAY)
    lead = await store.get(taken.lead.id)
    assert lead is not None
    values = erased_values(lead, MONDAY, store.erasure_key)
    for _ in range(2):  # the same values: each read the lead before the other erased it
        await store.erase(lead.id, values, erased_event_data, "crm", MONDAY)
    found = await store.by_erased_id(crm_id="hs-merged-7")
    assert found is not None and found.id == lead.id
    assert "hs-merged-7" not in await dump(store)


async def erasure_writes(store: Store, lead_id: int) -> tuple[int, list[tuple[str, str | None]]]:
    """The lead's `erased` events, and its outbox rows an erasure queues (the redactions and
    the re-rendered post, with their keys), oldest first."""

    def work(db: Connection) -> tuple[int, list[tuple[str, str | None]]]:
        params = {"id": lead_id}
        events = db.execute(
            text("SELECT COUNT(*) FROM events WHERE lead_id = :id AND type = 'erased'"), params
        ).scalar()
        rows = db.execute(
            text(
                "SELECT kind, key FROM outbox WHERE lead_id = :id "
                "AND kind IN ('redact', 'update_lead') ORDER BY id"
            ),
            params,
        ).all()
        return int(events or 0), [(str(kind), key) for kind, key in rows]

    return await store.db.run(work)


async def posted_lead(services: Services) -> Any:
    """A lead with a CRM id whose post was sent, and an earlier post of it (a redaction will
    empty it), as read before anyone erased it."""
    store = services.store
    taken = await services.intake(lead_payload(EMAIL, email=EMAIL, crm_id=CRM_ID), MONDAY)
    assert isinstance(taken, Stored) and taken.created

    def sent(db: Connection) -> None:
        db.execute(text("UPDATE leads SET message_ts = '1.000100' WHERE id = :id"), taken_id)
        db.execute(
            text(
                "UPDATE outbox SET state = 'done', result_ts = '0.000900' "
                "WHERE lead_id = :id AND kind = 'post_lead'"
            ),
            taken_id,
        )

    taken_id = {"id": taken.lead.id}
    await store.db.run(sent)
    lead = await store.get(taken.lead.id)
    assert lead is not None and lead.message_ts == "1.000100"
    return lead


async def test_erasing_an_erased_lead_again_writes_nothing(services: Services) -> None:
    """A CRM deletion and `handoff forget` (or two replicas) erasing the same person: both
    read the lead before either wrote. The second finds it erased already (the conditional
    update on `erased_at IS NULL`) and writes nothing: one `erased` event, and each message
    emptied once, its post re-rendered once."""
    from bot.domain.effects import Refresh

    store = services.store
    lead = await posted_lead(services)
    values = erased_values(lead, MONDAY, store.erasure_key)
    first = await store.erase(lead.id, values, erased_event_data, "cli", MONDAY, [Refresh(lead.id)])
    once = await erasure_writes(store, lead.id)
    assert once[0] == 1 and [kind for kind, _ in once[1]] == ["redact", "update_lead"], once
    later = MONDAY.replace(minute=1)  # the second, a minute on: its rows would differ
    second = await store.erase(lead.id, values, erased_event_data, "crm", later, [Refresh(lead.id)])
    assert await erasure_writes(store, lead.id) == once
    assert (first, second) == (1, None)


async def test_two_replicas_erasing_the_same_lead_at_once_erase_it_once(
    database_url: str, policy: Policy
) -> None:
    """Two processes (two connection pools: on PostgreSQL, two sessions racing for the row)
    erase the same lead, each from the lead as read before either wrote: exactly one wins; the
    other writes nothing."""
    from bot.domain.effects import Refresh
    from storage import db

    first, second = db.Database(database_url), db.Database(database_url)
    await db.upgrade(first.engine)
    try:
        services = await services_on(Store(first, ErasureKey(ERASURE_KEY)), policy)
        lead = await posted_lead(services)
        stores = (services.store, Store(second, ErasureKey(ERASURE_KEY)))
        read = [await s.get(lead.id) for s in stores]  # each read it before either wrote
        assert read == [lead, lead]
        values = erased_values(lead, MONDAY, services.store.erasure_key)
        # On PostgreSQL, a third session holds the lead's row until both erasures wait for
        # it: both are under way at once, neither has seen the other's write.
        held = await third_holds_the_row(database_url, lead.id)
        racing = [
            asyncio.ensure_future(
                s.erase(lead.id, values, erased_event_data, actor, MONDAY, [Refresh(lead.id)])
            )
            for s, actor in zip(stores, ("cli", "crm"), strict=True)
        ]
        if held is not None:
            await held(waiting=2)
        done = await asyncio.gather(*racing)
        events, rows = await erasure_writes(services.store, lead.id)
        assert events == 1
        assert [kind for kind, _ in rows] == ["redact", "update_lead"]  # once each
        assert sorted(done, key=lambda n: n is None) == [1, None]
    finally:
        await second.dispose()
        await first.dispose()


async def third_holds_the_row(database_url: str, lead_id: int) -> Any:
    """On PostgreSQL: a session that locks the lead's row now, and a function that lets it go
    once `waiting` other sessions of this database wait for a lock. None on SQLite (one
    writer at a time: the racers are serialised by the database itself)."""
    if not database_url.startswith("postgresql"):
        return None
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    connection = await engine.connect()
    transaction = await connection.begin()
    lock = "SELECT id FROM leads WHERE id = :id FOR UPDATE"
    await connection.execute(text(lock), {"id": lead_id})

    async def release(waiting: int) -> None:
        query = (
            "SELECT COUNT(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        try:
            for _ in range(500):
                if (await connection.execute(text(query))).scalar() == waiting:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"the {waiting} racers never waited for the row")
            await transaction.rollback()
        finally:
            await connection.close()
            await engine.dispose()

    return release


async def test_a_database_whose_only_digests_come_from_a_merge_refuses_the_wrong_key(
    services: Services, database_url: str
) -> None:
    """A lead erased before the key (plain digests: no key to record), then a HubSpot merge of
    the person's record told under the key: the merged record is kept as a digest made with
    the key, the only one. A start with another key would no longer know it as the erased
    person's: it refuses, as for an erasure's digests."""
    store = services.store
    lead_id = await erased_lead(services)
    before_the_key = {"e": unkeyed_tombstone(EMAIL), "c": unkeyed_tombstone(CRM_ID), "id": lead_id}

    def unkeyed(db: Connection) -> None:
        statement = "UPDATE leads SET external_id = :e, crm_id = :c WHERE id = :id"
        db.execute(text(statement), before_the_key)
        db.execute(text("DELETE FROM erasure_keys"))
        db.execute(text("DELETE FROM crm_merges"))

    await store.db.run(unkeyed)
    assert await refused_keys(database_url, "x" * 40) == []
    await store.remember_erased_merge(["hs-merged-8"], unkeyed_tombstone(CRM_ID), MONDAY)
    found = await store.by_erased_id(crm_id="hs-merged-8")
    assert found is not None and found.id == lead_id
    assert await refused_keys(database_url, "x" * 40) == [store.erasure_key.key_id]
    assert await refused_keys(database_url, None) == [store.erasure_key.key_id]
    assert await refused_keys(database_url, ERASURE_KEY) == []


async def test_an_upgrade_records_the_keys_of_merge_digests_kept_before(
    services: Services, database_url: str
) -> None:
    """A database where an earlier Handoff kept a merge's digests without recording their key
    (the person erased before the key): the upgrade (migration 0033) records it, so a start
    with another key, or none, is refused there too."""
    from storage import db

    store = services.store
    lead_id = await erased_lead(services)
    await store.remember_erased_merge(["hs-merged-8"], unkeyed_tombstone(CRM_ID), MONDAY)
    before_the_key = {"e": unkeyed_tombstone(EMAIL), "c": unkeyed_tombstone(CRM_ID), "id": lead_id}

    def as_before(db: Connection) -> None:  # what an earlier Handoff left: no key recorded
        statement = "UPDATE leads SET external_id = :e, crm_id = :c WHERE id = :id"
        db.execute(text(statement), before_the_key)
        db.execute(text("DELETE FROM erasure_keys"))
        db.execute(text("DELETE FROM crm_merges WHERE merged_id NOT LIKE 'erased:hmac:%'"))

    back = downgrade_to_before("_erasure_keys_of_merges.py")

    engine = store.db.engine
    async with engine.begin() as connection:
        await connection.run_sync(back)
    await store.db.run(as_before)
    assert await refused_keys(database_url, "x" * 40) == []  # what an upgrade finds
    await db.upgrade(engine)
    ours = store.erasure_key.key_id
    assert await refused_keys(database_url, "x" * 40) == [ours]
    assert await refused_keys(database_url, None) == [ours]
    assert await refused_keys(database_url, ERASURE_KEY) == []


async def test_forget_leaves_out_a_lead_another_caller_erased_meanwhile(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`handoff forget` found the person's lead, and a CRM deletion erased it before this
    erasure wrote: the lead is not among those `forget` erased (the command says the person
    was erased meanwhile), and it has one `erased` event, the deletion's."""
    store = services.store
    lead = await posted_lead(services)
    erase = store.erase

    async def after_the_crm(*args: Any, **kwargs: Any) -> int | None:
        values = erased_values(lead, MONDAY, store.erasure_key)
        assert await erase(lead.id, values, erased_event_data, "crm", MONDAY) == 1
        return await erase(*args, **kwargs)

    monkeypatch.setattr(store, "erase", after_the_crm)
    assert await forget(store, Wakes(), EMAIL, "cli", MONDAY) == []
    events, _ = await erasure_writes(store, lead.id)
    assert events == 1

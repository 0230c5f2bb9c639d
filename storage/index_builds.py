"""Index builds in migrations: CONCURRENTLY on PostgreSQL, so replicas still serving keep
writing to the table while an index on it is built (a migration on `events`, the biggest
table, built its indexes with a plain CREATE INDEX, whose SHARE lock held every intake, claim
and attempt for the whole build). A migration calls these instead of `op.create_index` and
`op.drop_index`; SQLite (one process) builds as before.

PostgreSQL's docs (CREATE INDEX, "Building Indexes Concurrently"; DROP INDEX): neither runs
inside a transaction block, so each runs in an autocommit block (`storage.db.upgrade` gives
the migrations a connection outside any transaction), and a build that failed or was killed
leaves an INVALID index of its name, which is dropped here before the build is tried again.
A build that finished before its migration's version was recorded is kept (IF NOT EXISTS)."""

from __future__ import annotations

from typing import Any

from alembic import op
from sqlalchemy import text


def create_index(name: str, table: str, columns: list[str], **kw: Any) -> None:
    """`op.create_index(name, table, columns, **kw)`, CONCURRENTLY on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, columns, **kw)
        return
    with op.get_context().autocommit_block():
        valid = (
            op.get_bind()
            .execute(
                text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
                {"name": name},
            )
            .scalar()
        )
        if valid is False:  # left by a build that failed or was killed
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name, table, columns, postgresql_concurrently=True, if_not_exists=True, **kw
        )


def drop_index(name: str, table: str) -> None:
    """`op.drop_index(name, table_name=table)`, CONCURRENTLY on PostgreSQL (a plain DROP INDEX
    waits for the table's ACCESS EXCLUSIVE lock, and every read and write queues behind it)."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)

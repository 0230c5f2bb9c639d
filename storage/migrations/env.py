"""Alembic environment: migrations run on a connection handed over by `storage.db.upgrade`."""

from __future__ import annotations

from alembic import context

from storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `handoff db upgrade`, which provides the connection")

# SQLite gets its migrations inside the caller's one transaction. PostgreSQL gets a connection
# outside any: each migration runs in a transaction of its own (with its version's update), so
# that one can build an index CONCURRENTLY between them (storage/index_builds.py).
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=connection.dialect.name == "postgresql",
)
with context.begin_transaction():
    context.run_migrations()

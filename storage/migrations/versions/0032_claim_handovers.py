"""claim handovers: the handovers' partial index holds the claims that took a lead from another

A claim of a lead held for another rep (its suggested owner), or for nobody, now records that
rep as its `from` (a claim by the rep it was held for has none, nor has any claim written
before). The report's by-rep first touch (storage/reports.py `handed_over`) counts such a claim
after the first-touch clock ran as a handover, so `ix_events_handovers` holds those claims
too: the leads handed over since a period began stay one range of the index.

Revision ID: 0032
Revises: 0031
"""

import sqlalchemy as sa
from alembic import op

from storage import index_builds

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

BEFORE = "type IN ('reassigned', 'offered')"
CLAIM = {
    "postgresql": "(data -> 'from') IS NOT NULL",
    "sqlite": "json_type(data, '$.from') IS NOT NULL",
}
AFTER = {dialect: f"{BEFORE} OR (type = 'claimed' AND {given})" for dialect, given in CLAIM.items()}


def _index(sqlite: str, postgresql: str) -> None:
    """On PostgreSQL the new index is built beside the old one, CONCURRENTLY, and the old one
    dropped CONCURRENTLY only then (storage/index_builds.py): replicas keep reading and writing
    the events meanwhile, where CREATE INDEX takes SHARE (writes wait for the whole build) and
    DROP INDEX takes ACCESS EXCLUSIVE (PostgreSQL's docs, "Explicit Locking", CREATE INDEX,
    DROP INDEX). The rename is recorded with the migration's version, in one transaction: a
    run cut short anywhere before it leaves the new index, valid or not, which the next run
    keeps or rebuilds, and the old one, or none."""
    if op.get_bind().dialect.name != "postgresql":  # SQLite renames no index
        op.drop_index("ix_events_handovers", table_name="events")
        op.create_index(
            "ix_events_handovers", "events", ["at", "lead_id"], sqlite_where=sa.text(sqlite)
        )
        return
    index_builds.create_index(
        "ix_events_handovers_next",
        "events",
        ["at", "lead_id"],
        postgresql_where=sa.text(postgresql),
    )
    index_builds.drop_index("ix_events_handovers", "events")
    op.execute("ALTER INDEX ix_events_handovers_next RENAME TO ix_events_handovers")


def upgrade() -> None:
    _index(AFTER["sqlite"], AFTER["postgresql"])


def downgrade() -> None:
    _index(BEFORE, BEFORE)

"""event handovers: a partial index of the events that take a lead from the rep who had it

The report's by-rep first touch (storage/reports.py `touch_rep`) looks for a lead's first
reassignment or away-offer after its first-touch clock ran, only for the leads that had one
since the period began: this index gives that set (a small share of the events) as a range.
On PostgreSQL it is built CONCURRENTLY (storage/index_builds.py): writes to the events go on.

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa

from storage import index_builds

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

HANDOVER = "type IN ('reassigned', 'offered')"


def upgrade() -> None:
    index_builds.create_index(
        "ix_events_handovers",
        "events",
        ["at", "lead_id"],
        sqlite_where=sa.text(HANDOVER),
        postgresql_where=sa.text(HANDOVER),
    )


def downgrade() -> None:
    index_builds.drop_index("ix_events_handovers", "events")

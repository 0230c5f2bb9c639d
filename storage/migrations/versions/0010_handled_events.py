"""handled events: Slack's event ids already taken on, so a retried event runs once

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handled_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_handled_events_at", "handled_events", ["handled_at"])


def downgrade() -> None:
    op.drop_index("ix_handled_events_at", table_name="handled_events")
    op.drop_table("handled_events")

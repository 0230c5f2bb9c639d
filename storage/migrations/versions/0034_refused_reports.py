"""refused reports: the report the latest refusal of a group was part of, what and its period

The managers' alert about deliveries Slack refused named a refused weekly digest, monthly
digest or rejection review only as "a message": a group recorded the latest refused row's
kind and lead, and a report's message has no lead. Each group records which report that row
was part of (`last_report`: weekly_digest, rejection_review or monthly_digest; `last_period`:
2026-W48, 2026-11). NULL: none, or a group from before this revision (its alert says "a
message" as it did).

Revision ID: 0034
Revises: 0033
"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refusal_groups") as batch:
        batch.add_column(sa.Column("last_report", sa.String(24), nullable=True))
        batch.add_column(sa.Column("last_period", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refusal_groups") as batch:
        batch.drop_column("last_period")
        batch.drop_column("last_report")

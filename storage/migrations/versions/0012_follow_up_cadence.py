"""follow-up cadence: each open lead's next touch due (indexed), its counted attempts, and when
it met the follow-up standard

Revision ID: 0012
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("next_touch_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("touches_counted", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("follow_up_met_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_leads_next_touch_open",
        "leads",
        ["next_touch_due_at"],
        sqlite_where=sa.text("stage = 'sal'"),
        postgresql_where=sa.text("stage = 'sal'"),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_next_touch_open", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("follow_up_met_at")
        batch.drop_column("touches_counted")
        batch.drop_column("next_touch_due_at")

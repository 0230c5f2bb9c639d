"""two deadlines: a claimed lead's first feedback (`feedback_at`) and its final disposition
deadline (`final_due_at`)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("final_due_at", sa.DateTime(timezone=True), nullable=True))
    # Leads dispositioned before: their disposition was their first feedback. Leads claimed
    # before keep their one deadline (disposition_due_at) and get no final one.
    op.execute("UPDATE leads SET feedback_at = dispositioned_at WHERE dispositioned_at IS NOT NULL")
    open_sal = sa.text("stage = 'sal'")
    op.create_index(
        "ix_leads_final_due_open",
        "leads",
        ["final_due_at"],
        postgresql_where=open_sal,
        sqlite_where=open_sal,
    )


def downgrade() -> None:
    op.drop_index("ix_leads_final_due_open", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("final_due_at")
        batch.drop_column("feedback_at")

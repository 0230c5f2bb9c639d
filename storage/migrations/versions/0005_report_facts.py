"""report facts: MQL, completeness and ICP fixed at arrival; periods read by time ranges

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("mql", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("complete", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("icp", sa.Boolean(), nullable=True))
        batch.create_index("ix_leads_received_at", ["received_at"])
    # Leads stored before: an MQL got a first-touch deadline at arrival; a lead that missed a
    # required field said so in its stage reason. ICP was not known then.
    op.execute("UPDATE leads SET mql = (first_touch_due_at IS NOT NULL)")
    op.execute(
        "UPDATE leads SET complete = NOT (COALESCE(stage_reason, '') LIKE '%missing %')"
    )
    fired = sa.text("status = 'fired'")
    op.create_index(
        "ix_escalations_fired_at",
        "escalations",
        ["at"],
        postgresql_where=fired,
        sqlite_where=fired,
    )


def downgrade() -> None:
    op.drop_index("ix_escalations_fired_at", table_name="escalations")
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_received_at")
        batch.drop_column("icp")
        batch.drop_column("complete")
        batch.drop_column("mql")

"""report kpis: the rep's lead-quality rating on the lead, and recycled leads by cycle start

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

RECYCLED = "cycle > 1"


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("fit_rating", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("timing_rating", sa.SmallInteger(), nullable=True))
    # Recycle → SQL reads the leads whose new cycle began in a period: only cycles after the
    # first, a small share of the table.
    op.create_index(
        "ix_leads_cycle_started_recycled",
        "leads",
        ["cycle_started_at"],
        sqlite_where=sa.text(RECYCLED),
        postgresql_where=sa.text(RECYCLED),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_cycle_started_recycled", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("timing_rating")
        batch.drop_column("fit_rating")

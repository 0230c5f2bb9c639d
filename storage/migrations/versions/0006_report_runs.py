"""report runs: each weekly digest and compliance alert is sent once per period; the week's
dispositions read by a time range

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "period"),
    )
    with op.batch_alter_table("leads") as batch:
        batch.create_index("ix_leads_dispositioned_at", ["dispositioned_at"])


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_dispositioned_at")
    op.drop_table("report_runs")

"""crm activity: a lead's deal as the CRM reports it (opportunity, won, lost, amount)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("opportunity_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("won_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("amount", sa.Numeric(14, 2, asdecimal=False), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("amount")
        batch.drop_column("lost_at")
        batch.drop_column("won_at")
        batch.drop_column("opportunity_at")

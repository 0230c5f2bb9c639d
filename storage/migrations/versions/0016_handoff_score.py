"""handoff score: Handoff's own score beside the one a lead's sender gave

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Leads stored before it have none: their post shows the one score they have.
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("handoff_score", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("handoff_score")

"""claim window: when a lead reserved for its suggested owner opens to the pool

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: open to the pool from the post (`claim: open`, the default, and every older lead).
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("claim_opens_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("claim_opens_at")

"""member standing: Slack guests and deactivated members (users.info), who see no lead data

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("guest", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("deactivated", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("deactivated")
        batch.drop_column("guest")

"""people names: each member's display name from Slack (users.info), and no zone required

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=True))
        batch.alter_column("time_zone", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM people WHERE time_zone IS NULL")
    with op.batch_alter_table("people") as batch:
        batch.alter_column("time_zone", existing_type=sa.String(64), nullable=False)
        batch.drop_column("display_name")

"""owner clock: each lead's owner's time zone, and the members' zones from Slack

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("owner_zone", sa.String(64), nullable=True))
    op.create_table(
        "people",
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("people")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("owner_zone")

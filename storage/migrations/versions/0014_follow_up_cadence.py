"""follow-up cadence: each open lead's next touch due, its counted attempts, and when it met the
follow-up standard (the sweep finds a due touch through next_action_at, which the attempt moves
no later than the touch: no index of its own)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("next_touch_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("touches_counted", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("follow_up_met_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("follow_up_met_at")
        batch.drop_column("touches_counted")
        batch.drop_column("next_touch_due_at")

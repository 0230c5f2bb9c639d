"""info pauses: the questions to marketing a lead's cycle has had answered, (asked, answered)

The steps of a deadline already passed when a question was asked wait its pause out
(bot/domain/escalation.py `windows`): a lead keeps its cycle's pauses to count them. NULL:
none (every lead stored before this).

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("info_pauses", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("info_pauses")

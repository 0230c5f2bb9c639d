"""more info: the question a lead waits on while marketing has it ("request more info")

Revision ID: 0013
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("info_question", sa.Text(), nullable=True))
        batch.add_column(sa.Column("info_asked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("info_asked_by", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("info_asked_by")
        batch.drop_column("info_asked_at")
        batch.drop_column("info_question")

"""refused moved: when sla.yaml moved the segments of leads a refusal group's channel refused

Once sla.yaml moves a segment to another channel, a start posts there the open leads the old
channel refused, but the managers' alert about the old channel still said only that they
were refused: a manager took them for lost. A group records when its leads moved
(`moved_at`), and its alert then says where each segment's leads are posted now and how
many (the refused posts record it). NULL: none moved, or a group from before this revision
whose leads moved before it (its alert says nothing of them, as it did).

Revision ID: 0035
Revises: 0034
"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refusal_groups") as batch:
        batch.add_column(sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refusal_groups") as batch:
        batch.drop_column("moved_at")

"""routing: why each lead went to its rep, its account's domain, and the weighted rotation

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("route_reason", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("account_domain", sa.String(length=255), nullable=True))
    op.create_index("ix_leads_account_domain", "leads", ["account_domain"])
    with op.batch_alter_table("round_robin") as batch:
        batch.add_column(sa.Column("clock", sa.Float(), server_default="0", nullable=False))
    op.create_table(
        "rotation_reps",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("rep", sa.String(length=40), nullable=False),
        sa.Column("settled", sa.Float(), nullable=False),
        sa.Column("since", sa.Float(), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("today", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("this_week", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("segment", "rep"),
    )


def downgrade() -> None:
    op.drop_table("rotation_reps")
    with op.batch_alter_table("round_robin") as batch:
        batch.drop_column("clock")
    op.drop_index("ix_leads_account_domain", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("account_domain")
        batch.drop_column("route_reason")

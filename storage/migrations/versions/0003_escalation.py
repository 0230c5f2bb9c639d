"""escalation: lead cycles and clocks, the next check, and the steps fired

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("cycle_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claim_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_action_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_leads_next_action_at", ["next_action_at"])
    op.create_table(
        "escalations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("ladder", sa.String(length=20), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id", "cycle", "ladder", "step"),
    )


def downgrade() -> None:
    op.drop_table("escalations")
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_next_action_at")
        for column in ("snoozed_until", "next_action_at", "claim_due_at", "cycle_started_at", "cycle"):
            batch.drop_column(column)

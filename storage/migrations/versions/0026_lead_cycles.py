"""lead cycles: the report facts of each cycle a lead has ended, as they stood

A lead back from recycling or nurture starts a new cycle on its row; its ended cycle's facts
are kept here, never updated, so a past week's report stays as it was (storage/reports.py).
Cycles ended before this revision are not here: their row holds only the cycle they are in.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "lead_cycles",
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False, autoincrement=False),
        _at("started_at", nullable=False),
        sa.Column("recycled", sa.Boolean(), nullable=False),
        sa.Column("segment", sa.String(100), nullable=False),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("campaign", sa.String(500), nullable=True),
        sa.Column("owner", sa.String(40), nullable=True),
        sa.Column("tier", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("mql", sa.Boolean(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=True),
        sa.Column("icp", sa.Boolean(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("touches_counted", sa.Integer(), nullable=False),
        sa.Column("disposition_code", sa.String(64), nullable=True),
        sa.Column("disposition_reason", sa.String(200), nullable=True),
        *[
            _at(name)
            for name in (
                "posted_at",
                "claim_due_at",
                "claimed_at",
                "first_touch_due_at",
                "first_touch_at",
                "follow_up_met_at",
                "disposition_due_at",
                "feedback_at",
                "final_due_at",
                "dispositioned_at",
                "opportunity_at",
                "won_at",
                "lost_at",
            )
        ],
        sa.Column("amount", sa.Numeric(14, 2, asdecimal=False), nullable=True),
        sa.Column("fit_rating", sa.SmallInteger(), nullable=True),
        sa.Column("timing_rating", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("lead_id", "cycle"),
    )
    op.create_index("ix_lead_cycles_started_at", "lead_cycles", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_lead_cycles_started_at", table_name="lead_cycles")
    op.drop_table("lead_cycles")

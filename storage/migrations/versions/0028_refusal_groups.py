"""refusal groups: deliveries Slack refused for good, one managers' alert per channel and error

Before, every refused message made one alert each in the escalations channel: an archived
segment channel flooded it. The open group's key is unique, so every replica counts into the
same alert.

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refusal_groups",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("error", sa.String(100), nullable=False),
        sa.Column("open_key", sa.String(160), nullable=True, unique=True),
        sa.Column("alert_channel", sa.String(40), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("last_kind", sa.String(24), nullable=True),
        sa.Column("last_lead_id", sa.Integer(), nullable=True),
        sa.Column("mended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reposted", sa.Integer(), nullable=False),
        sa.Column("recount_waiting", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_refusal_groups_channel", "refusal_groups", ["channel", "error"])


def downgrade() -> None:
    op.drop_index("ix_refusal_groups_channel", "refusal_groups")
    op.drop_table("refusal_groups")

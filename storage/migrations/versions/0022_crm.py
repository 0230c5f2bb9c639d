"""the CRM: a lead's CRM record id, the CRM outbox, and the CRM's notifications handled

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("crm_id", sa.String(64), nullable=True))
        batch.create_index("ix_leads_crm_id", ["crm_id"])
    op.create_table(
        "crm_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column(
            "lead_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("leads.id"),
            nullable=False,
        ),
        sa.Column("key", sa.String(200), nullable=True, unique=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Boolean(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_crm_outbox_due", "crm_outbox", ["state", "not_before", "id"])
    op.create_index("ix_crm_outbox_lead", "crm_outbox", ["lead_id", "state", "id"])
    op.create_table(
        "crm_inbox",
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("crm_inbox")
    op.drop_index("ix_crm_outbox_lead", "crm_outbox")
    op.drop_index("ix_crm_outbox_due", "crm_outbox")
    op.drop_table("crm_outbox")
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_crm_id")
        batch.drop_column("crm_id")

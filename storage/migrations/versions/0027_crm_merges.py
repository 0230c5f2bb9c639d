"""crm merges: each CRM record merged away and the record it lives on in (ids only)

HubSpot does not deliver its notifications in order: "B merged into C" may come before
"A merged into B". Remembering where B went ties A's leads to C, whatever the order.

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_merges",
        sa.Column("merged_id", sa.String(64), primary_key=True),
        sa.Column("crm_id", sa.String(64), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_crm_merges_crm_id", "crm_merges", ["crm_id"])


def downgrade() -> None:
    op.drop_index("ix_crm_merges_crm_id", "crm_merges")
    op.drop_table("crm_merges")

"""App Home: who has opened it; partial indexes of the open leads for a rep's queue and the
overdue list; waiting home requests by person

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The same predicates as storage/tables.py (a migration keeps its own copy: it must not change).
OPEN_MQL = "stage = 'mql'"
OPEN_SAL = "stage = 'sal'"
OPEN_UNTOUCHED = "stage IN ('mql', 'sal') AND first_touch_at IS NULL"
HOME_PENDING = "kind = 'home' AND state = 'pending'"
LEAD_INDEXES = [
    ("ix_leads_owner_open", "owner", OPEN_SAL),
    ("ix_leads_suggested_open", "suggested_owner", OPEN_MQL),
    ("ix_leads_claim_due_open", "claim_due_at", OPEN_MQL),
    ("ix_leads_touch_due_open", "first_touch_due_at", OPEN_UNTOUCHED),
    ("ix_leads_feedback_due_open", "disposition_due_at", OPEN_SAL),
]


def _where(predicate: str) -> dict:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_table(
        "home_openers",
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("first_opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    for name, column, predicate in LEAD_INDEXES:
        op.create_index(name, "leads", [column], **_where(predicate))
    op.create_index("ix_outbox_home_pending", "outbox", ["channel"], **_where(HOME_PENDING))


def downgrade() -> None:
    op.drop_index("ix_outbox_home_pending", table_name="outbox")
    for name, _, _ in reversed(LEAD_INDEXES):
        op.drop_index(name, table_name="leads")
    op.drop_table("home_openers")

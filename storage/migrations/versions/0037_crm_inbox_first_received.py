"""crm inbox first received: when a notification first arrived, kept across its takes

A notification taken and never done (the process killed before its done mark) is taken again
by the CRM's retry after the lease, and `received_at` becomes that retry's time. A change the
CRM gives no time of its own (a Salesforce Flow's without `at`) was then taken as made at the
retry, after a manager's reassignment made meanwhile, which it undid. `first_received_at` keeps
when it first arrived (storage/crm_inbox.py). The rows from before this revision first arrived
when they were received (a retake by an earlier Handoff lost it already).

Nullable, and left NULL on the rows from before: a take again reads a row without it as first
arrived at its `received_at` (a replica of an earlier Handoff still serving during a rolling
upgrade inserts such rows too). Filling it would rewrite every row in this migration's
transaction, the inbox locked by its ALTER TABLE against every replica's take until it ends
(14 s for a million rows on PostgreSQL): the CRMs' deliveries would wait past their timeouts.

Revision ID: 0037
Revises: 0036
"""

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_inbox") as batch:
        batch.add_column(sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_inbox") as batch:  # SQLite: the table is copied
        batch.drop_column("first_received_at")

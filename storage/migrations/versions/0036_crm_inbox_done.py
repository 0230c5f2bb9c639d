"""crm inbox done: a CRM notification is done only once its change is applied

The inbox recorded a notification as handled before its change was applied, in its own
transaction: a process killed in between (kill -9, OOM) left it recorded, the CRM's retry was
ignored and the change (a new lead, an owner, a status) was lost. A notification is now taken
(`received_at`, done_at NULL) and done once applied (`done_at`); one taken and never done is
taken again by the CRM's retry after a lease (storage/crm_inbox.py, `LEASE`). The rows from
before this revision were applied, or released when applying failed: they are done when they
were received, so their retries are still ignored.

Revision ID: 0036
Revises: 0035
"""

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_inbox") as batch:
        batch.add_column(sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    # One statement: the inbox keeps 7 days of notifications (retention, `KEEP`).
    inbox = sa.table("crm_inbox", sa.column("received_at"), sa.column("done_at"))
    op.execute(inbox.update().values(done_at=inbox.c.received_at))


def downgrade() -> None:
    # The rows taken and not done go: an earlier Handoff would ignore their retries for good.
    inbox = sa.table("crm_inbox", sa.column("done_at"))
    op.execute(inbox.delete().where(inbox.c.done_at.is_(None)))
    with op.batch_alter_table("crm_inbox") as batch:  # SQLite: the table is copied
        batch.drop_column("done_at")

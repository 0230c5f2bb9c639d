"""crm inbox retention: the CRM record each notification is about, and indexes to prune

The inbox's keys name the CRM contact in plain (`<eventId>:<type>:<objectId>`,
`workflow:contact:<id>:…`, a Salesforce Flow's own event id): an erasure drops the rows of
the person's records (`crm_id`), and the hourly retention job drops rows older than the CRMs'
retries (`received_at`). HubSpot's rows are given the id their key names; Salesforce's keys are
the Flow's own, so its rows from before keep none and go with retention.

(Numbered 0030 and revising 0028: 0029 is another change's, and the two are chained at merge.)

Revision ID: 0030
Revises: 0029
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_BATCH = 1000


def _record(event_id: str) -> str | None:
    """The contact a HubSpot key names: its third part, in every shape Handoff makes
    (`<eventId>:contact.<type>:<objectId>[:<property>]`, `<eventId>:contact.merge:<primary>:…`,
    `workflow:contact:<id>:<digest>`)."""
    parts = event_id.split(":")
    return parts[2] if len(parts) > 2 and parts[2].isdigit() else None


def upgrade() -> None:
    op.add_column("crm_inbox", sa.Column("crm_id", sa.String(64), nullable=True))
    op.create_index("ix_crm_inbox_crm_id", "crm_inbox", ["crm_id"])
    op.create_index("ix_crm_inbox_received_at", "crm_inbox", ["received_at"])
    inbox = sa.table(
        "crm_inbox", sa.column("source"), sa.column("event_id"), sa.column("crm_id")
    )
    bind = op.get_bind()
    done = ""
    while True:  # in key order, a batch at a time (the table was never pruned)
        keys = (
            bind.execute(
                sa.select(inbox.c.event_id)
                .where(inbox.c.source == "hubspot", inbox.c.event_id > done)
                .order_by(inbox.c.event_id)
                .limit(_BATCH)
            )
            .scalars()
            .all()
        )
        found = [(key, record) for key in keys if (record := _record(key)) is not None]
        if found:
            bind.execute(
                inbox.update()
                .where(inbox.c.source == "hubspot", inbox.c.event_id == sa.bindparam("p_key"))
                .values(crm_id=sa.bindparam("p_record")),
                [{"p_key": key, "p_record": record} for key, record in found],
            )
        if len(keys) < _BATCH:
            return
        done = keys[-1]


def downgrade() -> None:
    op.drop_index("ix_crm_inbox_received_at", "crm_inbox")
    op.drop_index("ix_crm_inbox_crm_id", "crm_inbox")
    with op.batch_alter_table("crm_inbox") as batch:  # SQLite: the table is copied
        batch.drop_column("crm_id")

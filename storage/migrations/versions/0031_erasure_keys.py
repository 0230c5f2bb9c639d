"""erasure keys: each erasure key that has made digests, so the start-up check reads no leads

`keyed_store` refuses to start with another erasure key (or none) than the one erased leads'
digests were made with. It used to find those keys with `external_id LIKE 'erased:hmac:%'`,
which no index serves on PostgreSQL with a non-C collation (PostgreSQL's docs, "Operator
Classes and Operator Families": a LIKE prefix needs `text_pattern_ops` or the C collation):
every start of `serve`, `forget`, `import` and `sweep`, and every replica, read the whole
leads table. The key ids are recorded here instead, by each erasure; this migration fills the
table from the digests already stored (external ids and CRM ids), so an upgraded database
still refuses the wrong key.

(Numbered 0031 and revising 0030: the merger re-chains numbers.)

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_KEYED = "erased:hmac:"  # bot/domain/erasure.py KEYED (a migration keeps its own copy)


def upgrade() -> None:
    op.create_table(
        "erasure_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("first_erased_at", sa.DateTime(timezone=True), nullable=True),
    )
    # One pass over the leads, once: the key id is the digest's 8 characters after the prefix
    # (SQL strings count from 1), as the check read them before.
    found = " UNION ALL ".join(
        f"SELECT substr({column}, {len(_KEYED) + 1}, 8) AS key_id, erased_at FROM leads "
        f"WHERE {column} LIKE '{_KEYED}%'"
        for column in ("external_id", "crm_id")
    )
    op.execute(
        "INSERT INTO erasure_keys (key_id, first_erased_at) "
        f"SELECT key_id, MIN(erased_at) FROM ({found}) AS digests GROUP BY key_id"
    )


def downgrade() -> None:
    op.drop_table("erasure_keys")

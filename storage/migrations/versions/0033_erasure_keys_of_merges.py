"""erasure keys of merges: the keys of the digests kept of an erased person's merged records

A HubSpot merge of an erased person's record, told after the erasure, keeps the merged
records as digests (`crm_merges.merged_id`), made with the erasure key of the time. Their key
was not recorded in `erasure_keys`, so when those were the only digests of a key (the person
erased before the key was set), a start with another key, or none, was not refused and the
merged records were no longer known as the erased person's. Each merge records its key now;
this migration fills in the keys of the merge digests already stored.

Revision ID: 0033
Revises: 0032
"""

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_KEYED = "erased:hmac:"  # bot/domain/erasure.py KEYED (a migration keeps its own copy)


def upgrade() -> None:
    # The key id is the digest's 8 characters after the prefix (SQL strings count from 1), as
    # migration 0031 read the leads' digests; a key recorded already keeps its row.
    key_id = f"substr(merged_id, {len(_KEYED) + 1}, 8)"
    op.execute(
        "INSERT INTO erasure_keys (key_id, first_erased_at) "
        f"SELECT {key_id}, MIN(merged_at) FROM crm_merges "
        f"WHERE merged_id LIKE '{_KEYED}%' "
        f"AND {key_id} NOT IN (SELECT key_id FROM erasure_keys) "
        f"GROUP BY {key_id}"
    )


def downgrade() -> None:
    pass  # the keys stay recorded: 0031's table holds them, whichever migration filled them

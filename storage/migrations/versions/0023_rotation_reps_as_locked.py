"""PostgreSQL: a segment's rotation rows read as they are once its lock is granted

A turn locks its segment's `round_robin` row and reads the pool's `rotation_reps` rows in one
statement (storage/rotation.py `_hold_read_pg`). A statement's reads share the snapshot taken
when it started, so a turn that waited for another replica's lock read the rows as they were
before that replica's turn, and had to read them again: a second round trip on every wait. A
VOLATILE function takes a snapshot of its own at each query it runs (PostgreSQL, "Function
Volatility Categories"); called on the lock's returned row, it runs once the lock is granted
and reads the rows as the other replica committed them. SQLite has one writer: nothing to do.

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION rotation_reps_as_locked(p_segment VARCHAR) RETURNS SETOF rotation_reps"
        " LANGUAGE sql VOLATILE"
        " AS $$ SELECT * FROM rotation_reps WHERE segment = p_segment $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION rotation_reps_as_locked(VARCHAR)")

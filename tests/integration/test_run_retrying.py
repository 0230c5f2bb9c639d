"""`Database.run_retrying`: a transaction PostgreSQL cancelled for a deadlock or a
serialization failure runs again, a few times; any other error, and the last try's, is the
caller's (SQLite and PostgreSQL: the error is made by the unit of work)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from storage.repository import Store


class _ServerError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def cancelled(sqlstate: str) -> DBAPIError:
    return DBAPIError("COMMIT", None, _ServerError(sqlstate))


def failing(times: int, sqlstate: str, tries: list[int]) -> Any:
    """Work that raises `sqlstate` at its first `times` runs, then answers 1."""

    def work(db: Connection) -> int:
        tries.append(1)
        db.execute(text("SELECT 1"))
        if len(tries) <= times:
            raise cancelled(sqlstate)
        return 1

    return work


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_cancelled_transaction_runs_again(
    store: Store, sqlstate: str, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[int] = []
    assert await store.db.run_retrying(failing(2, sqlstate, tries), "erasure") == 1
    assert len(tries) == 3
    assert len([r for r in caplog.records if "runs again" in r.getMessage()]) == 2


async def test_it_gives_up_after_its_last_try(store: Store) -> None:
    tries: list[int] = []
    with pytest.raises(DBAPIError, match="40P01"):
        await store.db.run_retrying(failing(3, "40P01", tries), "erasure")
    assert len(tries) == 3


async def test_any_other_error_is_not_run_again(store: Store) -> None:
    tries: list[int] = []
    with pytest.raises(DBAPIError, match="23505"):  # unique_violation: the caller's to judge
        await store.db.run_retrying(failing(1, "23505", tries), "erasure")
    assert len(tries) == 1

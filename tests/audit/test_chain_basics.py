"""The audit log refuses UPDATE and DELETE at the database, and verify walks the chain."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.core.db import Database


async def test_events_are_chained_by_hash(database: Database) -> None:
    async with database.transaction() as session:
        audit.record(session, AuditContext(), "test.first")
        audit.record(session, AuditContext(), "test.second")
    events = await _last(database, 2)
    assert events[1].prev_hash == events[0].hash
    assert events[1].id == events[0].id + 1
    async with database.sessionmaker() as session:
        assert (await audit.verify_chain(session)).valid


async def _last(database: Database, n: int) -> list[audit.AuditEvent]:  # type: ignore[name-defined]
    from sqlmodel import select

    from ctcp.audit.models import AuditEvent

    async with database.sessionmaker() as session:
        rows = (
            await session.exec(
                select(AuditEvent)
                .order_by(AuditEvent.id.desc())  # type: ignore[union-attr]
                .limit(n)
            )
        ).all()
    return list(reversed(rows))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'tampered'",
        "DELETE FROM audit_events",
    ],
)
async def test_database_refuses_update_and_delete(database: Database, statement: str) -> None:
    async with database.transaction() as session:
        audit.record(session, AuditContext(), "test.protected")
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.exec(text(statement))  # type: ignore[call-overload]


async def test_postgresql_refuses_truncate(database: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.exec(text("TRUNCATE audit_events"))  # type: ignore[call-overload]

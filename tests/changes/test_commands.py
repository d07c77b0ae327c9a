"""`ctcp changes backfill | purge`: objects written around the feed get their entries;
retention runs from the command line as the app's background pass does."""

import asyncio
import uuid

from sqlmodel import col, select

from ctcp.assistance.models import Need
from ctcp.changes.models import ChangeEntry, FeedObject
from ctcp.core.db import Database
from tests.factories import make_org, run_ctcp


async def _write_need_directly(url: str, need_id: uuid.UUID) -> None:
    database = Database(url)
    try:
        state = await make_org(database)
        async with database.transaction() as session:
            # A bulk load writes tables directly, without the services' touch().
            session.add(
                Need(
                    id=need_id,
                    state_id=state.id,
                    area="border_management",
                    description="Passenger data.",
                    priority="high",
                    source="state_request",
                )
            )
    finally:
        await database.dispose()


async def _recorded(url: str, need_id: uuid.UUID) -> tuple[list[tuple[str, bool]], bool]:
    database = Database(url)
    try:
        async with database.transaction() as session:
            statement = select(ChangeEntry).where(col(ChangeEntry.object_id) == need_id)
            entries = (await session.exec(statement)).all()
            known = await session.get(FeedObject, ("need", need_id)) is not None
            return [(e.object_type, e.generic_after) for e in entries], known
    finally:
        await database.dispose()


def test_backfill_records_rows_written_directly_once(fresh_database_url: str) -> None:
    need_id = uuid.uuid4()
    asyncio.run(_write_need_directly(fresh_database_url, need_id))
    env = {"CTCP_DATABASE_URL": fresh_database_url}
    code, output = run_ctcp(env, "changes", "backfill")
    assert code == 0, output
    assert "1 objects recorded" in output
    # Not shared: recorded as read by no Compact entity.
    assert asyncio.run(_recorded(fresh_database_url, need_id)) == ([("need", False)], True)
    # Recorded once: a second run finds nothing new.
    code, output = run_ctcp(env, "changes", "backfill")
    assert code == 0 and "0 objects recorded" in output, output
    code, output = run_ctcp(env, "changes", "purge")
    assert code == 0 and "entries past retention removed" in output, output

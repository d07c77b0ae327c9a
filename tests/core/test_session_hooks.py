"""The session hooks run by `commit` and `rollback`, as `core/db.py` writes the protocol down.

On a scratch table of a fresh database: its rows can be counted, updated and deleted,
unlike audit events. What is committed is read back from a connection of its own.
"""

import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.db import (
    READ_ONLY_OPTION,
    Database,
    SessionCallback,
    commit,
    make_engine,
    on_after_commit,
    on_after_rollback,
    on_before_commit,
    on_failure,
    rollback,
)
from tests.conftest import database_like

NOTES = Table(
    "hook_notes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("tag", String(32), nullable=False),
    Column("note", String(40), nullable=False),
)


class Refused(Exception):
    """What the unit of work under test fails with."""


@dataclass
class Notes:
    """One test's notes: written through a session, read back from a separate connection."""

    database: Database
    reader: AsyncEngine
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def write(self, session: AsyncSession, note: str) -> None:
        connection = await session.connection()
        await connection.execute(insert(NOTES).values(tag=self.tag, note=note))

    async def committed(self) -> list[str]:
        async with self.reader.connect() as connection:
            return await self._read(connection)

    async def visible_to(self, session: AsyncSession) -> list[str]:
        return await self._read(await session.connection())

    async def _read(self, connection: AsyncConnection) -> list[str]:
        query = select(NOTES.c.note).where(NOTES.c.tag == self.tag).order_by(NOTES.c.id)
        return list((await connection.execute(query)).scalars())


@pytest.fixture(scope="module")
def scratch_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database_like(database_url, tmp_path_factory.mktemp("hooks") / "hooks.db") as url:
        yield url


@pytest.fixture(scope="module")
async def scratch(scratch_url: str) -> AsyncIterator[tuple[Database, AsyncEngine]]:
    """The database under test, and an unpooled reader that takes no SQLite write lock."""
    database = Database(scratch_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(NOTES.metadata.create_all)
    reader = make_engine(scratch_url, pooled=False)
    yield database, reader.execution_options(**{READ_ONLY_OPTION: True})
    await reader.dispose()
    await database.dispose()


@pytest.fixture
def notes(scratch: tuple[Database, AsyncEngine]) -> Notes:
    return Notes(*scratch)


async def test_before_commit_hooks_write_in_the_unit_and_commit_with_it(notes: Notes) -> None:
    seen_from_outside: list[list[str]] = []

    async def chain(session: AsyncSession) -> None:
        seen_from_outside.append(await notes.committed())
        await notes.write(session, "chained")

    async def then(session: AsyncSession) -> None:
        await notes.write(session, "then")

    async with notes.database.transaction() as session:
        await notes.write(session, "change")
        on_before_commit(session, chain)
        on_before_commit(session, then)
    assert seen_from_outside == [[]]
    assert await notes.committed() == ["change", "chained", "then"]


async def test_a_failing_before_commit_hook_commits_nothing(notes: Notes) -> None:
    kept: list[str] = []

    async def chain(session: AsyncSession) -> None:
        await notes.write(session, "chained")

    async def broken(_session: AsyncSession) -> None:
        raise Refused

    async def survivor(_session: AsyncSession) -> None:
        kept.append("survivor")

    with pytest.raises(Refused):
        async with notes.database.transaction() as session:
            await notes.write(session, "change")
            on_before_commit(session, chain)
            on_before_commit(session, broken)
            on_after_rollback(session, survivor)
    assert await notes.committed() == []
    assert kept == []  # dropped when the commit began


async def test_after_commit_hooks_see_the_unit_committed_first_ones_first(notes: Notes) -> None:
    runs: list[tuple[str, list[str]]] = []

    def after(name: str) -> SessionCallback:
        async def hook(_session: AsyncSession) -> None:
            runs.append((name, await notes.committed()))

        return hook

    registered_first, moved_first = after("registered first"), after("moved first")
    async with notes.database.transaction() as session:
        await notes.write(session, "change")
        on_after_commit(session, registered_first)
        on_after_commit(session, moved_first)
        on_after_commit(session, moved_first, first=True)
    assert runs == [("moved first", ["change"]), ("registered first", ["change"])]


async def test_a_rollback_keeps_only_what_survives_it(notes: Notes) -> None:
    errors: list[BaseException] = []
    commit_hooks: list[str] = []
    seen_by_survivor: list[list[str]] = []

    async def commit_hook(_session: AsyncSession) -> None:
        commit_hooks.append("ran")

    async def count_failure(session: AsyncSession) -> None:
        seen_by_survivor.append(await notes.visible_to(session))
        await notes.write(session, "counted")

    async def audit_refusal(failed: AsyncSession, error: BaseException) -> None:
        errors.append(error)
        on_after_rollback(failed, keep_refusal)  # as `audit.record` does for a denial

    async def keep_refusal(session: AsyncSession) -> None:
        await notes.write(session, "refused")
        on_before_commit(session, chain)

    async def chain(session: AsyncSession) -> None:
        await notes.write(session, "chained")

    refused = Refused()
    with pytest.raises(Refused) as raised:
        async with notes.database.transaction() as session:
            await notes.write(session, "change")
            on_before_commit(session, commit_hook)
            on_after_commit(session, commit_hook)
            on_after_rollback(session, count_failure)
            on_failure(session, audit_refusal)
            raise refused
    assert raised.value is refused
    assert errors == [refused]
    assert commit_hooks == []
    assert seen_by_survivor == [[]]  # a fresh transaction: the change is gone
    assert await notes.committed() == ["counted", "refused", "chained"]


@pytest.mark.parametrize("broken_hook", ["on_failure", "on_after_rollback"])
async def test_a_failing_survivor_is_logged_and_the_original_error_stands(
    notes: Notes, caplog: pytest.LogCaptureFixture, broken_hook: str
) -> None:
    async def survivor(session: AsyncSession) -> None:
        await notes.write(session, "kept")

    async def broken(_session: AsyncSession, *_error: BaseException) -> None:
        raise RuntimeError("survivor broke")

    with caplog.at_level(logging.ERROR, logger="ctcp.db"), pytest.raises(Refused):
        async with notes.database.transaction() as session:
            on_after_rollback(session, survivor)
            if broken_hook == "on_failure":
                on_failure(session, broken)
            else:
                on_after_rollback(session, broken)
            raise Refused
    [logged] = [record for record in caplog.records if record.name == "ctcp.db"]
    assert logged.exc_info is not None
    assert str(logged.exc_info[1]) == "survivor broke"
    assert await notes.committed() == []  # the survivors are kept together or not at all


async def test_without_an_error_a_failing_survivor_raises(notes: Notes) -> None:
    async def broken(_session: AsyncSession) -> None:
        raise RuntimeError("survivor broke")

    async with notes.database.sessionmaker() as session:
        on_after_rollback(session, broken)
        with pytest.raises(RuntimeError, match="survivor broke"):
            await rollback(session)


async def test_a_commit_drops_the_rollback_hooks_and_a_rollback_the_commit_hooks(
    notes: Notes,
) -> None:
    runs: list[str] = []

    async def hook(_session: AsyncSession, *_error: BaseException) -> None:
        runs.append("ran")

    async with notes.database.sessionmaker() as session:
        on_after_rollback(session, hook)
        on_failure(session, hook)
        await notes.write(session, "first unit")
        await commit(session)
        await notes.write(session, "second unit")
        await rollback(session, Refused())
        assert runs == []
        on_before_commit(session, hook)
        on_after_commit(session, hook)
        await rollback(session, Refused())
        await notes.write(session, "third unit")
        await commit(session)
    assert runs == []
    assert await notes.committed() == ["first unit", "third unit"]


async def test_a_callback_registered_twice_runs_once(notes: Notes) -> None:
    runs: Counter[str] = Counter()

    async def before(_session: AsyncSession) -> None:
        runs["before commit"] += 1

    async def after(_session: AsyncSession) -> None:
        runs["after commit"] += 1

    async def failure(_session: AsyncSession, _error: BaseException) -> None:
        runs["failure"] += 1

    async def survivor(_session: AsyncSession) -> None:
        runs["after rollback"] += 1

    async with notes.database.sessionmaker() as session:
        for _ in range(2):
            on_before_commit(session, before)
            on_after_commit(session, after)
        await commit(session)
        for _ in range(2):
            on_failure(session, failure)
            on_after_rollback(session, survivor)
        await rollback(session, Refused())
    assert runs == {"before commit": 1, "after commit": 1, "failure": 1, "after rollback": 1}

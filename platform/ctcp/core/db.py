"""Engines, sessions and column types shared by every table."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

logger = logging.getLogger("ctcp.db")

# Stable constraint names, so migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

READ_ONLY_OPTION = "ctcp_read_only"
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 10
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> URL:
    """Turn a plain `sqlite:///...` or `postgresql://...` URL into one with an async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=ASYNC_DRIVERS[backend])


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        """Keyset cursors decode their timestamps by it."""
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so writers queue instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Nearly every request writes (at least its audit event): take the write lock up
        # front, so two transactions never deadlock upgrading a read lock. Read-only work
        # (exports, chain verification) begins deferred: in WAL mode it blocks no writer.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 10, pooled: bool = True) -> AsyncEngine:
    """An async engine for a plain database URL, configured for its backend."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        if target.database and target.database != ":memory:":
            Path(target.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
        engine = create_async_engine(target, connect_args={"timeout": 30}, **options)
        _configure_sqlite(engine)
        return engine
    # asyncpg waits 60 s for a server that accepts the connection but never answers:
    # give up sooner, so a request answers 503 instead of hanging.
    connect_args = {"timeout": CONNECT_TIMEOUT_SECONDS}
    if not pooled:
        return create_async_engine(target, poolclass=NullPool, connect_args=connect_args)
    # A fixed pool: overflow connections are closed on return, and reopening them under
    # load (TLS negotiation included) cost more than waiting for a pooled one. No ping per
    # checkout (a round trip per request): a connection the server closed while it sat in
    # the pool is replaced at checkout for free (below); one that dies in use fails its
    # request with a 503, and SQLAlchemy then invalidates the whole pool, so the app
    # recovers by itself once the database is back. A request waits at most
    # POOL_TIMEOUT_SECONDS for a free connection, then answers 503.
    engine = create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(
    _dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """Refuse a pooled connection that asyncpg already knows is closed (server restarted).

    No round trip: asyncpg marks a connection closed as soon as the server's end of the
    socket goes away. DisconnectionError makes the pool open a new connection instead.
    """
    driver_connection = record.driver_connection
    if driver_connection is not None and driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


# Session hooks: the unit-of-work protocol, written down here once.
#
# A feature registers async callbacks on the session it was given; `commit` and
# `rollback` run them. They are the only ways the app commits or rolls back
# (`Database.transaction`, hence `get_session` for every request, calls them): a bare
# `session.commit()` would commit the unit without the audit events chained for it, and a
# bare `session.rollback()` would lose the refusals that must outlive their request.
#
# commit(session):
#   1. drops the rollback hooks (on_after_rollback, on_failure): the unit succeeded;
#   2. runs the before-commit callbacks in registration order, in the unit's own
#      transaction: what they write is committed with the unit or not at all (the audit
#      log chains its pending events here, holding the chain head's lock until the commit);
#   3. commits;
#   4. runs the after-commit callbacks, those registered `first=True` first (the latest
#      at the front), then in registration order. They run outside the unit's transaction
#      and see its data committed; what they write through the session is never committed
#      (they use their own connection). One that raises skips the rest, and its error
#      propagates though the unit stays committed.
#   If step 2 or 3 fails, the error propagates and the session rolls back when it closes;
#   the rollback hooks, dropped at step 1, do not run.
#
# rollback(session, error):
#   1. drops the commit hooks (on_before_commit, on_after_commit): their work is undone;
#   2. rolls back;
#   3. runs the failure callbacks with `error` (`authz.guard.admit` audits a 403 or 404 raised
#      later in the route here), or drops them when there is no error;
#   4. runs the after-rollback callbacks ("survivors"), including those registered at step
#      3, in a fresh transaction of the same session, then `commit`s it as above (its
#      before-commit callbacks chain the survivors' audit events), so what they record
#      (denials, throttle counters) outlives the request it refused. That transaction
#      is committed only if there are survivors: a failure callback keeps its writes by
#      registering one (as `audit.record` does for a denial).
#   If step 3 or 4 raises, that is logged, the fresh transaction is rolled back, and the
#   original error stands (without one, the callback's error propagates).
#
# Hooks wait in `session.info` until the commit or rollback that runs or drops them.
# Registering the same callback again keeps one registration, so it runs once (`first=True`
# moves it to the front); two closures are two callbacks. A callback that registers one of
# its own kind while they run does not get it run in this round.
SessionCallback = Callable[[AsyncSession], Awaitable[None]]
FailureCallback = Callable[[AsyncSession, BaseException], Awaitable[None]]
BEFORE_COMMIT_KEY = "ctcp.before_commit"
AFTER_COMMIT_KEY = "ctcp.after_commit"
AFTER_ROLLBACK_KEY = "ctcp.after_rollback"
ON_FAILURE_KEY = "ctcp.on_failure"


def _register(session: AsyncSession, key: str, callback: Callable[..., Awaitable[None]]) -> None:
    callbacks: list[Callable[..., Awaitable[None]]] = session.info.setdefault(key, [])
    if callback not in callbacks:
        callbacks.append(callback)


def on_before_commit(
    session: AsyncSession, callback: SessionCallback, *, first: bool = False
) -> None:
    """Run `callback(session)` in this session's transaction, right before it commits
    (`first=True`: before those registered without it, as the change feed's recorder does,
    so that it takes its lock before the audit chain's, always in that order)."""
    _register(session, BEFORE_COMMIT_KEY, callback)
    if first:
        callbacks: list[SessionCallback] = session.info[BEFORE_COMMIT_KEY]
        callbacks.insert(0, callbacks.pop(callbacks.index(callback)))


def on_after_commit(
    session: AsyncSession, callback: SessionCallback, *, first: bool = False
) -> None:
    """Run `callback(session)` once this session's transaction has committed."""
    _register(session, AFTER_COMMIT_KEY, callback)
    if first:
        callbacks: list[SessionCallback] = session.info[AFTER_COMMIT_KEY]
        callbacks.insert(0, callbacks.pop(callbacks.index(callback)))


def on_after_rollback(session: AsyncSession, callback: SessionCallback) -> None:
    """Run `callback(session)` in a fresh transaction, committed, if this one rolls back."""
    _register(session, AFTER_ROLLBACK_KEY, callback)


def on_failure(session: AsyncSession, callback: FailureCallback) -> None:
    """Run `callback(session, error)` after a rollback caused by `error` (to audit it)."""
    _register(session, ON_FAILURE_KEY, callback)


async def commit(session: AsyncSession) -> None:
    """Run the before-commit callbacks, commit, run the after-commit ones (protocol above)."""
    session.info.pop(AFTER_ROLLBACK_KEY, None)
    session.info.pop(ON_FAILURE_KEY, None)
    callbacks: list[SessionCallback] = session.info.pop(BEFORE_COMMIT_KEY, [])
    for callback in callbacks:
        await callback(session)
    await session.commit()
    for callback in session.info.pop(AFTER_COMMIT_KEY, []):
        await callback(session)


async def rollback(session: AsyncSession, error: BaseException | None = None) -> None:
    """Roll back, then run and commit what must survive the rollback (protocol above).

    If writing the survivors fails too, that is logged and the original error stands.
    """
    session.info.pop(BEFORE_COMMIT_KEY, None)
    session.info.pop(AFTER_COMMIT_KEY, None)
    await session.rollback()
    failure_callbacks: list[FailureCallback] = session.info.pop(ON_FAILURE_KEY, [])
    try:
        if error is not None:
            for failure_callback in failure_callbacks:
                await failure_callback(session, error)
        survivors: list[SessionCallback] = session.info.pop(AFTER_ROLLBACK_KEY, [])
        if survivors:
            for callback in survivors:
                await callback(session)
            await commit(session)
    except Exception:
        logger.exception("could not record what had to survive a rollback")
        await session.rollback()
        if error is None:
            raise


class Database:
    """One engine and its session factory, held by the app for its lifetime."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        # For long reads that write nothing: on SQLite they take no write lock.
        self.read_engine = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        self.read_sessionmaker = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )

    def share(self, key: str, value: object) -> None:
        """Make `value` available as `session.info[key]` in every session of this database."""
        info = dict(self.sessionmaker.kw.get("info") or {})
        info[key] = value
        self.sessionmaker.configure(info=info)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed on success; on failure rolled back, keeping refusals."""
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException as error:
                await rollback(session, error)
                raise
            await commit(session)

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response leaves, or rolled back."""
    async with (await get_database(request)).transaction() as session:
        yield session


# scope="function": a failed commit becomes an error response, never a lost write answered 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]

"""Alembic environment: runs migrations on the async engine of CTCP_MIGRATION_DATABASE_URL."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from ctcp.core.config import get_settings
from ctcp.core.db import make_engine
from ctcp.models import metadata

config = context.config
target_metadata = metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().migration_database_url


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Full-text search is made by a migration by hand: SQLite's FTS5 tables (and their
    # shadow tables), PostgreSQL's expression indexes; the models do not describe them.
    if name is None:
        return True
    if type_ == "table" and "_fts" in name:
        return False
    return not (type_ == "index" and name.endswith("_search"))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(_database_url(), pooled=False)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `ctcp db upgrade`")
asyncio.run(_run_online())

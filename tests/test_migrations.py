"""Migrations are the only schema: they apply to an empty database and match the models."""

import asyncio

from sqlalchemy import inspect

from ctcp.core import migrations
from ctcp.core.db import make_engine


def test_upgrade_head_on_an_empty_database_then_no_drift(database_url: str) -> None:
    # This database copies the session's template, built by `alembic upgrade head`;
    # check agrees.
    migrations.check(database_url)


def test_schema_has_every_table_with_named_constraints(database_url: str) -> None:
    async def tables() -> dict[str, list[str]]:
        engine = make_engine(database_url, pooled=False)
        async with engine.connect() as connection:

            def read(sync_connection):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_connection)
                return {
                    name: [fk["name"] for fk in inspector.get_foreign_keys(name)]
                    for name in inspector.get_table_names()
                }

            result = await connection.run_sync(read)
        await engine.dispose()
        return result

    found = asyncio.run(tables())
    assert {
        "organizations",
        "users",
        "user_roles",
        "user_sessions",
        "audit_events",
        "audit_chain_head",
        "login_throttles",
        "alembic_version",
    } <= set(found)
    assert found["users"] == ["fk_users_organization_id_organizations"]


def test_upgrade_is_idempotent_at_head(database_url: str) -> None:
    migrations.upgrade(database_url)
    migrations.check(database_url)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(database: object, backend: str) -> None:
    import pytest

    if backend != "sqlite":
        pytest.skip("SQLite pragmas")
    async with database.engine.connect() as connection:  # type: ignore[attr-defined]
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    assert (journal, foreign_keys) == ("wal", 1)


# Foreign keys whose referenced rows are never deleted, so no delete ever checks them:
# organizations are deactivated, not deleted; consent events are append-only.
NEVER_CHECKED_ON_DELETE = {
    ("consent_events", "on_behalf_of"),
    ("publications", "consent_event_id"),
    ("assistance_requests", "filed_by_org"),
    ("assistance_request_transitions", "by_org"),
    ("plan_indicator_updates", "recorded_by_org"),
}


def test_every_foreign_key_that_a_delete_checks_has_an_index(database_url: str) -> None:
    """Without one, each deleted parent row reads the whole child table (found at scale:
    editing a draft checked every need for each recommendation it replaced)."""

    async def unindexed() -> set[tuple[str, str]]:
        engine = make_engine(database_url, pooled=False)
        async with engine.connect() as connection:

            def read(sync_connection):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_connection)
                missing = set()
                for table in inspector.get_table_names():
                    leading = {index["column_names"][0] for index in inspector.get_indexes(table)}
                    leading |= {
                        constraint["column_names"][0]
                        for constraint in inspector.get_unique_constraints(table)
                    }
                    primary = inspector.get_pk_constraint(table)["constrained_columns"]
                    leading |= set(primary[:1])
                    for foreign_key in inspector.get_foreign_keys(table):
                        column = foreign_key["constrained_columns"][0]
                        if column not in leading:
                            missing.add((table, column))
                return missing

            result = await connection.run_sync(read)
        await engine.dispose()
        return result

    assert asyncio.run(unindexed()) == NEVER_CHECKED_ON_DELETE

"""Test fixtures: every test runs on SQLite and on PostgreSQL, schema from the migrations.

Each backend gets one template database per test session, made by `alembic upgrade head`;
the session's database, and any further one a test needs, is a copy of it.
Tests commit for real (the behaviour under test is often the commit itself: audit
events written with their change, denials surviving a rollback, counters shared by two
app instances), so each test creates its own uniquely named data instead of relying on
a rolled-back transaction; audit rows could not be removed anyway (triggers refuse it).
"""

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from ctcp.app import create_app
from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.core import migrations
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from tests.factories import FAST_ARGON2

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


def prepare(url: str) -> None:
    """Migrate to head and load the default policy, as `ctcp db upgrade` + `policy load` do."""
    migrations.upgrade(url)

    async def load() -> None:
        database = Database(url)
        async with database.transaction() as session:
            await policy.sync_policy(session, policy.read_policy_file(), context=AuditContext())
        await database.dispose()

    asyncio.run(load())


def _pg_admin_url() -> str:
    return os.environ.get("CTCP_TEST_DATABASE_URL", DEFAULT_PG_URL)


async def _pg_execute(url: str, statement: str) -> None:
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def _new_database(backend: str, sqlite_path: Path, template: str | None = None) -> Iterator[str]:
    """A new database of `backend` (policy loaded), dropped afterwards: a copy of
    `template` (a file copy, or PostgreSQL's CREATE DATABASE ... TEMPLATE), else migrated."""
    if backend == "sqlite":
        url = f"sqlite:///{sqlite_path}"
        if template is None:
            prepare(url)
        else:
            shutil.copyfile(str(make_url(template).database), sqlite_path)
        yield url
        return
    admin_url = _pg_admin_url()
    name = f"ctcp_test_{secrets.token_hex(4)}"
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    try:
        asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"{copy}'))
    except (OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL unreachable at {admin_url}: {error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if template is None:
            prepare(url)
        yield url
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Each backend's template while its `database_url` lives: migrated once, never connected
# to again (PostgreSQL copies only a database nobody is connected to).
_TEMPLATES: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`postgresql_only` / `sqlite_only` tests are not collected for the other backend."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        other = {"postgresql_only": "sqlite", "sqlite_only": "postgresql"}
        if any(
            item.get_closest_marker(marker) is not None and backend == excluded
            for marker, excluded in other.items()
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, migrated database of one backend, dropped at the end of the session."""
    backend: str = request.param
    directory = tmp_path_factory.mktemp(backend)
    with _new_database(backend, directory / "template.db") as template:
        _TEMPLATES[backend] = template
        try:
            with database_like(template, directory / "ctcp-test.db") as url:
                yield url
        finally:
            del _TEMPLATES[backend]


@contextmanager
def database_like(database_url: str, sqlite_path: Path) -> Iterator[str]:
    """A new migrated database (policy loaded) of `database_url`'s backend, dropped after:
    a copy of the backend's template, which costs a fraction of the migrations."""
    backend = make_url(database_url).get_backend_name()
    with _new_database(backend, sqlite_path, _TEMPLATES[backend]) as url:
        yield url


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A separate, migrated database of the same backend, for tests that damage it."""
    with database_like(database_url, tmp_path / "fresh.db") as url:
        yield url


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    validated = Settings(
        environment="test",
        database_url=database_url,
        var_dir=Path(tmp_path_factory.mktemp("var")),
        secret_key="test-secret-key-" + "x" * 32,
        # Every test calls from one address: limits are tested on apps of their own.
        rate_limit_per_client=1_000_000,
        rate_limit_per_address=1_000_000,
        login_address_max_failures=1_000_000,
        # No background reminder pass: tests run `send_reminders` when they mean to.
        contact_reminder_seconds=0,
        # Nor background passes of the change feed: a feed read records expiries itself,
        # and tests apply retention when they mean to.
        change_feed_purge_seconds=0,
        change_feed_sweep_seconds=0,
        # Nor a webhook sender; tests' receivers listen on the loopback address.
        webhook_poll_seconds=0,
        webhook_allowed_hosts=["127.0.0.1"],
    )
    # A copy is not validated: argon2 below the floor Settings enforces, for speed.
    return validated.model_copy(update=FAST_ARGON2)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://ctcp.test") as http:
        yield http


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()

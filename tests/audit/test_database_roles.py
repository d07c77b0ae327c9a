"""PostgreSQL: the app's role owns nothing and cannot rewrite the audit log; the app works."""

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from ctcp.app import create_app
from ctcp.audit import service as audit
from ctcp.core.config import Settings
from ctcp.core.database_roles import current_role_problems
from ctcp.core.db import Database
from tests.conftest import _pg_admin_url, _pg_execute
from tests.factories import audit_events, make_user, new_client, run_ctcp, sign_in

pytestmark = pytest.mark.postgresql_only

REFUSED = [
    "UPDATE audit_events SET action = 'tampered'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_events_no_update_delete ON audit_events",
    "SET session_replication_role = replica",
    "ALTER TABLE audit_events ADD COLUMN note text",
    "ALTER TABLE audit_events OWNER TO CURRENT_USER",
    "INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES (2, 0, 'x')",
    "DELETE FROM audit_chain_head",
    "UPDATE consent_events SET id = id",
    "CREATE TABLE shadow (id int)",
    "DROP TABLE audit_events",
]


@dataclass(frozen=True)
class Roles:
    admin_url: str
    owner_url: str
    app_url: str

    def env(self, var_dir: Path) -> dict[str, str]:
        return {
            "CTCP_ADMIN_DATABASE_URL": self.admin_url,
            "CTCP_MIGRATION_DATABASE_URL": self.owner_url,
            "CTCP_DATABASE_URL": self.app_url,
            "CTCP_VAR_DIR": str(var_dir),
        }


@pytest.fixture
def roles(database_url: str) -> Iterator[Roles]:
    """Names for an owner, an app role and their database; all dropped afterwards
    (roles are cluster-wide: unique names, never left behind)."""
    suffix = secrets.token_hex(4)
    admin = _pg_admin_url()
    owner, app, name = f"ctcp_owner_{suffix}", f"ctcp_app_{suffix}", f"ctcp_roles_{suffix}"
    base = make_url(admin).set(database=name)
    try:
        yield Roles(
            admin_url=admin,
            owner_url=base.set(username=owner, password="owner-Pw-1").render_as_string(False),
            app_url=base.set(username=app, password="app-Pw-1").render_as_string(False),
        )
    finally:
        asyncio.run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for role in (app, owner):
            asyncio.run(_pg_execute(admin, f'DROP ROLE IF EXISTS "{role}"'))


async def _refusals(url: str) -> dict[str, str]:
    """Each statement run as the role of `url`: the error it met, or "accepted"."""
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    outcomes = {}
    try:
        for statement in REFUSED:
            try:
                async with connection.transaction():
                    await connection.execute(statement)
                outcomes[statement] = "accepted"
            except asyncpg.PostgresError as error:
                outcomes[statement] = type(error).__name__
    finally:
        await connection.close()
    return outcomes


def test_app_role_cannot_rewrite_the_audit_log(roles: Roles, tmp_path: Path) -> None:
    env = roles.env(tmp_path)
    code, output = run_ctcp(env, "db", "create-roles")
    assert code == 0, output
    code, output = run_ctcp(env, "db", "upgrade")
    assert code == 0 and "privileges granted" in output, output
    assert run_ctcp(env, "policy", "load")[0] == 0  # as the app role: DML only
    outcomes = asyncio.run(_refusals(roles.app_url))
    assert outcomes == dict.fromkeys(REFUSED, "InsufficientPrivilegeError")
    assert asyncio.run(current_role_problems(roles.app_url)) == []
    assert "owns" in " ".join(asyncio.run(current_role_problems(roles.owner_url)))
    # Both commands may run again (every deployment runs them at each upgrade).
    assert run_ctcp(env, "db", "create-roles")[0] == 0
    assert run_ctcp(env, "db", "upgrade")[0] == 0
    assert asyncio.run(_refusals(roles.app_url)) == outcomes


async def test_app_works_as_the_app_role(roles: Roles, tmp_path: Path, settings: Settings) -> None:
    env = roles.env(tmp_path)
    # The CLI runs its own event loop: in a thread, as this test already runs in one.
    for command in (("db", "create-roles"), ("db", "upgrade"), ("policy", "load")):
        code, output = await asyncio.to_thread(run_ctcp, env, *command)
        assert code == 0, output
    app = create_app(settings.model_copy(update={"database_url": roles.app_url}))
    database = Database(roles.app_url)
    try:
        user = await make_user(database, roles=("auditor",))
        async with app.router.lifespan_context(app), new_client(app) as client:
            await sign_in(client, user.email)
            verified = (await client.get("/api/v1/audit-events/verify")).json()
        assert verified["valid"] is True
        assert await audit_events(database, action="session.create", object_id=str(user.id))
        async with database.read_sessionmaker() as session:
            assert (await audit.verify_chain(session)).valid
    finally:
        await database.dispose()

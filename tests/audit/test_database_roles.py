"""PostgreSQL: the app's role owns nothing and cannot rewrite the audit log; the app works."""

import asyncio
import logging
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
from ctcp.core.database_roles import DatabaseRolesError, current_role_problems
from ctcp.core.db import Database
from tests.conftest import _pg_admin_url, _pg_execute
from tests.factories import (
    audit_events,
    make_org,
    make_user,
    new_client,
    one_section_report,
    run_ctcp,
    sign_in,
)

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
    "DELETE FROM needs_sharing_events",
    "UPDATE publications SET audience = 'public'",
    "DELETE FROM publications",
    "UPDATE publication_sections SET body = 'rewritten'",
    "DELETE FROM publication_attachments",
    "UPDATE attachment_chunks SET data = ''",
    "DELETE FROM attachment_blobs",
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


async def _deployed(roles: Roles, tmp_path: Path) -> None:
    """Roles made, schema migrated as the owner (grants given), policy loaded as the app."""
    env = roles.env(tmp_path)
    # The CLI runs its own event loop: in a thread, as the calling test already runs in one.
    for command in (("db", "create-roles"), ("db", "upgrade"), ("policy", "load")):
        code, output = await asyncio.to_thread(run_ctcp, env, *command)
        assert code == 0, output


async def test_app_works_as_the_app_role(roles: Roles, tmp_path: Path, settings: Settings) -> None:
    await _deployed(roles, tmp_path)
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


def test_membership_through_another_role_and_createrole_are_refused(
    roles: Roles, tmp_path: Path
) -> None:
    env = roles.env(tmp_path)
    for command in (("db", "create-roles"), ("db", "upgrade")):
        code, output = run_ctcp(env, *command)
        assert code == 0, output
    owner, app = make_url(roles.owner_url).username, make_url(roles.app_url).username
    middle = f"{app}_via"
    try:
        # The app role reaches the owner only through a role in between.
        for statement in (
            f'CREATE ROLE "{middle}" NOLOGIN',
            f'GRANT "{owner}" TO "{middle}"',
            f'GRANT "{middle}" TO "{app}"',
        ):
            asyncio.run(_pg_execute(roles.admin_url, statement))
        problems = " ".join(asyncio.run(current_role_problems(roles.app_url)))
        assert f"member of {owner} (owns objects of this database)" in problems
        code, output = run_ctcp(env, "db", "upgrade")
        assert code == 2 and owner in output, output
        asyncio.run(_pg_execute(roles.admin_url, f'REVOKE "{middle}" FROM "{app}"'))
        assert asyncio.run(current_role_problems(roles.app_url)) == []
        # CREATEROLE could grant itself the owner's membership.
        asyncio.run(_pg_execute(roles.admin_url, f'ALTER ROLE "{app}" CREATEROLE'))
        assert "CREATEROLE" in " ".join(asyncio.run(current_role_problems(roles.app_url)))
    finally:
        asyncio.run(_pg_execute(roles.admin_url, f'DROP ROLE IF EXISTS "{middle}"'))


def test_an_app_role_owning_a_schema_or_a_function_is_refused(roles: Roles, tmp_path: Path) -> None:
    """Owning a trigger function is enough to void a trigger; owning a schema, to drop
    what is in it: not only tables count."""
    env = roles.env(tmp_path)
    for command in (("db", "create-roles"), ("db", "upgrade")):
        code, output = run_ctcp(env, *command)
        assert code == 0, output
    app = make_url(roles.app_url).username
    inside = make_url(roles.admin_url).set(database=make_url(roles.app_url).database)
    url = inside.render_as_string(hide_password=False)
    for statement, owned in (
        (f'CREATE SCHEMA side AUTHORIZATION "{app}"', "schema side"),
        ("CREATE FUNCTION public.side_effect() RETURNS int LANGUAGE sql AS 'SELECT 1'", None),
        (f'ALTER FUNCTION public.side_effect() OWNER TO "{app}"', "function side_effect"),
    ):
        asyncio.run(_pg_execute(url, statement))
        if owned is not None:
            assert owned in " ".join(asyncio.run(current_role_problems(roles.app_url)))
    code, output = run_ctcp(env, "db", "upgrade")
    assert code == 2 and "owns" in output, output


async def test_production_refuses_an_app_role_that_can_rewrite_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The test database's role is a superuser, as docker-compose's app used to be.
    production = settings.model_copy(update={"environment": "production"})
    app = create_app(production)
    with pytest.raises(DatabaseRolesError, match="refusing to start in production"):
        async with app.router.lifespan_context(app):
            pass
    allowed = production.model_copy(update={"allow_unsafe_database_role": True})
    app = create_app(allowed)
    with caplog.at_level(logging.WARNING, logger="ctcp.db"):
        async with app.router.lifespan_context(app):
            pass
    assert "is a superuser" in caplog.text


async def test_every_kind_of_write_works_as_the_app_role(
    roles: Roles, tmp_path: Path, settings: Settings
) -> None:
    """Least privilege must not break the product: report, files, consent, publication,
    download, withdrawal, needs sharing, a circulated request and an offer, all as a role
    that may only append to the logs, the histories, publications' content and files."""
    await _deployed(roles, tmp_path)
    app = create_app(settings.model_copy(update={"database_url": roles.app_url}))
    database = Database(roles.app_url)
    try:
        state = await make_org(database)
        people = {
            "analyst": await make_user(database, roles=("cted_analyst",)),
            "officer": await make_user(database, roles=("consent_officer",)),
            "state": await make_user(database, org=state, roles=("state_focal_point",)),
            "entity": await make_user(
                database, kind="compact_entity", roles=("entity_focal_point",)
            ),
        }
        async with app.router.lifespan_context(app):
            c = {who: new_client(app) for who in people}
            for who, user in people.items():
                await sign_in(c[who], user.email)
            report = (
                await c["analyst"].post(
                    "/api/v1/reports",
                    json=one_section_report(state.code),
                )
            ).json()
            pdf = b"%PDF-1.7\n" + secrets.token_bytes(64)
            uploaded = await c["analyst"].post(
                f"/api/v1/reports/{report['id']}/attachments", files={"file": ("a.pdf", pdf)}
            )
            assert uploaded.status_code == 201, uploaded.text
            assert (await c["analyst"].post(f"/api/v1/reports/{report['id']}/adopt")).is_success
            path = f"/api/v1/reports/{report['id']}/consent"
            full = {"scope": "full", "audience": "compact", "reference": "NV/1"}
            consented = await c["officer"].post(path, json=full | {"after_sequence": 0})
            assert consented.status_code == 201, consented.text
            download = await c["entity"].get(f"/api/v1/attachments/{uploaded.json()['id']}")
            assert download.status_code == 200 and download.content == pdf
            withdrawn = await c["state"].post(f"{path}/withdraw", json={"reason": "Cabinet"})
            assert withdrawn.status_code == 201, withdrawn.text
            assert (await c["entity"].get("/api/v1/publications")).json()["items"] == []
            sharing = f"/api/v1/states/{state.code}/needs-consent"
            shared = await c["officer"].post(
                sharing, json={"share_needs": True, "reference": "NV/2", "after_sequence": 0}
            )
            assert shared.status_code == 201, shared.text
            need = await c["analyst"].post(
                "/api/v1/needs",
                json={
                    "state": state.code,
                    "area": "border_management",
                    "description": "Passenger data.",
                    "priority": "high",
                    "source": "state_request",
                },
            )
            assert need.status_code == 201, need.text
            filed = await c["state"].post(
                "/api/v1/assistance-requests",
                json={"title": "T", "description": "D", "need_ids": [need.json()["id"]]},
            )
            assert filed.status_code == 201, filed.text
            request = filed.json()["id"]
            for to in ("under_review", "circulated"):
                moved = await c["analyst"].post(
                    f"/api/v1/assistance-requests/{request}/transition", json={"to": to}
                )
                assert moved.status_code == 200, moved.text
            offered = await c["entity"].post(
                f"/api/v1/assistance-requests/{request}/offers",
                json={"programme": "P", "description": "D", "timeline": "2027"},
            )
            assert offered.status_code == 201, offered.text
            accepted = await c["state"].post(f"/api/v1/offers/{offered.json()['id']}/accept")
            assert accepted.status_code == 200, accepted.text
        async with database.read_sessionmaker() as session:
            assert (await audit.verify_chain(session)).valid
    finally:
        await database.dispose()


def test_setup_creates_both_roles_and_a_database_that_serves(roles: Roles, tmp_path: Path) -> None:
    """`ctcp setup` with an admin URL is the whole deployment: roles, migrations as the
    owner, the app role's grants, reference data and policy (as the app role)."""
    env = roles.env(tmp_path)
    code, output = run_ctcp(env, "setup")
    assert code == 0, output
    assert "privileges granted" in output and "created 239" in output, output
    assert asyncio.run(current_role_problems(roles.app_url)) == []
    assert asyncio.run(_refusals(roles.app_url)) == dict.fromkeys(
        REFUSED, "InsufficientPrivilegeError"
    )
    code, output = run_ctcp(env, "setup")
    assert code == 0 and "kept" in output, output

"""The policy files, their loading, and changes reaching every instance within a second."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.authz.oauth_scopes import CLIENT_ROLE, OAuthScope, scope_role
from ctcp.cli import app as cli
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp.identity.roles import Role
from tests.factories import audit_events, make_user, new_client, sign_in


def test_policy_file_is_small_readable_and_uses_known_roles() -> None:
    lines = policy.read_policy_file()
    assert 0 < len(lines) < 100
    scope_roles = {scope_role(scope.value) for scope in OAuthScope}
    assert {line[1] for line in lines} == {role.value for role in Role} | scope_roles
    assert {line[2] for line in lines} == {"*"}  # global lines, never copied per organization
    assert len(set(lines)) == len(lines)


def test_every_oauth_scope_narrows_entity_focal_point_never_widens_it() -> None:
    lines = policy.read_policy_file()
    focal_point = {line[3:] for line in lines if line[1] == CLIENT_ROLE}
    for scope in OAuthScope:
        granted = {line[3:] for line in lines if line[1] == scope_role(scope.value)}
        assert granted, scope
        assert granted <= focal_point, scope


def test_a_malformed_policy_line_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "policy.csv"
    bad.write_text("p, auditor, *, audit, read, everything\n")
    with pytest.raises(ValueError, match="unknown scope"):
        policy.read_policy_file(bad)
    bad.write_text("p, auditor, audit, read\n")
    with pytest.raises(ValueError, match="expected"):
        policy.read_policy_file(bad)


def test_platform_admin_has_no_content_grant() -> None:
    admin = {line[3] for line in policy.read_policy_file() if line[1] == "platform_admin"}
    assert admin.isdisjoint({"report", "consent", "publication", "need", "request", "audit"})


async def test_sync_is_idempotent_and_audited(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    async with database.sessionmaker() as session:
        version = await policy.policy_version(session)
    lines = policy.read_policy_file()
    async with database.transaction() as session:
        again = await policy.sync_policy(session, lines, context=AuditContext())
    assert (again.added, again.removed) == (0, 0)
    async with database.sessionmaker() as session:
        assert await policy.policy_version(session) == version
    async with database.transaction() as session:
        fewer = await policy.sync_policy(session, lines[1:], context=AuditContext())
    assert (fewer.added, fewer.removed) == (0, 1)
    async with database.sessionmaker() as session:
        assert await policy.policy_version(session) == version + 1
    events = await audit_events(database, action="policy.sync")
    assert '"removed": [["p"' in events[-1].details
    await database.dispose()


def test_cli_policy_load_and_show(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTCP_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("CTCP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        loaded = CliRunner().invoke(cli, ["policy", "load"])
        assert loaded.exit_code == 0 and "0 added, 0 removed" in loaded.output
        shown = CliRunner().invoke(cli, ["policy", "show"])
        assert shown.exit_code == 0
        assert "consent_officer" in shown.output and "broaden" in shown.output
    finally:
        get_settings.cache_clear()


@pytest.fixture
async def two_instances(
    fresh_database_url: str, settings: Settings
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    isolated = settings.model_copy(update={"database_url": fresh_database_url})
    first, second = create_app(isolated), create_app(isolated)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        yield first, second


async def _until_status(client: object, path: str, status: int, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if (await client.get(path)).status_code == status:  # type: ignore[attr-defined]
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} did not answer {status} within {limit} s")


async def test_policy_change_reaches_another_instance_within_a_second(
    two_instances: tuple[FastAPI, FastAPI], fresh_database_url: str
) -> None:
    # The change comes from `ctcp policy load` (its service), while both instances serve.
    _first, second = two_instances
    database = Database(fresh_database_url)
    auditor = await make_user(database, roles=("auditor",))
    async with new_client(second) as client:
        await sign_in(client, auditor.email)
        assert (await client.get("/api/v1/audit-events")).status_code == 200
        lines = policy.read_policy_file()
        without = [line for line in lines if line[1:5] != ("auditor", "*", "audit", "read")]
        async with database.transaction() as session:
            await policy.sync_policy(session, without, context=AuditContext())
        assert await _until_status(client, "/api/v1/audit-events", 403, 1.0) < 1.0
        async with database.transaction() as session:
            await policy.sync_policy(session, lines, context=AuditContext())
        assert await _until_status(client, "/api/v1/audit-events", 200, 1.0) < 1.0
    await database.dispose()


async def test_role_revoked_on_one_instance_is_refused_there_at_once_and_elsewhere_within_1s(
    two_instances: tuple[FastAPI, FastAPI], fresh_database_url: str
) -> None:
    first, second = two_instances
    database = Database(fresh_database_url)
    admin = await make_user(database, roles=("platform_admin",))
    auditor = await make_user(database, roles=("auditor",))
    async with (
        new_client(first) as admin_client,
        new_client(first) as here,
        new_client(second) as there,
    ):
        await sign_in(admin_client, admin.email)
        await sign_in(here, auditor.email)
        await sign_in(there, auditor.email)
        # Both instances have the auditor's session cached now.
        assert (await here.get("/api/v1/audit-events")).status_code == 200
        assert (await there.get("/api/v1/audit-events")).status_code == 200
        revoked = await admin_client.put(f"/api/v1/users/{auditor.id}/roles", json={"roles": []})
        assert revoked.status_code == 200
        assert (await here.get("/api/v1/audit-events")).status_code == 403
        assert await _until_status(there, "/api/v1/audit-events", 403, 1.0) < 1.0
    await database.dispose()


async def test_deactivation_and_sign_out_reach_another_instance_within_1s(
    two_instances: tuple[FastAPI, FastAPI], fresh_database_url: str
) -> None:
    first, second = two_instances
    database = Database(fresh_database_url)
    admin = await make_user(database, roles=("platform_admin",))
    victim = await make_user(database)
    async with new_client(first) as admin_client, new_client(second) as there:
        await sign_in(admin_client, admin.email)
        await sign_in(there, victim.email)
        assert (await there.get("/api/v1/me")).status_code == 200
        response = await admin_client.patch(f"/api/v1/users/{victim.id}", json={"active": False})
        assert response.status_code == 200
        assert await _until_status(there, "/api/v1/me", 401, 1.0) < 1.0
    async with new_client(first) as leaving, new_client(second) as replay:
        await sign_in(leaving, admin.email)
        replay.cookies.update(dict(leaving.cookies))
        assert (await replay.get("/api/v1/me")).status_code == 200  # cached on `second`
        assert (await leaving.delete("/api/v1/session")).status_code == 204
        assert await _until_status(replay, "/api/v1/me", 401, 1.0) < 1.0
    await database.dispose()


async def test_creating_a_user_with_roles_also_needs_role_manage(
    two_instances: tuple[FastAPI, FastAPI], fresh_database_url: str
) -> None:
    first, _ = two_instances
    database = Database(fresh_database_url)
    lines = policy.read_policy_file()
    without = [line for line in lines if line[1:5] != ("platform_admin", "*", "role", "manage")]
    async with database.transaction() as session:
        await policy.sync_policy(session, without, context=AuditContext())
    admin = await make_user(database, roles=("platform_admin",))
    org_id = str((await make_user(database)).organization_id)
    async with new_client(first) as client:
        await sign_in(client, admin.email)
        async with database.sessionmaker() as session:
            version = await policy.policy_version(session)
        for _ in range(50):  # the instance reloads within a second
            if first.state.policy.engine.version == version:
                break
            await asyncio.sleep(0.02)
        body = {"name": "New", "organization_id": org_id, "password": "Lantern-orbit-meadow-71"}
        with_roles = await client.post(
            "/api/v1/users",
            json=body | {"email": "with-roles@ctcp.example", "roles": ["state_focal_point"]},
        )
        assert with_roles.status_code == 403
        plain = await client.post("/api/v1/users", json=body | {"email": "plain@ctcp.example"})
        assert plain.status_code == 201
    denials = await audit_events(database, actor_user_id=admin.id, outcome="denied")
    assert any(e.action == "user.manage" and '"status": 403' in e.details for e in denials)
    await database.dispose()

"""The `ctcp` command, run as a user would run it."""

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import typer.main
from sqlalchemy.engine import make_url
from typer.core import TyperGroup
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.audit.service import AuditContext
from ctcp.authz import policy
from ctcp.cli import app as cli
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp_demo.content import DEMO_PASSWORD
from tests.conftest import _pg_admin_url, _pg_execute
from tests.factories import tamper_with_audit

# What `ctcp --help` must not pay for: each command imports the application when it runs.
HEAVY_MODULES = ("sqlalchemy", "sqlmodel", "fastapi", "alembic", "casbin", "cryptography")


@contextmanager
def _settings_at(url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's settings pointed at the database at `url`."""
    monkeypatch.setenv("CTCP_DATABASE_URL", url)
    monkeypatch.setenv("CTCP_VAR_DIR", str(var_dir))
    get_settings.cache_clear()
    try:
        yield url
    finally:
        get_settings.cache_clear()


@pytest.fixture
def ctcp_env(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point the CLI's settings at a fresh database (migrated, policy loaded)."""
    with _settings_at(fresh_database_url, tmp_path, monkeypatch) as url:
        yield url


@pytest.fixture
def empty_ctcp_env(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI's settings at a database with nothing in it, as a new deployment's."""
    if backend == "sqlite":
        with _settings_at(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, monkeypatch) as url:
            yield url
        return
    admin_url = _pg_admin_url()
    name = f"ctcp_test_{secrets.token_hex(4)}"
    asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with _settings_at(url, tmp_path, monkeypatch):
            yield url
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _ctcp(*args: str, password: str | None = None) -> tuple[int, str]:
    env = {"CTCP_ADMIN_PASSWORD": password} if password else {}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def _installed_ctcp(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed entry point, in its own process, as an operator runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "ctcp"), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_command_loads_no_heavy_library() -> None:
    probe = f"import sys, ctcp.cli; print(*[m for m in {HEAVY_MODULES!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == []


def test_help_lists_every_command() -> None:
    group = typer.main.get_command(cli)
    assert isinstance(group, TyperGroup)
    groups = {(): group} | {
        (name,): command
        for name, command in group.commands.items()
        if isinstance(command, TyperGroup)
    }
    for path, listing in groups.items():
        result = _installed_ctcp(*path, "--help", env={"COLUMNS": "120"})
        assert result.returncode == 0, result.stderr
        # Each row of the commands box starts with a command's name.
        shown = {line.strip("│ ").split(" ")[0] for line in result.stdout.splitlines()}
        assert set(listing.commands) <= shown, (path, result.stdout)


async def _get(settings: Settings, url: str, path: str) -> httpx.Response:
    """GET `path` from an app serving the database at `url`."""
    app = create_app(settings.model_copy(update={"database_url": url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)


async def _stored_policy(url: str) -> list[policy.PolicyLine]:
    database = Database(url)
    try:
        async with database.read_sessionmaker() as session:
            return await policy.stored_policy(session)
    finally:
        await database.dispose()


def test_upgrade_loads_the_reviewed_policy_on_a_new_database_and_keeps_a_stored_one(
    empty_ctcp_env: str, settings: Settings
) -> None:
    reviewed = policy.read_policy_file()
    code, output = _ctcp("db", "upgrade")
    assert code == 0, output
    assert f"policy: {len(reviewed)} lines, {len(reviewed)} added" in output
    ready = asyncio.run(_get(settings, empty_ctcp_env, "/readyz"))
    assert ready.status_code == 200, ready.text
    assert sorted(asyncio.run(_stored_policy(empty_ctcp_env))) == sorted(reviewed)

    async def administrator_changes_it() -> None:
        database = Database(empty_ctcp_env)
        try:
            async with database.transaction() as session:
                await policy.sync_policy(session, reviewed[1:], context=AuditContext())
        finally:
            await database.dispose()

    asyncio.run(administrator_changes_it())
    code, output = _ctcp("db", "upgrade")
    assert code == 0, output
    assert f"policy: {len(reviewed) - 1} lines stored, kept" in output
    assert "`ctcp policy load` replaces them" in output
    assert sorted(asyncio.run(_stored_policy(empty_ctcp_env))) == sorted(reviewed[1:])


def test_setup_commands_are_idempotent(ctcp_env: str) -> None:
    assert _ctcp("db", "upgrade")[0] == 0
    code, output = _ctcp("load-reference-data")
    assert code == 0 and "created 239" in output
    assert "created 0, updated 0" in _ctcp("load-reference-data")[1]
    code, output = _ctcp(
        "create-admin",
        "--email",
        "chief@ctcp.example",
        "--org",
        "CTED",
        password="Lantern-orbit-meadow-71",
    )
    assert code == 0 and "created" in output
    code, output = _ctcp(
        "create-admin",
        "--email",
        "chief@ctcp.example",
        "--org",
        "CTED",
        password="Lantern-orbit-meadow-71",
    )
    assert code == 0 and "exists" in output
    code, output = _ctcp("audit", "verify")
    assert code == 0 and "intact" in output


def test_create_admin_refuses_unknown_org_and_weak_password(ctcp_env: str) -> None:
    code, output = _ctcp(
        "create-admin",
        "--email",
        "a@ctcp.example",
        "--org",
        "NOPE",
        password="Lantern-orbit-meadow-71",
    )
    assert code == 2 and "NOPE" in output
    _ctcp("load-reference-data")
    code, output = _ctcp(
        "create-admin", "--email", "a@ctcp.example", "--org", "CTED", password="password"
    )
    assert code == 2 and "password" in output.lower()


@pytest.mark.parametrize(
    ("email", "refused"),
    [
        ("admin-{}@probe.test", False),
        ("Chief.{}@CTCP.example", False),
        ("not-an-address", True),
        ("admin@localhost", True),
    ],
)
def test_create_admin_checks_the_address_as_the_users_api_does(
    ctcp_env: str, email: str, refused: bool
) -> None:
    """The rule of tests/identity/test_sign_in.py's API test: syntax only, no DNS lookup,
    the reserved .test and .example domains accepted, a bare host refused."""
    _ctcp("load-reference-data")
    address = email.format(secrets.token_hex(4))
    code, output = _ctcp(
        "create-admin", "--email", address, "--org", "CTED", password="Lantern-orbit-meadow-71"
    )
    if refused:
        assert code == 2 and "value is not a valid email address" in output, output
    else:
        assert code == 0 and "created" in output, output


async def test_audit_verify_exits_1_naming_the_tampered_event(ctcp_env: str, backend: str) -> None:
    database = Database(ctcp_env)
    from ctcp.audit import service as audit
    from ctcp.audit.service import AuditContext

    async with database.transaction() as session:
        audit.record(session, AuditContext(), "test.first")
        audit.record(session, AuditContext(), "test.second")
    await tamper_with_audit(
        database, backend, "UPDATE audit_events SET details = '{\"forged\": 1}' WHERE id = 2"
    )
    await database.dispose()
    result = _installed_ctcp("audit", "verify", env={"CTCP_DATABASE_URL": ctcp_env})
    assert result.returncode == 1
    assert "event 2" in result.stderr


def test_setup_makes_a_database_that_serves_the_demo_accounts(
    ctcp_env: str, settings: Settings
) -> None:
    """One command from an empty (here: migrated) database to a serving one; its policy,
    already stored, is kept; run again, it changes nothing."""
    code, output = _ctcp(
        "setup", "--admin-email", "chief@ctcp.example", "--demo", password=DEMO_PASSWORD
    )
    assert code == 0, output
    assert "kept" in output and "administrator chief@ctcp.example: created" in output
    code, output = _ctcp("setup", "--admin-email", "chief@ctcp.example", password=DEMO_PASSWORD)
    assert code == 0 and "created 0" in output and "exists" in output, output

    async def sign_in_as(emails: tuple[str, ...]) -> list[int]:
        app = create_app(settings.model_copy(update={"database_url": ctcp_env}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return [
                    (
                        await client.post(
                            "/api/v1/session", json={"email": email, "password": DEMO_PASSWORD}
                        )
                    ).status_code
                    for email in emails
                ]

    accounts = ("focal.kenya@demo.ctcp.example", "focal.unodc@demo.ctcp.example")
    assert asyncio.run(sign_in_as(accounts)) == [200, 200]

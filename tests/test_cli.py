"""The `ctcp` command, run as a user would run it."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.cli import app as cli
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp.demo.content import DEMO_PASSWORD
from tests.factories import tamper_with_audit


@pytest.fixture
def ctcp_env(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point the CLI's settings at a fresh database."""
    monkeypatch.setenv("CTCP_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("CTCP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield fresh_database_url
    get_settings.cache_clear()


def _ctcp(*args: str, password: str | None = None) -> tuple[int, str]:
    env = {"CTCP_ADMIN_PASSWORD": password} if password else {}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


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
    # The installed entry point, in its own process, as an operator runs it.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ctcp"), "audit", "verify"],
        env={**os.environ, "CTCP_DATABASE_URL": ctcp_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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

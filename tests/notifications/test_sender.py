"""The background sender runs with the app only when SMTP is configured; and the CLI."""

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from ctcp.app import create_app
from ctcp.cli import app as cli
from ctcp.core.config import Settings, get_settings
from ctcp.core.db import Database
from ctcp.notifications import service as notifications
from ctcp.notifications.models import Notification
from ctcp.notifications.service import DeliveryReport
from tests.factories import make_org, make_user
from tests.notifications.conftest import SmtpServer

SENDER_TASK = "ctcp-notification-sender"


def sender_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == SENDER_TASK]


async def enqueue(database: Database) -> uuid.UUID:
    """One notification for the single focal point of a new entity; its id."""
    entity = await make_org(database, kind="compact_entity")
    await make_user(database, org=entity, roles=("entity_focal_point",))
    object_id = uuid.uuid4()
    async with database.transaction() as session:
        await notifications.notify(
            session,
            event="request.circulated",
            object_type="assistance_request",
            object_id=object_id,
            role="entity_focal_point",
            organization_ids=[entity.id],
            subject="A request for assistance was circulated",
            body="http://ctcp.test/requests/1",
        )
        row = (
            await session.exec(select(Notification).where(Notification.object_id == object_id))
        ).one()
    return row.id


async def status_of(database: Database, notification_id: uuid.UUID) -> str:
    async with database.sessionmaker() as session:
        row = await session.get(Notification, notification_id)
        assert row is not None
        return row.status


async def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_delivery_is_off_unless_an_smtp_host_is_set(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, _env_file=None)
    assert settings.smtp_host is None
    assert Settings(var_dir=tmp_path, smtp_host=" ").smtp_host is None


async def test_disabled_smtp_starts_no_sender(settings: Settings) -> None:
    assert settings.smtp_host is None
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert application.state.notification_sender is None
        assert sender_tasks() == []


async def test_configured_smtp_runs_the_sender_and_stops_it_on_shutdown(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    notification_id = await enqueue(outbox_database)
    application = create_app(mail_settings)
    async with application.router.lifespan_context(application):
        [task] = sender_tasks()
        await wait_for(lambda: len(smtp_server.messages) == 1)
        # The pass marks it sent just after the server took it: wait for that too, or the
        # shutdown below may cancel the pass in between (it is then sent again later).
        for _ in range(500):
            if await status_of(outbox_database, notification_id) == "sent":
                break
            await asyncio.sleep(0.02)
        assert not task.done()
    assert task.done() and sender_tasks() == []
    assert str(smtp_server.messages[0]["Message-ID"]) == f"<{notification_id}@ctcp>"
    assert await status_of(outbox_database, notification_id) == "sent"


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    outbox_database: Database,
    mail_settings: Settings,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notification_id = await enqueue(outbox_database)
    real_pass = notifications.deliver_due
    calls = 0

    async def flaky_pass(database: Database, settings: Settings) -> DeliveryReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return await real_pass(database, settings)

    monkeypatch.setattr(notifications, "deliver_due", flaky_pass)
    reports: list[DeliveryReport] = []
    with caplog.at_level(logging.ERROR, logger="ctcp.notifications"):
        loop = asyncio.create_task(
            notifications.deliver_forever(outbox_database, mail_settings, on_pass=reports.append)
        )
        try:
            await wait_for(lambda: any(report.sent for report in reports))
        finally:
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop
    assert "notification delivery pass failed" in caplog.text
    assert calls >= 2
    assert await status_of(outbox_database, notification_id) == "sent"
    assert smtp_server.count_by_message_id() == {f"<{notification_id}@ctcp>": 1}


@pytest.fixture
def cli_env(
    outbox_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("CTCP_DATABASE_URL", outbox_database_url)
    monkeypatch.setenv("CTCP_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_cli_send_refuses_without_an_smtp_host(cli_env: pytest.MonkeyPatch) -> None:
    cli_env.delenv("CTCP_SMTP_HOST", raising=False)
    result = CliRunner().invoke(cli, ["notifications", "send"])
    assert result.exit_code == 2
    assert "delivery disabled" in result.output


def test_cli_send_delivers_one_pass_and_prints_the_counts(
    cli_env: pytest.MonkeyPatch, outbox_database_url: str, smtp_server: SmtpServer
) -> None:
    async def prepare() -> uuid.UUID:
        database = Database(outbox_database_url)
        try:
            async with database.transaction() as session:
                await session.exec(Notification.__table__.delete())  # type: ignore[attr-defined]
            return await enqueue(database)
        finally:
            await database.dispose()

    notification_id = asyncio.run(prepare())
    cli_env.setenv("CTCP_SMTP_HOST", "127.0.0.1")
    cli_env.setenv("CTCP_SMTP_PORT", str(smtp_server.port))

    result = CliRunner().invoke(cli, ["notifications", "send"])

    assert result.exit_code == 0, result.output
    assert "sent 1, retried 0, failed 0" in result.output
    assert smtp_server.count_by_message_id() == {f"<{notification_id}@ctcp>": 1}
    second = CliRunner().invoke(cli, ["notifications", "send"])
    assert "sent 0, retried 0, failed 0" in second.output
    assert len(smtp_server.messages) == 1

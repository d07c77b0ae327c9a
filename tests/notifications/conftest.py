"""Fixtures for the outbox: a database of its own, and a real SMTP server (aiosmtpd)."""

import asyncio
import email
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import delete

from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.notifications.models import Notification
from tests.conftest import database_like


class RecordingHandler:
    """Accepts and keeps every message, or answers RCPT with a set reply (451, 550 ...)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients_tried = 0
        self.rcpt_reply: str | None = None
        self.data_delay = 0.0
        self.data_started = 0
        self.on_data: Callable[[], None] | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.recipients_tried += 1
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started += 1
        if self.on_data is not None:
            self.on_data()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A local SMTP server on a free port that can be stopped (connection refused) and restarted."""

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.handler = RecordingHandler()
        self.credentials = credentials
        self.logins: list[str] = []
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(login)
        return AuthResult(success=(login, password) == self.credentials, handled=False)

    def start(self) -> None:
        auth: dict[str, Any] = (
            {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
            if self.credentials
            else {}
        )
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def count_by_message_id(self) -> Counter[str]:
        return Counter(str(message["Message-ID"]) for message in self.messages)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def outbox_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of the backend under test for these tests alone: a delivery pass
    takes every due row, so no other test's notifications may be in it."""
    with database_like(database_url, tmp_path_factory.mktemp("outbox") / "outbox.db") as url:
        yield url


@pytest.fixture(scope="session")
async def outbox_session_database(outbox_database_url: str) -> AsyncIterator[Database]:
    db = Database(outbox_database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def outbox_database(outbox_session_database: Database) -> Database:
    """The outbox database, emptied of earlier tests' notifications."""
    async with outbox_session_database.transaction() as session:
        await session.exec(delete(Notification))
    return outbox_session_database


@pytest.fixture
def mail_settings(outbox_database_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=outbox_database_url,
        var_dir=tmp_path,
        secret_key="test-secret-key-" + "x" * 32,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_timeout_seconds=5,
        notification_retry_base_seconds=30,
        notification_retry_max_seconds=3600,
        notification_max_attempts=8,
        notification_poll_seconds=0.05,
        public_base_url="http://ctcp.test",
    )

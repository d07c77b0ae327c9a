"""Notifications: enqueued in the event's own transaction, delivered later by SMTP.

The outbox row commits or rolls back with the change it announces, so nobody hears of
an offer that was never saved. A sender (a task of the app, or `ctcp notifications send`
as a process of its own) claims due rows under a lease, commits the claim, talks to the
SMTP server, then records each outcome; a temporary failure comes back later with
exponential back-off, a permanent one (a 5xx refusal, or too many attempts) stops.

Delivery is at least once, not exactly once; two windows are left, both inherent to
SMTP. If the process dies after the server accepted a message but before `sent` is
committed, the row stays `sending` until its lease runs out and is then sent again. If
the connection drops after the server took the whole message but before its reply came
back (RFC 1047), the message is retried like any temporary failure. Every message
carries `Message-ID: <notification-id@ctcp>`, so such a duplicate is recognisable by
whoever receives it. Otherwise (two senders, retries, a cancelled pass) a row is sent
once: claims are exclusive, and a pass starts no message it could not finish, at the
timeout's pace, before its lease runs out.

Mails carry what callers put in them: a short text and a link, never confidential
content (the reader signs in to see it).
"""

import asyncio
import logging
import smtplib
import ssl
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum

from pydantic import SecretStr
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Text,
    Uuid,
    and_,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database, UTCDateTime
from ctcp.identity.models import User, UserRole
from ctcp.notifications.models import Notification, NotificationStatus
from ctcp.organizations.models import Organization

logger = logging.getLogger("ctcp.notifications")

# Rows one pass claims; the background sender goes again at once while passes come back full.
BATCH_SIZE = 20
# A message costs at most this many socket timeouts (MAIL, RCPT, DATA, the content, the
# final reply, with room for a reconnect's greeting); connecting (banner, EHLO, STARTTLS,
# EHLO, AUTH) at most CONNECT_TIMEOUTS. The lease covers connecting plus every claimed
# message at that pace, and a pass stops short of its lease, since past it another pass
# may take the row.
TIMEOUTS_PER_MESSAGE = 6
CONNECT_TIMEOUTS = 6
MAX_ERROR_LENGTH = 500
RECIPIENT_INACTIVE = "recipient deactivated before delivery"

_notifications = Notification.__table__  # type: ignore[attr-defined]
_users = User.__table__  # type: ignore[attr-defined]
_roles = UserRole.__table__  # type: ignore[attr-defined]
_organizations = Organization.__table__  # type: ignore[attr-defined]


async def notify(
    session: AsyncSession,
    *,
    event: str,
    object_type: str,
    object_id: uuid.UUID,
    role: str,
    organization_ids: Collection[uuid.UUID] | None = None,
    organization_kind: str | None = None,
    subject: str,
    body: str,
) -> int:
    """Enqueue a mail to every active holder of `role` in these organizations; how many.

    Runs in the caller's transaction (one INSERT ... SELECT, flushed, never committed), so
    the mails exist exactly when the event does. Give `organization_ids`, or
    `organization_kind` for every active organization of that kind, or both (either
    filter applies). `body` is sent as is: a short text and a link, nothing confidential.
    """
    if organization_ids is None and organization_kind is None:
        raise ValueError("notify needs organization_ids or organization_kind")
    if organization_ids is not None and not organization_ids:
        return 0
    dialect = (await session.connection()).dialect.name
    new_id: ColumnElement[uuid.UUID] = (
        func.gen_random_uuid()
        if dialect == "postgresql"
        # The Uuid type keeps 32 hex digits on SQLite: 16 random bytes make one.
        else func.lower(func.hex(func.randomblob(16)))
    )
    now = clock.now()
    recipients = (
        select(
            new_id,
            literal(event, String),
            literal(object_type, String),
            literal(object_id, Uuid),
            _users.c.id,
            _users.c.email,
            # Header values may not hold line breaks: one line, at most the column's length.
            literal(" ".join(subject.split())[:200], String),
            literal(body, Text),
            literal(NotificationStatus.PENDING.value, String),
            literal(0, Integer),
            literal(now, UTCDateTime()),
            literal(now, UTCDateTime()),
        )
        .select_from(
            _users.join(_roles, _roles.c.user_id == _users.c.id).join(
                _organizations, _organizations.c.id == _users.c.organization_id
            )
        )
        .where(_users.c.active, _organizations.c.active, _roles.c.role == role)
    )
    if organization_ids is not None:
        recipients = recipients.where(_organizations.c.id.in_(list(organization_ids)))
    if organization_kind is not None:
        recipients = recipients.where(_organizations.c.kind == organization_kind)
    columns = [
        "id",
        "event",
        "object_type",
        "object_id",
        "recipient_user_id",
        "recipient_email",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    result = await session.exec(insert(_notifications).from_select(columns, recipients))
    await session.flush()
    return max(result.rowcount, 0)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Result(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # a temporary failure: try again later
    FAILED = "failed"  # a permanent refusal: never again


@dataclass(frozen=True)
class Outcome:
    result: Result
    error: str | None = None
    # The server could not be used at all: the pass stops, the rest waits for the next one.
    server_down: bool = False


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    recipient_email: str
    subject: str
    body: str
    attempts: int


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]


class _SmtpConnection:
    """One SMTP connection for a pass, used by one worker thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        assert settings.smtp_host is not None
        smtp = smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        )
        try:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = settings.smtp_password or SecretStr("")
                smtp.login(settings.smtp_username, password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def deliver(self, message: EmailMessage) -> Outcome:
        """Send one message; never raises, says whether to keep, retry or give it up."""
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as error:
                # Refused, unreachable, TLS or login failed: the server's state, not the
                # message's, so it is temporary whatever the reply code.
                return Outcome(Result.RETRY, _error_text(error), server_down=True)
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code = min(code for code, _ in error.recipients.values())
            return Outcome(Result.FAILED if code >= 500 else Result.RETRY, _error_text(error))
        except smtplib.SMTPSenderRefused as error:
            # Our own From refused: configuration, not this message; retry after a fix.
            return Outcome(Result.RETRY, _error_text(error), server_down=True)
        except smtplib.SMTPResponseException as error:
            return Outcome(
                Result.FAILED if error.smtp_code >= 500 else Result.RETRY, _error_text(error)
            )
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close()  # the next message reconnects
            return Outcome(Result.RETRY, _error_text(error))
        except (smtplib.SMTPException, ValueError) as error:
            # The message cannot be sent as it is (e.g. an address needing SMTPUTF8).
            return Outcome(Result.FAILED, _error_text(error))
        return Outcome(Result.SENT)

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _message(row: _Claimed, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = row.recipient_email
    message["Subject"] = row.subject
    message["Date"] = format_datetime(clock.now())
    # The outbox row's id: a duplicate after a crash is recognisable as one.
    message["Message-ID"] = f"<{row.id}@ctcp>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    # The link is added here, from the sender's settings: callers write only the sentence.
    message.set_content(f"{row.body}\n\n{settings.public_base_url}/\n")
    return message


def _retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The base, doubled for every attempt after the first, at most the maximum."""
    seconds = settings.notification_retry_base_seconds * 2 ** min(attempts - 1, 32)
    return timedelta(seconds=min(seconds, settings.notification_retry_max_seconds))


async def _claim(
    database: Database, *, limit: int, lease: timedelta
) -> tuple[datetime, list[_Claimed]]:
    """Take due rows (and rows whose sender's lease ran out) in a transaction of their own."""
    now = clock.now()
    until = now + lease
    table = _notifications
    due = (
        select(table.c.id)
        .where(
            or_(
                and_(
                    table.c.status == NotificationStatus.PENDING.value,
                    table.c.next_attempt_at <= now,
                ),
                and_(
                    table.c.status == NotificationStatus.SENDING.value,
                    table.c.claimed_until < now,
                ),
            )
        )
        .order_by(table.c.next_attempt_at)
        .limit(limit)
        # PostgreSQL: rows another sender is claiming are skipped, not waited for.
        # SQLite has one writer at a time (BEGIN IMMEDIATE) and renders no FOR UPDATE.
        .with_for_update(skip_locked=True)
    )
    async with database.transaction() as session:
        # Whoever was deactivated since the event gets nothing: their rows end here.
        await session.exec(
            update(table)
            .where(
                table.c.status == NotificationStatus.PENDING.value,
                col(table.c.recipient_user_id).in_(select(_users.c.id).where(~_users.c.active)),
            )
            .values(status=NotificationStatus.FAILED.value, last_error=RECIPIENT_INACTIVE)
        )
        rows = await session.exec(
            update(table)
            .where(col(table.c.id).in_(due))
            .values(status=NotificationStatus.SENDING.value, claimed_until=until)
            .returning(
                table.c.id,
                table.c.recipient_email,
                table.c.subject,
                table.c.body,
                table.c.attempts,
                table.c.next_attempt_at,
            )
        )
        claimed = sorted(rows.all(), key=lambda row: row.next_attempt_at)
    return until, [_Claimed(*row[:5]) for row in claimed]


async def _record(
    database: Database,
    settings: Settings,
    claimed: list[_Claimed],
    started: set[uuid.UUID],
    outcomes: dict[uuid.UUID, Outcome],
    lease_until: datetime,
) -> DeliveryReport:
    """Write each claimed row's outcome; rows never tried go back to `pending` untouched.

    A row whose send started but whose outcome is unknown (the pass was cancelled twice)
    stays `sending`: it may have been delivered, so it waits for its lease to run out.
    """
    report = DeliveryReport(claimed=len(claimed))
    now = clock.now()
    table = _notifications
    ours = and_(
        table.c.status == NotificationStatus.SENDING.value,
        table.c.claimed_until == lease_until,
    )
    async with database.transaction() as session:
        for row in claimed:
            outcome = outcomes.get(row.id)
            where = table.c.id == row.id
            if outcome is None and row.id in started:
                continue
            if outcome is None:
                await session.exec(
                    update(table)
                    .where(where, ours)
                    .values(status=NotificationStatus.PENDING.value, claimed_until=null())
                )
                continue
            attempts = row.attempts + 1
            values: dict[str, object] = {"attempts": attempts, "claimed_until": null()}
            if outcome.result is Result.SENT:
                report.sent += 1
                values |= {
                    "status": NotificationStatus.SENT.value,
                    "sent_at": now,
                    "last_error": null(),
                }
                # Delivered is a fact even if our lease ran out meanwhile: no one else may
                # send it again, whoever holds it now.
                where = and_(
                    where,
                    col(table.c.status).in_(
                        [NotificationStatus.SENDING.value, NotificationStatus.PENDING.value]
                    ),
                )
            elif outcome.result is Result.RETRY and attempts < settings.notification_max_attempts:
                report.retried += 1
                values |= {
                    "status": NotificationStatus.PENDING.value,
                    "next_attempt_at": now + _retry_delay(settings, attempts),
                    "last_error": outcome.error,
                }
                where = and_(where, ours)
            else:
                report.failed += 1
                values |= {"status": NotificationStatus.FAILED.value, "last_error": outcome.error}
                where = and_(where, ours)
            await session.exec(update(table).where(where).values(**values))
    return report


async def _deliver_in_thread(
    connection: _SmtpConnection,
    message: EmailMessage,
    row_id: uuid.UUID,
    outcomes: dict[uuid.UUID, Outcome],
) -> None:
    """Send in a worker thread; a cancellation waits for the send, so its outcome is kept."""

    def send() -> None:
        outcomes[row_id] = connection.deliver(message)

    sending = asyncio.ensure_future(asyncio.to_thread(send))
    try:
        await asyncio.shield(sending)
    except asyncio.CancelledError:
        await asyncio.wait([sending])
        raise


async def deliver_due(
    database: Database, settings: Settings, *, limit: int = BATCH_SIZE
) -> DeliveryReport:
    """One delivery pass: claim due notifications, send them by SMTP, record each outcome.

    The claim commits before any mail leaves, so another pass (another instance) skips
    these rows; outcomes are written even when the pass is cancelled. Nothing happens
    when delivery is disabled (no `smtp_host`).
    """
    if settings.smtp_host is None:
        return DeliveryReport()
    timeout = settings.smtp_timeout_seconds
    lease = timedelta(seconds=timeout * (CONNECT_TIMEOUTS + TIMEOUTS_PER_MESSAGE * limit))
    lease_until, claimed = await _claim(database, limit=limit, lease=lease)
    if not claimed:
        return DeliveryReport()
    started: set[uuid.UUID] = set()
    outcomes: dict[uuid.UUID, Outcome] = {}
    connection = _SmtpConnection(settings)
    try:
        for row in claimed:
            if clock.now() + timedelta(seconds=timeout * TIMEOUTS_PER_MESSAGE) > lease_until:
                break  # the rest goes back to pending, untried
            started.add(row.id)
            await _deliver_in_thread(connection, _message(row, settings), row.id, outcomes)
            if outcomes[row.id].server_down:
                down = outcomes[row.id]
                for rest in claimed:
                    outcomes.setdefault(rest.id, down)
                break
    finally:
        await asyncio.to_thread(connection.close)
        report = await _record(database, settings, claimed, started, outcomes, lease_until)
        if report.retried or report.failed:
            logger.warning(
                "notifications: %d sent, %d to retry, %d failed (last error: %s)",
                report.sent,
                report.retried,
                report.failed,
                next(
                    (each.error for each in outcomes.values() if each.result is not Result.SENT),
                    None,
                ),
            )
    return report


async def deliver_forever(
    database: Database,
    settings: Settings,
    *,
    on_pass: Callable[[DeliveryReport], None] | None = None,
) -> None:
    """Run delivery passes every `notification_poll_seconds` until cancelled.

    A failed pass is logged and the loop goes on; a full batch is followed by the next
    pass at once, so a backlog drains without waiting for the poll.
    """
    while True:
        report: DeliveryReport | None = None
        try:
            report = await deliver_due(database, settings)
        except Exception:
            logger.exception("notification delivery pass failed")
        if report is not None and on_pass is not None:
            on_pass(report)
        if report is None or report.claimed < BATCH_SIZE:
            await asyncio.sleep(settings.notification_poll_seconds)

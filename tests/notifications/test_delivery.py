"""Delivery by SMTP to a real local server: once each, retried with back-off, never twice."""

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import select

from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.notifications import service as notifications
from ctcp.notifications.models import Notification
from ctcp.notifications.service import DeliveryReport
from tests.factories import make_org, make_user
from tests.notifications.conftest import SmtpServer

ROLE = "entity_focal_point"
NOTHING = DeliveryReport()


async def enqueue(database: Database, recipients: int = 1) -> list[Notification]:
    """`recipients` focal points of a new entity, and one notification for each."""
    entity = await make_org(database, kind="compact_entity")
    for _ in range(recipients):
        await make_user(database, org=entity, roles=(ROLE,))
    object_id = uuid.uuid4()
    async with database.transaction() as session:
        count = await notifications.notify(
            session,
            event="offer.accepted",
            object_type="offer",
            object_id=object_id,
            role=ROLE,
            organization_ids=[entity.id],
            subject="Your offer was accepted",
            body="Your offer was accepted. Sign in to CTCP to see it.",
        )
    assert count == recipients
    return await rows(database, object_id)


async def rows(database: Database, object_id: uuid.UUID | None = None) -> list[Notification]:
    async with database.sessionmaker() as session:
        statement = select(Notification).order_by(Notification.recipient_email)
        if object_id is not None:
            statement = statement.where(Notification.object_id == object_id)
        return list((await session.exec(statement)).all())


async def reload(database: Database, row: Notification) -> Notification:
    async with database.sessionmaker() as session:
        found = await session.get(Notification, row.id)
        assert found is not None
        return found


def message_id(row: Notification) -> str:
    return f"<{row.id}@ctcp>"


async def timed_pass(
    database: Database, settings: Settings
) -> tuple[datetime, DeliveryReport, datetime]:
    """A delivery pass, with the clock's time before and after it."""
    before = clock.now()
    report = await notifications.deliver_due(database, settings)
    return before, report, clock.now()


async def test_each_message_is_sent_once_and_marked_sent(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    queued = await enqueue(outbox_database, recipients=3)

    report = await notifications.deliver_due(outbox_database, mail_settings)

    assert report == DeliveryReport(claimed=3, sent=3)
    assert len(smtp_server.messages) == 3
    by_id = {str(message["Message-ID"]): message for message in smtp_server.messages}
    for row in queued:
        message = by_id[message_id(row)]
        assert message["To"] == row.recipient_email
        assert message["From"] == "CTCP <no-reply@ctcp.example>"
        assert message["Subject"] == "Your offer was accepted"
        assert message["Auto-Submitted"] == "auto-generated"
        lines = message.get_content().splitlines()
        assert [line.strip() for line in lines if line.strip()] == [row.body, "http://ctcp.test/"]
        sent = await reload(outbox_database, row)
        assert (sent.status, sent.attempts, sent.claimed_until, sent.last_error) == (
            "sent",
            1,
            None,
            None,
        )
        assert sent.sent_at is not None

    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    clock.advance(timedelta(days=1))
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    assert len(smtp_server.messages) == 3


async def test_failing_then_recovering_server_delivers_each_message_exactly_once(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    queued = await enqueue(outbox_database, recipients=2)
    smtp_server.stop()  # connection refused

    before, report, after = await timed_pass(outbox_database, mail_settings)

    assert report == DeliveryReport(claimed=2, retried=2)
    for row in queued:
        retry = await reload(outbox_database, row)
        assert (retry.status, retry.attempts, retry.claimed_until) == ("pending", 1, None)
        assert "Connection refused" in (retry.last_error or "")
        # The base delay after the first attempt.
        base = timedelta(seconds=30)
        assert before + base <= retry.next_attempt_at <= after + base

    smtp_server.start()
    smtp_server.handler.rcpt_reply = "451 4.3.0 Try again later"
    # Not due yet: nothing is sent early, the server is not even asked.
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    clock.advance(timedelta(seconds=29))
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    assert smtp_server.handler.recipients_tried == 0

    clock.advance(timedelta(seconds=1.5))
    before, report, after = await timed_pass(outbox_database, mail_settings)

    assert report == DeliveryReport(claimed=2, retried=2)
    assert smtp_server.handler.recipients_tried == 2 and smtp_server.messages == []
    for row in queued:
        retry = await reload(outbox_database, row)
        assert (retry.status, retry.attempts) == ("pending", 2)
        assert "451" in (retry.last_error or "")
        # Doubled after the second.
        doubled = timedelta(seconds=60)
        assert before + doubled <= retry.next_attempt_at <= after + doubled

    smtp_server.handler.rcpt_reply = None  # recovered
    clock.advance(timedelta(seconds=59))
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    clock.advance(timedelta(seconds=1.5))
    assert await notifications.deliver_due(outbox_database, mail_settings) == DeliveryReport(
        claimed=2, sent=2
    )

    clock.advance(timedelta(hours=2))
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    assert smtp_server.count_by_message_id() == {message_id(row): 1 for row in queued}
    assert {str(message["To"]) for message in smtp_server.messages} == {
        row.recipient_email for row in queued
    }
    for row in queued:
        sent = await reload(outbox_database, row)
        assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None)


async def test_permanent_refusal_fails_without_further_retries(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    [row] = await enqueue(outbox_database)
    smtp_server.handler.rcpt_reply = "550 5.1.1 No such mailbox"

    report = await notifications.deliver_due(outbox_database, mail_settings)

    assert report == DeliveryReport(claimed=1, failed=1)
    failed = await reload(outbox_database, row)
    assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 1, None)
    assert "550" in (failed.last_error or "")
    smtp_server.handler.rcpt_reply = None
    clock.advance(timedelta(days=2))
    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    assert smtp_server.handler.recipients_tried == 1 and smtp_server.messages == []


async def test_back_off_is_capped_and_gives_up_after_max_attempts(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    settings = mail_settings.model_copy(
        update={"notification_retry_max_seconds": 100, "notification_max_attempts": 4}
    )
    [row] = await enqueue(outbox_database)
    smtp_server.handler.rcpt_reply = "421 4.7.0 Too busy"

    delays = []
    for attempt in (1, 2, 3):
        before, report, _ = await timed_pass(outbox_database, settings)
        assert report == DeliveryReport(claimed=1, retried=1), attempt
        retry = await reload(outbox_database, row)
        assert retry.attempts == attempt
        delays.append(round((retry.next_attempt_at - before).total_seconds()))
        clock.advance(retry.next_attempt_at - clock.now() + timedelta(milliseconds=10))
    assert delays == [30, 60, 100]

    assert await notifications.deliver_due(outbox_database, settings) == DeliveryReport(
        claimed=1, failed=1
    )
    failed = await reload(outbox_database, row)
    assert (failed.status, failed.attempts) == ("failed", 4)
    assert "421" in (failed.last_error or "")
    smtp_server.handler.rcpt_reply = None
    clock.advance(timedelta(days=1))
    assert await notifications.deliver_due(outbox_database, settings) == NOTHING
    assert smtp_server.handler.recipients_tried == 4 and smtp_server.messages == []


async def test_two_concurrent_passes_never_send_a_row_twice(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    queued = []
    for _ in range(4):  # oldest first: a pass that wrongly retook rows would pick these
        queued += await enqueue(outbox_database, recipients=3)
        clock.advance(timedelta(seconds=1))
    smtp_server.handler.data_delay = 0.02  # keep both passes in flight together
    second_instance = Database(outbox_database.url)
    reports: list[DeliveryReport] = []

    async def staggered() -> list[DeliveryReport]:
        """The second instance starts while the first is talking to the server."""
        started = smtp_server.handler.data_started
        first = asyncio.create_task(
            notifications.deliver_due(outbox_database, mail_settings, limit=3)
        )
        for _ in range(200):
            if smtp_server.handler.data_started > started or first.done():
                break
            await asyncio.sleep(0.005)
        second = await notifications.deliver_due(second_instance, mail_settings, limit=3)
        return [await first, second]

    try:
        # Both claim at once (rows locked by one are skipped by the other), then staggered.
        reports += await asyncio.gather(
            notifications.deliver_due(outbox_database, mail_settings, limit=3),
            notifications.deliver_due(second_instance, mail_settings, limit=3),
        )
        for _ in range(10):
            round_reports = await staggered()
            reports += round_reports
            if not any(report.claimed for report in round_reports):
                break
    finally:
        await second_instance.dispose()

    assert sum(report.sent for report in reports) == 12
    assert sum(report.claimed for report in reports) == 12
    assert smtp_server.count_by_message_id() == {message_id(row): 1 for row in queued}
    assert {row.status for row in await rows(outbox_database)} == {"sent"}


async def test_a_sending_row_whose_lease_expired_is_claimed_again(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    [row] = await enqueue(outbox_database)
    # A sender claimed it, then died before sending or recording anything.
    async with outbox_database.transaction() as session:
        await session.exec(
            update(Notification)
            .where(Notification.id == row.id)  # type: ignore[arg-type]
            .values(status="sending", claimed_until=clock.now() + timedelta(seconds=60))
        )

    assert await notifications.deliver_due(outbox_database, mail_settings) == NOTHING
    assert smtp_server.messages == []
    clock.advance(timedelta(seconds=61))
    assert await notifications.deliver_due(outbox_database, mail_settings) == DeliveryReport(
        claimed=1, sent=1
    )
    assert smtp_server.count_by_message_id() == {message_id(row): 1}
    assert (await reload(outbox_database, row)).status == "sent"


async def test_a_pass_stops_short_of_its_lease_and_releases_the_rest(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    queued = await enqueue(outbox_database, recipients=3)
    # The first message takes (by the clock) nearly all of the pass's lease: past it,
    # another pass could take the rows, so this one must not start another message.
    lease = timedelta(
        seconds=5 * (notifications.CONNECT_TIMEOUTS + notifications.TIMEOUTS_PER_MESSAGE * 3)
    )
    smtp_server.handler.on_data = lambda: clock.advance(lease - timedelta(seconds=5))

    report = await notifications.deliver_due(outbox_database, mail_settings, limit=3)

    assert report == DeliveryReport(claimed=3, sent=1)
    [sent] = smtp_server.messages
    for row in queued:
        state = await reload(outbox_database, row)
        if message_id(row) == str(sent["Message-ID"]):
            assert state.status == "sent"
        else:
            assert (state.status, state.attempts, state.claimed_until) == ("pending", 0, None)
    smtp_server.handler.on_data = None
    assert await notifications.deliver_due(outbox_database, mail_settings) == DeliveryReport(
        claimed=2, sent=2
    )
    assert smtp_server.count_by_message_id() == {message_id(row): 1 for row in queued}


async def test_a_cancelled_pass_records_the_message_in_flight_and_releases_the_rest(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    queued = await enqueue(outbox_database, recipients=3)
    smtp_server.handler.data_delay = 0.5
    running = asyncio.create_task(notifications.deliver_due(outbox_database, mail_settings))
    for _ in range(500):
        if smtp_server.handler.data_started:
            break
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert len(smtp_server.messages) == 1
    states = {row.id: await reload(outbox_database, row) for row in queued}
    [sent_id] = [key for key, row in states.items() if row.status == "sent"]
    assert message_id(states[sent_id]) == str(smtp_server.messages[0]["Message-ID"])
    for key, row in states.items():
        if key != sent_id:
            assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)

    smtp_server.handler.data_delay = 0
    assert await notifications.deliver_due(outbox_database, mail_settings) == DeliveryReport(
        claimed=2, sent=2
    )
    assert smtp_server.count_by_message_id() == {message_id(row): 1 for row in queued}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_signs_in_with_the_configured_credentials(
    outbox_database: Database, mail_settings: Settings
) -> None:
    server = SmtpServer(credentials=("ctcp-mailer", "mail-password-1"))
    server.start()
    try:
        [row] = await enqueue(outbox_database)
        wrong = mail_settings.model_copy(
            update={
                "smtp_port": server.port,
                "smtp_username": "ctcp-mailer",
                "smtp_password": SecretStr("not-the-password"),
            }
        )
        # A refused login is the server's state, not the message's: retried, not failed.
        assert await notifications.deliver_due(outbox_database, wrong) == DeliveryReport(
            claimed=1, retried=1
        )
        assert "535" in ((await reload(outbox_database, row)).last_error or "")

        right = wrong.model_copy(update={"smtp_password": SecretStr("mail-password-1")})
        clock.advance(timedelta(seconds=31))
        assert await notifications.deliver_due(outbox_database, right) == DeliveryReport(
            claimed=1, sent=1
        )
        assert set(server.logins) == {"ctcp-mailer"}  # smtplib tries PLAIN, then LOGIN
        assert server.count_by_message_id() == {message_id(row): 1}
    finally:
        server.stop()


async def test_disabled_delivery_claims_nothing(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    [row] = await enqueue(outbox_database)
    disabled = mail_settings.model_copy(update={"smtp_host": None})

    assert await notifications.deliver_due(outbox_database, disabled) == NOTHING
    assert (await reload(outbox_database, row)).status == "pending"
    assert smtp_server.messages == []


async def test_a_recipient_deactivated_before_delivery_gets_nothing(
    outbox_database: Database, mail_settings: Settings, smtp_server: SmtpServer
) -> None:
    kept, dropped = await enqueue(outbox_database, recipients=2)
    async with outbox_database.transaction() as session:
        await session.exec(
            update(User).where(User.id == dropped.recipient_user_id).values(active=False)
        )
    report = await notifications.deliver_due(outbox_database, mail_settings)
    assert report.sent == 1
    assert [m["To"] for m in smtp_server.messages] == [kept.recipient_email]
    failed = await reload(outbox_database, dropped)
    assert (failed.status, failed.last_error) == ("failed", notifications.RECIPIENT_INACTIVE)
